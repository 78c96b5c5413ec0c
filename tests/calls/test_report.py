"""The suite report: the terminal summary, the JSON file, xdist merging, and the data behind them."""

from __future__ import annotations

import json
import re
import textwrap
from pathlib import Path
from typing import Any

import grpc
import pytest

from pytest_grpc_deadlines import ClientCall, Pair, ServerCall
from pytest_grpc_deadlines.calls._report import NEAR_MISS, SuiteReport
from pytest_grpc_deadlines.calls._verdicts import verdict
from pytest_grpc_deadlines.servers._records import Outcome

pytest_plugins = ["pytester"]

QUIET = ("-p", "no:cacheprovider", "-p", "no:hypothesispytest", "-p", "no:asyncio")
UNARY = "pytest_grpc_deadlines.probe.v1.Probe/Unary"
IMPORTS = """
import grpc
import pytest
from pytest_grpc_deadlines.probe import ProbeRequest

UNARY = "pytest_grpc_deadlines.probe.v1.Probe/Unary"
"""
JSON_KEYS = {
    "version",
    "run",
    "tests",
    "calls",
    "by_code",
    "no_deadline",
    "no_deadline_exempt",
    "max_deadline",
    "over_max_deadline",
    "disagreements",
    "expected_disagreements",
    "violations",
    "near_misses",
    "background",
    "hops",
    "hop_problems",
}


def module(pytester: pytest.Pytester, body: str) -> None:
    pytester.makepyfile(test_mod=IMPORTS + textwrap.dedent(body))


def line_of(pytester: pytest.Pytester, text: str) -> int:
    lines = (pytester.path / "test_mod.py").read_text().splitlines()
    [number] = [i for i, line in enumerate(lines, start=1) if text in line]
    return number


def run(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    return pytester.runpytest(*QUIET, *args)


def summary(result: pytest.RunResult) -> list[str]:
    """The non-blank lines of the "gRPC deadlines" section (empty when there is none)."""
    lines = result.stdout.lines
    starts = [i for i, line in enumerate(lines) if "gRPC deadlines" in line and line.startswith("=")]
    if not starts:
        return []
    section = []
    for line in lines[starts[0] + 1 :]:
        if line.startswith("="):
            break
        if line.strip():
            section.append(line)
    return section


# --- the terminal summary -------------------------------------------------------------------


def test_summary_appears_when_the_run_uses_the_plugins_fixtures(pytester: pytest.Pytester) -> None:
    module(
        pytester,
        """
        def test_ok(grpc_test_server):
            grpc_test_server.probe().Unary(ProbeRequest(), timeout=5)

        def test_not_found(grpc_test_server):
            grpc_test_server.fail(UNARY, grpc.StatusCode.NOT_FOUND)
            with pytest.raises(grpc.RpcError):
                grpc_test_server.probe().Unary(ProbeRequest(), timeout=5)
            with pytest.raises(grpc.RpcError):
                grpc_test_server.probe().Unary(ProbeRequest(), timeout=5)
        """,
    )
    result = run(pytester)
    result.assert_outcomes(passed=2)
    assert summary(result) == [
        "3 client calls recorded: NOT_FOUND 2, OK 1",
        "violations (client OK, server not OK): 0",
        "disagreements (server OK, client gave up): 0",
        "calls with no deadline: 0",
        "near misses (OK after over 80% of the deadline): 0",
    ]


def test_no_summary_when_no_call_was_recorded(pytester: pytest.Pytester) -> None:
    module(pytester, "def test_nothing():\n    pass\n")
    result = run(pytester)
    result.assert_outcomes(passed=1)
    assert "gRPC deadlines" not in result.stdout.str()


def test_no_summary_when_code_makes_calls_but_the_run_does_not_use_the_plugin(
    pytester: pytest.Pytester,
) -> None:
    """A project that has the plugin installed and never asked for it sees nothing of it."""
    module(
        pytester,
        """
        def test_calls():
            with grpc.insecure_channel("127.0.0.1:1") as channel:
                with pytest.raises(grpc.RpcError):
                    channel.unary_unary("/tests.Nowhere/Call")(b"")
        """,
    )
    result = run(pytester)
    result.assert_outcomes(passed=1)
    assert "gRPC deadlines" not in result.stdout.str()


@pytest.mark.parametrize(
    "use",
    [
        "--grpc-timeout=sensor=3",
        "-o=grpc_require_deadlines=warn",
        "-o=grpc_timeouts=sensor=3",
        "marker",
    ],
)
def test_summary_appears_when_an_option_ini_key_or_marker_is_used(
    pytester: pytest.Pytester, use: str
) -> None:
    marker = "@pytest.mark.grpc_timeouts(sensor=2)\n" if use == "marker" else ""
    module(pytester, f"{marker}def test_nothing():\n    pass\n")
    result = run(pytester, *([] if use == "marker" else [use]))
    result.assert_outcomes(passed=1)
    assert summary(result)[0] == "0 client calls recorded: none"


def test_report_option_prints_the_summary_without_calls(pytester: pytest.Pytester) -> None:
    module(pytester, "def test_nothing():\n    pass\n")
    result = run(pytester, "--grpc-deadlines-report")
    assert summary(result)[0] == "0 client calls recorded: none"


def test_calls_without_a_deadline_are_listed_with_test_and_line(pytester: pytest.Pytester) -> None:
    module(
        pytester,
        """
        def test_forgot(grpc_test_server):
            grpc_test_server.probe().Unary(ProbeRequest())  # the call
            grpc_test_server.probe().Unary(ProbeRequest(), timeout=5)
        """,
    )
    result = run(pytester)
    line = line_of(pytester, "# the call")
    section = summary(result)
    assert section[3:5] == [
        "calls with no deadline: 1",
        f"  test_mod.py::test_forgot: {UNARY} at test_mod.py:{line}",
    ]


def test_near_miss_is_listed(pytester: pytest.Pytester) -> None:
    module(
        pytester,
        """
        def test_slow(grpc_test_server):
            # margin: the call takes at least the 0.85 s delay, 85% of its deadline (> 80%), and
            # has 150 ms to come back after it, over three times grpc's worst lateness measured
            # with the CPUs oversubscribed (41 ms).
            grpc_test_server.delay(UNARY, 0.85)
            grpc_test_server.probe().Unary(ProbeRequest(), timeout=1.0)  # the call

        def test_fast(grpc_test_server):
            grpc_test_server.probe().Unary(ProbeRequest(), timeout=5)
        """,
    )
    result = run(pytester)
    result.assert_outcomes(passed=2)
    section = summary(result)
    assert section[-2] == "near misses (OK after over 80% of the deadline): 1"
    line = line_of(pytester, "# the call")
    match = re.fullmatch(
        rf"  test_mod.py::test_slow: {UNARY} at test_mod.py:{line} \((\d\.\d{{3}}) s of 1 s, (\d+)%\)",
        section[-1],
    )
    assert match is not None, section[-1]
    assert 0.85 <= float(match[1]) < 1.0
    assert 85 <= int(match[2]) <= 100


def test_a_disagreement_the_test_provoked_is_counted_apart(pytester: pytest.Pytester) -> None:
    module(
        pytester,
        """
        def test_gave_up(grpc_test_server, grpc_calls):
            # margin: 0.25 s and 2 s are tests/timing.py's REACHES_SERVER and ENTRY_BOUND
            gate = grpc_test_server.hold(UNARY)
            with pytest.raises(grpc.RpcError) as info:
                grpc_test_server.probe().Unary(ProbeRequest(), timeout=0.25)  # the call
            assert info.value.code() is grpc.StatusCode.DEADLINE_EXCEEDED
            assert gate.wait_entered(2.0)
            assert gate.wait_cancelled(10)
            gate.release()
            assert [p.verdict for p in grpc_calls.pairs(timeout=10)] == ["disagreement"]
        """,
    )
    result = run(pytester)
    result.assert_outcomes(passed=1)
    assert summary(result)[:4] == [
        "1 client call recorded: DEADLINE_EXCEEDED 1",
        "violations (client OK, server not OK): 0",
        "disagreements (server OK, client gave up): 0",
        "expected disagreements (provoked by the tests' gates, delays and wire faults): 1",
    ]


def test_a_disagreement_of_the_users_servicer_is_listed(pytester: pytest.Pytester) -> None:
    """A servicer that finishes its work after the client gave up: the surprise the summary is for."""
    pytester.makepyfile(
        echo_service=(Path(__file__).parents[1] / "echo_service.py").read_text(encoding="utf-8")
    )
    module(
        pytester,
        """
        import threading

        from echo_service import SAY, add_EchoServicer_to_server

        gone, release = threading.Event(), threading.Event()

        class Slow:
            def Say(self, request, context):
                context.add_callback(gone.set)
                assert release.wait(10)
                return b"done"

            def Chorus(self, request, context):
                yield b""

        @pytest.fixture(scope="module")
        def grpc_test_servicers():
            return [(add_EchoServicer_to_server, Slow())]

        def test_gave_up(grpc_test_server, grpc_calls):
            say = grpc_test_server.channel().unary_unary("/" + SAY)
            with pytest.raises(grpc.RpcError) as info:
                say(b"hi", timeout=0.25)  # the call
            assert info.value.code() is grpc.StatusCode.DEADLINE_EXCEEDED
            assert gone.wait(10)
            release.set()
            assert [p.verdict for p in grpc_calls.pairs(timeout=10)] == ["disagreement"]
        """,
    )
    result = run(pytester)
    result.assert_outcomes(passed=1)
    line = line_of(pytester, "# the call")
    method = "tests.Echo/Say"
    assert summary(result)[:4] == [
        "1 client call recorded: DEADLINE_EXCEEDED 1",
        "violations (client OK, server not OK): 0",
        "disagreements (server OK, client gave up): 1",
        f"  test_mod.py::test_gave_up: {method} at test_mod.py:{line} (client DEADLINE_EXCEEDED, server ok)",
    ]


# --- JSON -----------------------------------------------------------------------------------


def test_json_holds_the_same_data(pytester: pytest.Pytester) -> None:
    module(
        pytester,
        """
        def test_calls(grpc_test_server):
            grpc_test_server.probe().Unary(ProbeRequest())  # no deadline
            grpc_test_server.fail(UNARY, grpc.StatusCode.UNAVAILABLE)
            with pytest.raises(grpc.RpcError):
                grpc_test_server.probe().Unary(ProbeRequest(), timeout=5)
        """,
    )
    path = pytester.path / "out" / "grpc.json"
    path.parent.mkdir()
    result = run(pytester, "--grpc-deadlines-json", str(path))
    result.assert_outcomes(passed=1)
    data = json.loads(path.read_text())
    assert set(data) == JSON_KEYS
    [entry] = data["no_deadline"]
    assert entry["target"].startswith("127.0.0.1:")
    assert data == {
        "version": 3,
        "run": None,
        "tests": {"test_mod.py::test_calls": "passed"},
        "calls": 2,
        "by_code": {"OK": 1, "UNAVAILABLE": 1},
        "no_deadline": [
            {
                "test": "test_mod.py::test_calls",
                "method": UNARY,
                "target": entry["target"],
                "site": f"test_mod.py:{line_of(pytester, '# no deadline')}",
                "library_site": None,
            }
        ],
        "no_deadline_exempt": 0,
        "max_deadline": None,
        "over_max_deadline": [],
        "disagreements": [],
        "expected_disagreements": [],
        "violations": [],
        "near_misses": [],
        "background": [],
        "hops": {},
        "hop_problems": [],
    }


def test_json_is_written_even_without_calls(pytester: pytest.Pytester) -> None:
    module(pytester, "def test_nothing():\n    pass\n")
    path = pytester.path / "grpc.json"
    run(pytester, "--grpc-deadlines-json", str(path)).assert_outcomes(passed=1)
    assert json.loads(path.read_text())["calls"] == 0


# --- xdist ----------------------------------------------------------------------------------


def test_xdist_summary_and_json_merge_every_workers_calls(pytester: pytest.Pytester) -> None:
    workers = pytester.path / "workers"
    workers.mkdir()
    module(
        pytester,
        f"""
        import os
        import pathlib

        @pytest.mark.parametrize("n", range(10))
        def test_call(grpc_test_server, n):
            grpc_test_server.probe().Unary(ProbeRequest(), timeout=5)
            worker = os.environ["PYTEST_XDIST_WORKER"]
            (pathlib.Path({str(workers)!r}) / f"{{worker}}-{{n}}").touch()
        """,
    )
    path = pytester.path / "grpc.json"
    result = pytester.runpytest_subprocess(*QUIET, "-n", "2", "--grpc-deadlines-json", str(path))
    result.assert_outcomes(passed=10)
    assert {name.name.split("-")[0] for name in workers.iterdir()} == {"gw0", "gw1"}
    section = summary(result)
    assert section[0] == "10 client calls recorded: OK 10"
    assert sum(1 for line in result.stdout.lines if "client calls recorded" in line) == 1
    data = json.loads(path.read_text())
    assert (data["calls"], data["by_code"]) == (10, {"OK": 10})


# --- the data -------------------------------------------------------------------------------


def client_call(
    code: grpc.StatusCode | None = grpc.StatusCode.OK,
    *,
    timeout: float | None = 1.0,
    elapsed: float = 0.1,
    test: str = "test_mod.py::test_it",
    internal: bool = False,
) -> ClientCall:
    call = ClientCall(
        method=UNARY,
        target="127.0.0.1:1",
        timeout=timeout,
        site="test_mod.py:3",
        test=test,
        internal=internal,
    )
    if code is not None:
        call.code, call.elapsed = code, elapsed
    return call


def pair(code: grpc.StatusCode, outcome: Outcome, *, provoked: bool = False) -> Pair:
    client = client_call(code)
    server = ServerCall(method=UNARY, metadata=(), deadline=1.0, provoked=provoked)
    server.finish(outcome, grpc.StatusCode.OK if outcome == "ok" else grpc.StatusCode.INTERNAL)
    return Pair(client, server, verdict(client, server))


def where(test: str = "test_mod.py::test_it") -> dict[str, Any]:
    return {
        "test": test,
        "method": UNARY,
        "target": "127.0.0.1:1",
        "site": "test_mod.py:3",
        "library_site": None,
    }


def test_calls_are_counted_by_code_and_calls_without_a_status_as_unfinished() -> None:
    report = SuiteReport()
    report.add([client_call(), client_call(), client_call(grpc.StatusCode.CANCELLED), client_call(None)], [])
    assert report.calls == 4
    assert report.to_dict()["by_code"] == {"CANCELLED": 1, "OK": 2, "UNFINISHED": 1}


def test_the_plugins_own_calls_are_left_out() -> None:
    report = SuiteReport()
    report.add([client_call(internal=True, timeout=None)], [])
    assert (report.calls, report.no_deadline) == (0, [])


def test_no_deadline_entries_name_test_method_target_and_site() -> None:
    report = SuiteReport()
    report.add([client_call(timeout=None)], [])
    assert report.no_deadline == [where()]


@pytest.mark.parametrize(
    ("code", "elapsed", "near"),
    [
        (grpc.StatusCode.OK, 0.81, True),
        (grpc.StatusCode.OK, NEAR_MISS, False),  # over 80%, not at it
        (grpc.StatusCode.OK, 0.5, False),
        (grpc.StatusCode.DEADLINE_EXCEEDED, 1.0, False),  # a miss, not a near one
        (grpc.StatusCode.UNAVAILABLE, 0.9, False),
    ],
)
def test_near_miss_is_a_success_after_over_80_percent(
    code: grpc.StatusCode, elapsed: float, near: bool
) -> None:
    report = SuiteReport()
    report.add([client_call(code, elapsed=elapsed)], [])
    assert bool(report.near_misses) is near


def test_near_misses_are_ordered_tightest_first() -> None:
    report = SuiteReport()
    report.add([client_call(elapsed=e, test=f"t{e}") for e in (0.85, 0.99, 0.9)], [])
    near = report.to_dict()["near_misses"]
    assert [(m["test"], m["used"], m["elapsed"], m["timeout"]) for m in near] == [
        ("t0.99", 0.99, 0.99, 1.0),
        ("t0.9", 0.9, 0.9, 1.0),
        ("t0.85", 0.85, 0.85, 1.0),
    ]


def test_disagreements_and_violations_come_from_the_pairs() -> None:
    report = SuiteReport()
    pairs = [
        pair(grpc.StatusCode.DEADLINE_EXCEEDED, "ok"),
        pair(grpc.StatusCode.OK, "aborted"),
        pair(grpc.StatusCode.OK, "ok"),
        pair(grpc.StatusCode.INTERNAL, "raised"),
        pair(grpc.StatusCode.CANCELLED, "ok", provoked=True),
    ]
    report.add([p.client for p in pairs], pairs)
    assert report.disagreements == [{**where(), "client_code": "DEADLINE_EXCEEDED", "server_outcome": "ok"}]
    assert report.expected_disagreements == [{**where(), "client_code": "CANCELLED", "server_outcome": "ok"}]
    assert report.violations == [{**where(), "client_code": "OK", "server_outcome": "aborted"}]


def test_merge_adds_a_workers_report() -> None:
    first, second = SuiteReport(), SuiteReport()
    first.add([client_call(), client_call(timeout=None)], [])
    second.add([client_call(grpc.StatusCode.CANCELLED), client_call(elapsed=0.95)], [])
    first.merge(json.loads(json.dumps(second.to_dict())))
    data = first.to_dict()
    assert (data["calls"], data["by_code"]) == (4, {"CANCELLED": 1, "OK": 3})
    assert len(data["no_deadline"]) == 1
    assert [m["used"] for m in data["near_misses"]] == [0.95]


def test_lines_list_each_section_and_cut_long_ones() -> None:
    report = SuiteReport()
    report.add([client_call(timeout=None, test=f"test_mod.py::test_{i}") for i in range(12)], [])
    report.add([client_call(elapsed=0.9)], [pair(grpc.StatusCode.CANCELLED, "ok")])
    assert report.lines() == [
        "13 client calls recorded: OK 13",
        "violations (client OK, server not OK): 0",
        "disagreements (server OK, client gave up): 1",
        f"  test_mod.py::test_it: {UNARY} at test_mod.py:3 (client CANCELLED, server ok)",
        "calls with no deadline: 12",
        *(f"  test_mod.py::test_{i}: {UNARY} at test_mod.py:3" for i in range(10)),
        "  ... and 2 more (see --grpc-deadlines-json)",
        "near misses (OK after over 80% of the deadline): 1",
        f"  test_mod.py::test_it: {UNARY} at test_mod.py:3 (0.900 s of 1 s, 90%)",
    ]


def test_background_calls_are_listed_by_thread_and_merged() -> None:
    report = SuiteReport()
    call = client_call(test="")
    call.test, call.background, call.thread = None, True, "poller"
    report.add_background([call])
    other = SuiteReport()
    other.merge(json.loads(json.dumps(report.to_dict())))
    assert other.to_dict()["background"] == [
        {
            "thread": "poller",
            "method": UNARY,
            "target": "127.0.0.1:1",
            "site": "test_mod.py:3",
            "library_site": None,
        }
    ]
    assert other.lines()[-2:] == [
        "background calls (from threads older than the test): 1",
        f"  thread poller: {UNARY} at test_mod.py:3",
    ]


def test_write_json_round_trips(tmp_path: Path) -> None:
    report = SuiteReport()
    report.add([client_call(timeout=None)], [pair(grpc.StatusCode.OK, "raised")])
    path = tmp_path / "report.json"
    report.write_json(str(path))
    assert json.loads(path.read_text()) == report.to_dict()


def test_exempt_methods_and_opted_out_tests_are_counted_apart_from_work_to_do(
    pytester: pytest.Pytester,
) -> None:
    pytester.makeini(
        "[pytest]\ngrpc_deadline_exempt_methods =\n    pytest_grpc_deadlines.probe.v1.Probe/ServerStream\n"
    )
    module(
        pytester,
        """
        def test_exempt_method(grpc_test_server):
            list(grpc_test_server.probe().ServerStream(ProbeRequest(responses=1)))

        @pytest.mark.grpc_require_deadlines(False)
        def test_opted_out(grpc_test_server):
            grpc_test_server.probe().Unary(ProbeRequest())

        def test_work_to_do(grpc_test_server):
            grpc_test_server.probe().Unary(ProbeRequest())
        """,
    )
    result = pytester.runpytest(*QUIET)
    result.assert_outcomes(passed=3)
    result.stdout.fnmatch_lines(
        ["calls with no deadline: 1 (and 2 exempt)", "  test_mod.py::test_work_to_do: *"]
    )


def test_a_test_that_opts_out_while_it_runs_is_counted_as_exempt(pytester: pytest.Pytester) -> None:
    """The opt-out is read at the test's end: a marker the test adds itself counts."""
    module(
        pytester,
        """
        def test_opts_out_late(grpc_test_server, request):
            request.applymarker(pytest.mark.grpc_require_deadlines(False))
            grpc_test_server.probe().Unary(ProbeRequest())
        """,
    )
    result = pytester.runpytest(*QUIET)
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["calls with no deadline: 0 (and 1 exempt)"])
