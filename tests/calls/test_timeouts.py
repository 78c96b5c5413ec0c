"""Where a recorded timeout comes from when the call gives none: the channel's service config, or
the deadline an asyncio interceptor moved."""

from __future__ import annotations

import json
import time
from typing import Any

import grpc
import grpc.aio
import pytest

from pytest_grpc_deadlines import CallLog, GrpcTestServer
from pytest_grpc_deadlines.calls import _hooks as hooks
from pytest_grpc_deadlines.calls import _sites as sites
from pytest_grpc_deadlines.calls._hooks import ChannelInfo, Pending
from pytest_grpc_deadlines.probe import ProbeRequest, ProbeStub

pytest_plugins = ["pytester"]

QUIET = ("-p", "no:cacheprovider", "-p", "no:hypothesispytest", "-p", "no:asyncio")

# grpcio enforces a service config timeout on the client only (the server sees no deadline), and
# one under about 2 s failed calls at once in a measurement (grpcio 1.85): these tests use 30 s.
SERVICE_CONFIG = json.dumps(
    {"methodConfig": [{"name": [{"service": "pytest_grpc_deadlines.probe.v1.Probe"}], "timeout": "30s"}]}
)


# --- service configs ------------------------------------------------------------------------------


def _config(*entries: Any) -> list[tuple[str, Any]]:
    return [("grpc.service_config", json.dumps({"methodConfig": list(entries)}))]


def test_service_config_timeouts_by_method_then_service_then_every_method() -> None:
    info = ChannelInfo.of(
        "localhost:1",
        _config(
            {"name": [{"service": "s.S", "method": "M"}], "timeout": "1s"},
            {"name": [{"service": "s.S"}], "timeout": "2.5s"},
            {"name": [{}], "timeout": "9s"},
        ),
    )
    assert info.target == "127.0.0.1:1"
    assert [info.config_timeout(m) for m in ("s.S/M", "s.S/N", "t.T/M")] == [1.0, 2.5, 9.0]


@pytest.mark.parametrize(
    "options",
    [
        None,
        [("grpc.max_receive_message_length", 5)],
        [("grpc.service_config", "{not json")],
        [("grpc.service_config", 5)],
        [("grpc.service_config", json.dumps([1]))],
        [("grpc.service_config", json.dumps({"methodConfig": 5}))],
        _config(5, {"name": [{"service": "s.S"}]}, {"name": 5, "timeout": "1s"}),
        _config({"name": [5], "timeout": "1s"}),
        _config(*({"name": [{"service": "s.S"}], "timeout": t} for t in ("1", "xs", "-1s", "infs", 5))),
        5,  # not a sequence of pairs: grpc says so itself
    ],
)
def test_a_service_config_without_usable_timeouts_gives_none(options: Any) -> None:
    assert ChannelInfo.of("t", options).config_timeout("s.S/M") is None


@pytest.mark.parametrize(
    ("value", "seconds"), [(None, None), (True, None), ("abc", None), (2, 2.0), ("1.5", 1.5)]
)
def test_seconds_reads_what_grpc_would_and_nothing_else(value: Any, seconds: float | None) -> None:
    assert hooks.seconds(value) == seconds


def test_a_service_config_timeout_is_recorded_with_its_source(
    grpc_test_server: GrpcTestServer, grpc_calls: CallLog
) -> None:
    options = [("grpc.service_config", SERVICE_CONFIG)]
    with grpc.insecure_channel(grpc_test_server.target, options=options) as channel:
        ProbeStub(channel).Unary(ProbeRequest())
        ProbeStub(channel).Unary(ProbeRequest(), timeout=60)
        ProbeStub(channel).Unary(ProbeRequest(), timeout=5)
    assert [(c.timeout, c.timeout_source, c.code) for c in grpc_calls] == [
        (30.0, "service config", grpc.StatusCode.OK),
        (30.0, "service config", grpc.StatusCode.OK),
        (5.0, "call", grpc.StatusCode.OK),
    ]


def test_the_audit_passes_a_deadline_from_an_interceptor_or_the_service_config(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(
        f"""
        import grpc
        import pytest
        from pytest_grpc_deadlines.probe import ProbeRequest, ProbeStub
        from test_transparency_helpers import SetTimeout

        @pytest.mark.grpc_require_deadlines
        def test_interceptor(grpc_test_server):
            ProbeStub(grpc.intercept_channel(grpc_test_server.channel(), SetTimeout())).Unary(ProbeRequest())

        @pytest.mark.grpc_require_deadlines
        def test_service_config(grpc_test_server):
            options = [("grpc.service_config", {SERVICE_CONFIG!r})]
            with grpc.insecure_channel(grpc_test_server.target, options=options) as channel:
                ProbeStub(channel).Unary(ProbeRequest())
        """
    )
    pytester.makepyfile(
        test_transparency_helpers="""
        import grpc

        class Details(grpc.ClientCallDetails):
            def __init__(self, details):
                self.method, self.timeout, self.metadata = details.method, 3.0, details.metadata
                self.credentials, self.wait_for_ready = details.credentials, details.wait_for_ready
                self.compression = getattr(details, "compression", None)

        class SetTimeout(grpc.UnaryUnaryClientInterceptor):
            def intercept_unary_unary(self, continuation, details, request):
                return continuation(Details(details), request)
        """
    )
    pytester.runpytest(*QUIET).assert_outcomes(passed=2)


# --- asyncio deadlines ----------------------------------------------------------------------------


def test_aio_timeout_keeps_the_callers_value_unless_an_interceptor_moved_it() -> None:
    site = sites.CallSite("t.py:1", None, False)
    info = ChannelInfo.of("t", None)
    now = time.time()
    assert hooks.aio_timeout(Pending(info, site, 5, time.monotonic()), now + 5) == (5, False)
    timeout, moved = hooks.aio_timeout(Pending(info, site, 5, time.monotonic()), now + 3)
    assert moved
    assert timeout is not None
    assert abs(timeout - 3) < 0.5  # margin: only the time between two time.time() calls
    assert hooks.aio_timeout(Pending(info, site, 5, time.monotonic()), None) == (None, True)
    assert hooks.aio_timeout(Pending(info, site, None, time.monotonic()), None) == (None, False)
    assert hooks.aio_timeout(Pending(info, site, 5, time.monotonic()), "not a time") == (5.0, False)
