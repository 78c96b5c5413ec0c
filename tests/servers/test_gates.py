"""Gates, sync and asyncio: a held call gives a deterministic disagreement; release, hold again,
and what a gate sees of a client that left."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

import grpc
import grpc.aio
import pytest

from pytest_grpc_deadlines import AioGrpcTestServer, GrpcTestServer
from pytest_grpc_deadlines.probe import PROBE_SERVICE_NAME, ProbeRequest
from pytest_grpc_deadlines.servers._pool import ServerFactory
from tests.rpc import future_error
from tests.rpc import status_code as _code
from tests.timing import ENTRY_BOUND, REACHES_SERVER

UNARY = f"{PROBE_SERVICE_NAME}/Unary"
CLIENT_STREAM = f"{PROBE_SERVICE_NAME}/ClientStream"
AioFactory = Callable[..., Awaitable[AioGrpcTestServer]]


# --- a deterministic disagreement -----------------------------------------------------------------


def test_held_call_gives_a_deterministic_disagreement(server: GrpcTestServer) -> None:
    """Hold, call with a 20 ms deadline, see DEADLINE_EXCEEDED, wait for the server to see it,
    release: the handler ends OK after the client gave up, every time. On a starved machine a
    20 ms call can expire before the server sees it at all: no record, nothing to disagree on."""
    stub = server.probe()
    stub.Unary(ProbeRequest(), timeout=5)  # connect first
    reached = 0
    for _ in range(200 if server.transport == "tcp" else 50):
        server.reset()
        gate = server.hold(UNARY)
        with pytest.raises(grpc.RpcError) as info:
            stub.Unary(ProbeRequest(), timeout=0.02)
        assert info.value.code() is grpc.StatusCode.DEADLINE_EXCEEDED
        if not gate.wait_entered(ENTRY_BOUND):
            assert server.calls == []
            continue
        reached += 1
        assert gate.wait_cancelled(10)
        gate.release()
        [call] = server.calls
        assert call.wait(10)
        assert (call.outcome, call.cancelled, call.code) == ("ok", True, grpc.StatusCode.OK)
    assert reached > 0


@pytest.mark.parametrize("transport", ["tcp", "unix"])
@pytest.mark.asyncio
async def test_aio_held_call_gives_a_deterministic_disagreement(
    grpc_aio_test_server_factory: AioFactory, transport: str
) -> None:
    server = await grpc_aio_test_server_factory(transport=transport)
    stub = server.probe()
    await stub.Unary(ProbeRequest(), timeout=5)  # connect first
    reached = 0
    for _ in range(200 if transport == "tcp" else 50):
        server.reset()
        gate = server.hold(UNARY)
        assert await _code(stub.Unary(ProbeRequest(), timeout=0.02)) is grpc.StatusCode.DEADLINE_EXCEEDED
        if not await gate.wait_entered(ENTRY_BOUND):  # expired before the server saw it
            assert server.calls == []
            continue
        reached += 1
        assert await gate.wait_cancelled(10)
        gate.release()
        [call] = server.calls
        assert await call.wait_async(10)
        assert (call.outcome, call.cancelled, call.code) == ("ok", True, grpc.StatusCode.OK)
    assert reached > 0


# --- holding and releasing ------------------------------------------------------------------------


def test_gate_holds_until_released(server: GrpcTestServer) -> None:
    gate = server.hold(UNARY)
    future = server.probe().Unary.future(ProbeRequest(), timeout=30)
    assert gate.wait_entered(10)
    assert not future.done()
    gate.release()
    assert future.result(timeout=10).index == 0
    assert gate.entered == 1


@pytest.mark.asyncio
async def test_aio_gate_holds_until_released(grpc_aio_test_server: AioGrpcTestServer) -> None:
    gate = grpc_aio_test_server.hold(UNARY)
    call = asyncio.ensure_future(grpc_aio_test_server.probe().Unary(ProbeRequest(), timeout=30))
    assert await gate.wait_entered(10)
    assert not call.done()
    gate.release()
    assert (await asyncio.wait_for(call, 10)).index == 0
    assert not await gate.wait_cancelled(0.01)


def test_holding_a_method_again_releases_the_calls_the_old_gate_held(
    grpc_test_server_factory: ServerFactory,
) -> None:
    server = grpc_test_server_factory()
    first = server.hold(UNARY)
    future = server.probe().Unary.future(ProbeRequest(), timeout=30)
    assert first.wait_entered(10)
    assert repr(first) == f"Gate({UNARY}, entered=1, released=False)"
    second = server.hold(UNARY)
    assert future.result(timeout=10).index == 0
    assert repr(first) == f"Gate({UNARY}, entered=1, released=True)"
    assert (second.entered, second.released) == (0, False)


@pytest.mark.asyncio
async def test_aio_holding_a_method_again_releases_the_calls_the_old_gate_held(
    grpc_aio_test_server: AioGrpcTestServer,
) -> None:
    first = grpc_aio_test_server.hold(UNARY)
    call = asyncio.ensure_future(grpc_aio_test_server.probe().Unary(ProbeRequest(), timeout=30))
    assert await first.wait_entered(10)
    assert repr(first) == f"AioGate({UNARY}, entered=1, released=False)"
    second = grpc_aio_test_server.hold(UNARY)
    assert (await asyncio.wait_for(call, 10)).index == 0
    assert repr(first) == f"AioGate({UNARY}, entered=1, released=True)"
    assert (second.entered, second.released) == (0, False)


def test_wait_entered_times_out_when_no_call_arrives(server: GrpcTestServer) -> None:
    gate = server.hold(UNARY)
    assert not gate.wait_entered(0.01)
    assert not gate.wait_cancelled(0.01)


@pytest.mark.asyncio
async def test_hold_refuses_a_non_bool_honor_cancellation(grpc_aio_test_server: AioGrpcTestServer) -> None:
    with pytest.raises(ValueError, match="honor_cancellation='yes' must be True or False"):
        grpc_aio_test_server.hold(UNARY, honor_cancellation="yes")  # type: ignore[arg-type]


# --- cancellation at the gate ---------------------------------------------------------------------


def test_gate_that_honours_cancellation_abandons_the_call(server: GrpcTestServer) -> None:
    gate = server.hold(UNARY, honor_cancellation=True)
    assert (
        _code(lambda: server.probe().Unary(ProbeRequest(), timeout=REACHES_SERVER))
        is grpc.StatusCode.DEADLINE_EXCEEDED
    )
    assert gate.wait_cancelled(10)
    [call] = server.calls
    assert call.wait(10)
    assert call.outcome == "abandoned"


def test_client_cancel_is_seen_by_the_gate(server: GrpcTestServer) -> None:
    gate = server.hold(UNARY)
    future = server.probe().Unary.future(ProbeRequest(), timeout=30)
    assert gate.wait_entered(10)
    future.cancel()
    assert gate.wait_cancelled(10)
    gate.release()
    assert server.calls[0].wait(10)
    assert server.calls[0].cancelled


def test_a_call_that_expired_while_queued_behind_a_busy_server_is_seen_cancelled_at_the_gate(
    grpc_test_server_factory: ServerFactory,
) -> None:
    """One worker, held by a first call: the second call's deadline passes while it waits for
    the worker, so its handler starts on an RPC that has already ended."""
    server = grpc_test_server_factory(max_workers=1)
    busy = server.hold(UNARY)
    first = server.probe().Unary.future(ProbeRequest(), timeout=30)
    assert busy.wait_entered(10)
    queued = server.hold(CLIENT_STREAM, honor_cancellation=True)
    second = server.probe().ClientStream.future(iter([ProbeRequest()]), timeout=REACHES_SERVER)
    assert future_error(second, 10).code() is grpc.StatusCode.DEADLINE_EXCEEDED
    busy.release()
    assert first.result(timeout=10).index == 0
    assert queued.wait_entered(10)
    assert queued.wait_cancelled(10)
    late = server.calls[-1]
    assert late.wait(10)
    assert (late.method, late.outcome, late.cancelled) == (CLIENT_STREAM, "abandoned", True)


# --- a gate nobody releases -------------------------------------------------------------------------

NEVER_RELEASED = (
    "the gate on pytest_grpc_deadlines.probe.v1.Probe/Unary was never released: the call waited 0.2 s at it"
)


def test_a_call_held_past_max_hold_fails_saying_the_gate_was_never_released(server: GrpcTestServer) -> None:
    server.hold(UNARY, max_hold=0.2)  # margin: the point is that a call without a deadline ends
    with pytest.raises(grpc.RpcError) as info:
        server.probe().Unary(ProbeRequest())  # no deadline: without max_hold it would hang
    assert info.value.code() is grpc.StatusCode.ABORTED
    assert (info.value.details() or "").startswith(NEVER_RELEASED)
    [call] = server.calls
    assert call.wait(5)
    assert (call.outcome, call.code) == ("aborted", grpc.StatusCode.ABORTED)


@pytest.mark.asyncio
async def test_aio_a_call_held_past_max_hold_fails_saying_the_gate_was_never_released(
    grpc_aio_test_server: AioGrpcTestServer,
) -> None:
    grpc_aio_test_server.hold(UNARY, max_hold=0.2)
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await grpc_aio_test_server.probe().Unary(ProbeRequest())
    assert info.value.code() is grpc.StatusCode.ABORTED
    assert (info.value.details() or "").startswith(NEVER_RELEASED)


def test_max_hold_none_holds_until_released_and_nan_is_refused(server: GrpcTestServer) -> None:
    gate = server.hold(UNARY, max_hold=None)
    assert gate.max_hold is None
    future = server.probe().Unary.future(ProbeRequest(), timeout=30)
    assert gate.wait_entered(10)
    gate.release()
    assert future.result(timeout=10).index == 0
    with pytest.raises(ValueError, match="max_hold=nan is not a number of seconds"):
        server.hold(UNARY, max_hold=float("nan"))


def test_the_default_max_hold_is_a_minute() -> None:
    from pytest_grpc_deadlines.servers._core import DEFAULT_MAX_HOLD

    with GrpcTestServer() as server:
        assert server.hold(UNARY).max_hold == DEFAULT_MAX_HOLD == 60.0


# --- calls belong to the test during which they arrive ------------------------------------------------


def test_calls_queued_behind_busy_workers_at_a_reset_never_reach_the_next_tests_gate(
    grpc_test_server_factory: ServerFactory,
) -> None:
    server = grpc_test_server_factory(max_workers=2)
    # grpc asks for a method's handler when a call arrives: count arrivals there, so that the
    # reset comes after all five calls have reached the server (a call still on its way when
    # the test ends belongs to the next test, by design)
    arrivals: list[str] = []
    wrap = server._wrap

    def counted(method: str, handler: Any) -> Any:
        arrivals.append(method)
        return wrap(method, handler)

    server._wrap = counted  # type: ignore[method-assign]
    first = server.hold(UNARY)
    stub = server.probe()
    futures = [stub.Unary.future(ProbeRequest(), timeout=30) for _ in range(5)]
    deadline = time.monotonic() + ENTRY_BOUND
    while first.entered < 2 or len(arrivals) < 5:  # two workers held; three calls queue behind
        assert time.monotonic() < deadline, f"{first.entered} of 2 held, {len(arrivals)} of 5 arrived"
        time.sleep(0.001)  # margin: polling counters, not timing anything
    server.reset()  # the end of one test: what the fixture does between tests
    second = server.hold(UNARY)  # the next test's gate
    codes = sorted((_code(f.result) for f in futures), key=lambda code: code.name)
    seen = [
        (f.code(), f.details(), f.exception(timeout=10) and type(f.exception()).__name__) for f in futures
    ]
    assert codes == [grpc.StatusCode.CANCELLED] * 3 + [grpc.StatusCode.OK] * 2, (
        f"codes {seen}; server calls {server.calls}; gates {first!r} {second!r}"
    )
    cancelled = [future_error(f, 10) for f in futures if f.exception(timeout=10) is not None]
    assert [e.details() for e in cancelled] == ["the test server was reset"] * 3
    assert second.entered == 0
    assert server.calls == []
