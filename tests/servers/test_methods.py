"""Naming the method a behaviour applies to, methods nothing hosts, and the behaviour arguments
refused before any call."""

from __future__ import annotations

from typing import Any

import grpc
import grpc.aio
import pytest

from pytest_grpc_deadlines import AioGrpcTestServer, GrpcTestServer, MethodError, jitter
from pytest_grpc_deadlines.probe import PROBE_SERVICE_NAME, ProbeRequest
from pytest_grpc_deadlines.servers._pool import ServerFactory
from tests.rpc import rpc_error as _error
from tests.rpc import status_code as _code
from tests.rpc import unary_unary

UNARY = f"{PROBE_SERVICE_NAME}/Unary"
STREAM = f"{PROBE_SERVICE_NAME}/ServerStream"


# --- method names ---------------------------------------------------------------------------------


def test_methods_may_be_named_with_a_leading_slash(server: GrpcTestServer) -> None:
    server.fail("/" + UNARY, grpc.StatusCode.ABORTED)
    assert _code(lambda: server.probe().Unary(ProbeRequest(), timeout=5)) is grpc.StatusCode.ABORTED


def test_unknown_method_is_an_error_listing_the_hosted_ones(server: GrpcTestServer) -> None:
    with pytest.raises(MethodError, match=r"unknown method 'pkg.Nope/X'; this server hosts: .*Probe/Unary"):
        server.delay("pkg.Nope/X", 1)


def test_a_method_nothing_hosts_is_unimplemented_and_not_recorded(
    grpc_test_server_factory: ServerFactory,
) -> None:
    server = grpc_test_server_factory()
    error = _error(lambda: unary_unary(server.channel(), "/nowhere.Service/Method")(b"", timeout=5))
    assert error.code() is grpc.StatusCode.UNIMPLEMENTED
    assert server.calls == []


@pytest.mark.asyncio
async def test_aio_a_method_nothing_hosts_is_unimplemented_and_not_recorded(
    grpc_aio_test_server: AioGrpcTestServer,
) -> None:
    call = unary_unary(grpc_aio_test_server.channel(), "/nowhere.Service/Method")(b"", timeout=5)
    assert (await _error(call)).code() is grpc.StatusCode.UNIMPLEMENTED
    assert grpc_aio_test_server.calls == []


# --- behaviour arguments --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda s: s.delay(UNARY, -1), "must not be negative"),
        (lambda s: s.delay(UNARY, float("nan")), "is not a number of seconds"),
        (lambda s: s.delay(UNARY, 1, when="during"), "use 'before' or 'after'"),
        (lambda s: s.delay(UNARY, []), "at least one value"),
        (lambda s: s.fail(UNARY, grpc.StatusCode.OK), "other than OK"),
        (lambda s: s.fail(UNARY, 14), "grpc.StatusCode"),
        (lambda s: s.fail(UNARY, grpc.StatusCode.ABORTED, times=0), "positive int"),
        (lambda s: s.fail(UNARY, grpc.StatusCode.ABORTED, after_messages=-1), ">= 0"),
        (lambda s: s.stream_interval(STREAM, -0.1), "must not be negative"),
        (lambda s: s.hold(UNARY, honor_cancellation="no"), "True or False"),
    ],
)
def test_bad_behaviour_arguments_are_clear_errors(
    grpc_test_server: GrpcTestServer, call: object, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        assert callable(call)
        call(grpc_test_server)


def _jitter(mean: Any, spread: Any) -> Any:
    return jitter(mean, spread)


@pytest.mark.parametrize(
    ("call", "error", "message"),
    [
        (
            lambda s: s.delay(None, 1),
            MethodError,
            r"method must be a str like 'pkg.Service/Method', not None",
        ),
        (lambda s: s.delay(UNARY, 1, honor_cancellation=1), ValueError, "honor_cancellation=1 must be True"),
        (lambda s: s.delay(UNARY, _jitter("0.1", 0)), ValueError, r"jitter mean='0.1' must be a finite"),
        (lambda s: s.delay(UNARY, _jitter(0.1, -0.5)), ValueError, r"jitter spread=-0.5 must not be neg"),
        (lambda s: s.fail(UNARY, grpc.StatusCode.ABORTED, b"no"), ValueError, r"details=b'no' must be a str"),
    ],
)
def test_bad_behaviour_arguments_are_refused_before_any_call(
    grpc_test_server: GrpcTestServer, call: Any, error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=message):
        call(grpc_test_server)
    assert (grpc_test_server.probe().Unary(ProbeRequest(), timeout=5).index, len(grpc_test_server.calls)) == (
        0,
        1,
    )
