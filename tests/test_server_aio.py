"""The asyncio test server on the test's own loop, against real grpc.aio channels."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable, Callable

import grpc
import grpc.aio
import pytest

from pytest_grpc_deadlines.probe import PROBE_SERVICE_NAME, ProbeRequest
from pytest_grpc_deadlines.servers._aio import AioGrpcTestServer
from tests.timing import ENTRY_BOUND, REACHES_SERVER

UNARY = f"{PROBE_SERVICE_NAME}/Unary"
STREAM = f"{PROBE_SERVICE_NAME}/ServerStream"

pytestmark = pytest.mark.asyncio

AioFactory = Callable[..., Awaitable[AioGrpcTestServer]]


async def _code(awaitable: Awaitable[object]) -> grpc.StatusCode:
    try:
        await awaitable
    except grpc.RpcError as exc:
        code: grpc.StatusCode = exc.code()
        return code
    return grpc.StatusCode.OK


@pytest.mark.parametrize("transport", ["tcp", "unix"])
async def test_held_call_gives_a_deterministic_disagreement(
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


async def test_fixture_serves_the_probe(grpc_aio_test_server: AioGrpcTestServer) -> None:
    response = await grpc_aio_test_server.probe().Unary(ProbeRequest(response_bytes=4), timeout=5)
    assert response.payload == b"xxxx"
    [call] = grpc_aio_test_server.calls
    assert call.deadline is not None
    assert 4 < call.deadline <= 5.1


async def test_no_deadline_is_recorded_as_none(grpc_aio_test_server: AioGrpcTestServer) -> None:
    response = await grpc_aio_test_server.probe().Unary(ProbeRequest())
    assert response.deadline_seconds == 0.0
    assert grpc_aio_test_server.calls[0].deadline is None


async def test_before_delay_abandons_on_the_deadline(grpc_aio_test_server: AioGrpcTestServer) -> None:
    grpc_aio_test_server.delay(UNARY, 30)
    assert await _code(grpc_aio_test_server.probe().Unary(ProbeRequest(), timeout=REACHES_SERVER)) is (
        grpc.StatusCode.DEADLINE_EXCEEDED
    )
    [call] = grpc_aio_test_server.calls
    assert await call.wait_async(5)
    assert (call.outcome, call.cancelled) == ("abandoned", True)


async def test_after_delay_records_ok(grpc_aio_test_server: AioGrpcTestServer) -> None:
    grpc_aio_test_server.delay(UNARY, 30, when="after")
    assert await _code(grpc_aio_test_server.probe().Unary(ProbeRequest(), timeout=REACHES_SERVER)) is (
        grpc.StatusCode.DEADLINE_EXCEEDED
    )
    [call] = grpc_aio_test_server.calls
    assert await call.wait_async(5)
    assert (call.outcome, call.cancelled) == ("ok", True)


async def test_gate_holds_until_released(grpc_aio_test_server: AioGrpcTestServer) -> None:
    gate = grpc_aio_test_server.hold(UNARY)
    call = asyncio.ensure_future(grpc_aio_test_server.probe().Unary(ProbeRequest(), timeout=30))
    assert await gate.wait_entered(10)
    assert not call.done()
    gate.release()
    assert (await asyncio.wait_for(call, 10)).index == 0
    assert not await gate.wait_cancelled(0.01)


async def test_stream_interval_and_deadline(grpc_aio_test_server: AioGrpcTestServer) -> None:
    """# margin: messages at 0.2, 0.4, 0.6 s against a 0.7 s deadline (100 ms each side, over
    twice grpc's lateness with the CPUs oversubscribed; 50 ms failed under a loaded tox run)."""
    grpc_aio_test_server.stream_interval(STREAM, 0.2)
    received = []
    with pytest.raises(grpc.RpcError) as info:
        async for response in grpc_aio_test_server.probe().ServerStream(
            ProbeRequest(responses=10), timeout=0.7
        ):
            received.append(response.index)
    assert info.value.code() is grpc.StatusCode.DEADLINE_EXCEEDED
    assert received == [0, 1, 2]


async def test_fail_times_and_after_messages(grpc_aio_test_server: AioGrpcTestServer) -> None:
    stub = grpc_aio_test_server.probe()
    grpc_aio_test_server.fail(UNARY, grpc.StatusCode.UNAVAILABLE, "later", times=1)
    assert await _code(stub.Unary(ProbeRequest(), timeout=5)) is grpc.StatusCode.UNAVAILABLE
    assert await _code(stub.Unary(ProbeRequest(), timeout=5)) is grpc.StatusCode.OK
    grpc_aio_test_server.fail(STREAM, grpc.StatusCode.DATA_LOSS, after_messages=2)
    received = []
    with pytest.raises(grpc.RpcError) as info:
        async for response in stub.ServerStream(ProbeRequest(responses=5), timeout=5):
            received.append(response.index)
    assert (received, info.value.code()) == ([0, 1], grpc.StatusCode.DATA_LOSS)
    outcomes = [c.outcome for c in grpc_aio_test_server.calls]
    assert outcomes == ["aborted", "ok", "aborted"]


async def test_servicer_status_is_recorded_as_aborted(grpc_aio_test_server: AioGrpcTestServer) -> None:
    stub = grpc_aio_test_server.probe()
    assert await _code(stub.Unary(ProbeRequest(status_code=5, status_details="gone"), timeout=5)) is (
        grpc.StatusCode.NOT_FOUND
    )
    [call] = grpc_aio_test_server.calls
    assert await call.wait_async(5)
    assert (call.outcome, call.code) == ("aborted", grpc.StatusCode.NOT_FOUND)


async def test_stop_with_grace_ok_within_and_unavailable_beyond(
    grpc_aio_test_server_factory: AioFactory,
) -> None:
    server = await grpc_aio_test_server_factory()
    gate = server.hold(UNARY)
    call = asyncio.ensure_future(server.probe().Unary(ProbeRequest(), timeout=30))
    assert await gate.wait_entered(10)
    asyncio.get_running_loop().call_later(0.05, gate.release)  # margin: 50 ms into a 5 s grace
    await server.stop(5)
    assert (await call).index == 0

    server = await grpc_aio_test_server_factory()
    gate = server.hold(UNARY, honor_cancellation=True)
    call = asyncio.ensure_future(server.probe().Unary(ProbeRequest(), timeout=30))
    assert await gate.wait_entered(10)
    await server.stop(0.05)
    assert await _code(call) is grpc.StatusCode.UNAVAILABLE


async def test_restart_and_connection_refused(grpc_aio_test_server_factory: AioFactory) -> None:
    server = await grpc_aio_test_server_factory()
    stub = server.probe()
    await server.stop(None)
    assert await _code(stub.Unary(ProbeRequest(), timeout=5)) is grpc.StatusCode.UNAVAILABLE
    await server.restart()
    assert (await stub.Unary(ProbeRequest(), timeout=5, wait_for_ready=True)).index == 0


async def test_unix_transport_and_cleanup() -> None:
    async with AioGrpcTestServer(transport="unix") as server:
        directory = os.path.dirname(server.target.removeprefix("unix:"))
        assert (await server.probe().Unary(ProbeRequest(), timeout=5)).index == 0
    assert not os.path.exists(directory)


async def test_close_does_not_wait_for_a_held_handler() -> None:
    server = await AioGrpcTestServer().start()
    gate = server.hold(UNARY)
    call = asyncio.ensure_future(server.probe().Unary(ProbeRequest(), timeout=30))
    assert await gate.wait_entered(10)
    loop = asyncio.get_running_loop()
    start = loop.time()
    await server.close()
    # margin: the figure is a benchmark (a few ms); 2 s only proves close does not wait 30 s
    assert loop.time() - start < 2
    with pytest.raises((grpc.RpcError, asyncio.CancelledError)):
        await call


@pytest.mark.grpc_timeouts(max_rx_bytes=1024)
async def test_marker_byte_limit_applies(grpc_aio_test_server: AioGrpcTestServer) -> None:
    stub = grpc_aio_test_server.probe(max_send_message_length=-1)
    assert await _code(stub.Unary(ProbeRequest(payload=b"x" * 2048), timeout=5)) is (
        grpc.StatusCode.RESOURCE_EXHAUSTED
    )
