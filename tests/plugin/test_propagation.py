"""``grpc_require_propagation`` (marker and ini key) and the hops in the summary and the JSON
report, from the outside: whole pytest runs (pytester) of a gateway that forwards calls."""

from __future__ import annotations

import json

import pytest

_INNER = ("-p", "no:cacheprovider", "-p", "no:hypothesispytest", "-p", "no:rerunfailures", "-p", "no:asyncio")

GATEWAY = """
import os

import grpc
import pytest
from pytest_grpc_deadlines.probe import ProbeRequest, ProbeServicer, ProbeStub, add_ProbeServicer_to_server

class Gateway:
    def __init__(self, how):
        self.how = how
        self.target = ""

    def Say(self, request, context):
        with grpc.insecure_channel(self.target) as channel:
            stub = ProbeStub(channel)
            if self.how == "none":
                stub.Unary(ProbeRequest())  # the forwarded call
            elif self.how == "two":
                stub.Unary(ProbeRequest(), timeout=2)  # a constant
            elif self.how == "setting":
                setting = float(os.environ["GW_PROBE_TIMEOUT"])
                stub.Unary(ProbeRequest(), timeout=min(setting, context.time_remaining()))
            else:
                stub.Unary(ProbeRequest(), timeout=context.time_remaining())
        return b"ok"

def add(servicer, server):
    handler = grpc.unary_unary_rpc_method_handler(servicer.Say)
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler("gw.Gateway", {"Say": handler}),))

def gateway(factory, how):
    servicer = Gateway(how)
    server = factory((add, servicer), (add_ProbeServicer_to_server, ProbeServicer()))
    servicer.target = server.target
    return server

def call(server, timeout=5):
    return server.channel().unary_unary("/gw.Gateway/Say")(b"hi", timeout=timeout)
"""


def _module(pytester: pytest.Pytester, tests: str) -> None:
    pytester.makepyfile(test_gw=GATEWAY + tests)


def test_the_marker_fails_a_test_whose_handler_drops_the_deadline(pytester: pytest.Pytester) -> None:
    _module(
        pytester,
        """
@pytest.mark.grpc_require_propagation
def test_dropped(grpc_test_server_factory):
    call(gateway(grpc_test_server_factory, "none"))

@pytest.mark.grpc_require_propagation
def test_passed_on(grpc_test_server_factory):
    call(gateway(grpc_test_server_factory, "remaining"))

def test_unmarked(grpc_test_server_factory):
    call(gateway(grpc_test_server_factory, "none"))
""",
    )
    result = pytester.runpytest(*_INNER)
    result.assert_outcomes(passed=2, failed=1)
    result.stdout.fnmatch_lines(
        [
            "*grpc_require_propagation: test_gw.py::test_dropped made 1 call(s) while serving a call "
            "without passing its deadline on:",
            "*pytest_grpc_deadlines.probe.v1.Probe/Unary to 127.0.0.1:*, made while serving "
            "gw.Gateway/Say with *s left, sent no deadline, at test_gw.py:16",
            "*Give each call a timeout of at most the handler's context.time_remaining().",
        ]
    )


@pytest.mark.filterwarnings("always::pytest_grpc_deadlines.GrpcDeadlinesWarning")
def test_the_ini_key_warns_or_fails_and_the_marker_exempts(pytester: pytest.Pytester) -> None:
    _module(
        pytester,
        """
def test_dropped(grpc_test_server_factory):
    call(gateway(grpc_test_server_factory, "none"))

@pytest.mark.grpc_require_propagation(False)
def test_exempt(grpc_test_server_factory):
    call(gateway(grpc_test_server_factory, "none"))
""",
    )
    pytester.makeini("[pytest]\ngrpc_require_propagation = warn\n")
    warned = pytester.runpytest(*_INNER)
    warned.assert_outcomes(passed=2, warnings=1)
    warned.stdout.fnmatch_lines(
        ["*GrpcDeadlinesWarning: grpc_require_propagation: test_gw.py::test_dropped*"]
    )
    pytester.makeini("[pytest]\ngrpc_require_propagation = true\n")
    pytester.runpytest(*_INNER).assert_outcomes(passed=1, failed=1)


def test_the_summary_and_the_report_list_hops_by_verdict(pytester: pytest.Pytester) -> None:
    _module(
        pytester,
        """
def test_both(grpc_test_server_factory):
    call(gateway(grpc_test_server_factory, "none"))
    call(gateway(grpc_test_server_factory, "remaining"))
""",
    )
    result = pytester.runpytest(*_INNER, "--grpc-deadlines-json", "report.json")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(
        [
            "hops not passing the deadline on (2 calls made while serving a call: no deadline 1, "
            "propagated 1): 1",
            "  test_gw.py::test_both: pytest_grpc_deadlines.probe.v1.Probe/Unary at test_gw.py:16 "
            "(serving gw.Gateway/Say with *s left; sent no deadline)",
        ]
    )
    data = json.loads((pytester.path / "report.json").read_text(encoding="utf-8"))
    assert data["hops"] == {"no deadline": 1, "propagated": 1}
    [problem] = data["hop_problems"]
    assert (problem["serving"], problem["verdict"], problem["timeout"]) == (
        "gw.Gateway/Say",
        "no deadline",
        None,
    )
    assert 0 < problem["time_left"] <= 5.05


def test_a_run_without_hops_prints_no_hop_line(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        from pytest_grpc_deadlines.probe import ProbeRequest

        def test_plain(grpc_test_server):
            grpc_test_server.probe().Unary(ProbeRequest(), timeout=5)
        """
    )
    result = pytester.runpytest(*_INNER)
    result.assert_outcomes(passed=1)
    assert "hops not passing" not in result.stdout.str()


CASCADE = """
from pytest_grpc_deadlines import Cascade, Setting

CASCADE = Cascade(
    name="gw",
    settings=(Setting("default", "GW_TIMEOUT", 2), Setting("probe", "GW_PROBE_TIMEOUT", 10)),
    methods={"pytest_grpc_deadlines.probe.v1.Probe/*": "probe"},
)
"""


def test_a_call_that_does_not_follow_the_cascade_is_flagged(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(gw_cascade=CASCADE)
    pytester.syspathinsert()
    pytester.makeini("[pytest]\ngrpc_deadlines_cascade = gw_cascade:CASCADE\n")
    _module(
        pytester,
        """
@pytest.mark.grpc_require_propagation
@pytest.mark.grpc_timeouts(probe=10)
@pytest.mark.parametrize("how", ["two", "setting"])
def test_forward(grpc_test_server_factory, how):
    call(gateway(grpc_test_server_factory, how), timeout=30)

@pytest.mark.grpc_require_propagation
@pytest.mark.grpc_timeouts(probe=10)
def test_less_left_than_the_setting(grpc_test_server_factory):
    call(gateway(grpc_test_server_factory, "setting"), timeout=3)
""",
    )
    result = pytester.runpytest(*_INNER)
    result.assert_outcomes(passed=2, failed=1)
    result.stdout.fnmatch_lines(
        [
            "*grpc_require_propagation: test_gw.py::test_forward[[]two[]] made 1 call(s) whose timeout "
            "does not follow the gw cascade:",
            "  pytest_grpc_deadlines.probe.v1.Probe/Unary to 127.0.0.1:* sent 2 s, expected 10 s (the "
            "probe setting: GW_PROBE_TIMEOUT='10' (marker on test_forward[[]two[]]))*, at test_gw.py:18",
        ]
    )
