"""The asyncio test server's edges: lifecycle, gates, resets, faults on streams, and user
servicers that write with ``context.write()`` or raise."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import grpc
import grpc.aio
import pytest

from pytest_grpc_deadlines.cascade import Cascade, Setting
from pytest_grpc_deadlines.probe import PROBE_SERVICE_NAME, ProbeRequest
from pytest_grpc_deadlines.servers._aio import AioGrpcTestServer
from tests.timing import REACHES_SERVER

UNARY = f"{PROBE_SERVICE_NAME}/Unary"
STREAM = f"{PROBE_SERVICE_NAME}/ServerStream"
RESET = "the test server was reset"

#: A cascade with neither byte limits nor a grace setting.
BARE = Cascade("bare", (Setting("default", "BARE_TIMEOUT", 60, kind="seconds"),))

pytestmark = pytest.mark.asyncio

AioFactory = Callable[..., Awaitable[AioGrpcTestServer]]


async def _error(awaitable: Awaitable[object]) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as info:
        await awaitable
    return info.value


async def _messages(stream: Any) -> list[Any]:
    return [message async for message in stream]


async def _first_call(server: AioGrpcTestServer) -> Any:
    """The first call's record, once its handler is suspended in the server: it shares this loop,
    so by the time the record shows, the handler has read its delays and waits."""

    async def arrived() -> Any:
        while not server.calls:
            await asyncio.sleep(0.001)
        return server.calls[0]

    return await asyncio.wait_for(arrived(), 10)


# --- lifecycle -----------------------------------------------------------------------------------


async def test_start_on_a_running_server_keeps_it(grpc_aio_test_server_factory: AioFactory) -> None:
    server = await grpc_aio_test_server_factory()
    target = server.target
    assert server.is_running
    assert await server.start() is server
    assert server.target == target
    await server.stop(None)
    assert not server.is_running


async def test_restart_fails_loudly_when_another_socket_took_the_port(
    grpc_aio_test_server_factory: AioFactory,
) -> None:
    server = await grpc_aio_test_server_factory()
    port = int(server.target.rpartition(":")[2])
    await server.stop(None)
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", port))
        squatter.listen()
        with pytest.raises(RuntimeError):
            await server.restart()
        assert not server.is_running


async def test_stop_without_a_grace_setting_stops_at_once() -> None:
    async with AioGrpcTestServer(cascade=BARE) as server:
        gate = server.hold(UNARY)
        call = asyncio.ensure_future(server.probe().Unary(ProbeRequest(), timeout=30))
        assert await gate.wait_entered(10)
        await server.stop()  # the cascade has no grace: at once, as stop(None)
        assert (await _error(call)).code() is grpc.StatusCode.UNAVAILABLE


async def test_a_method_nothing_hosts_is_unimplemented_and_not_recorded(
    grpc_aio_test_server: AioGrpcTestServer,
) -> None:
    call = grpc_aio_test_server.channel().unary_unary("/nowhere.Service/Method")(b"", timeout=5)
    assert (await _error(call)).code() is grpc.StatusCode.UNIMPLEMENTED
    assert grpc_aio_test_server.calls == []


# --- gates ---------------------------------------------------------------------------------------


async def test_hold_refuses_a_non_bool_honor_cancellation(grpc_aio_test_server: AioGrpcTestServer) -> None:
    with pytest.raises(ValueError, match="honor_cancellation='yes' must be True or False"):
        grpc_aio_test_server.hold(UNARY, honor_cancellation="yes")  # type: ignore[arg-type]


async def test_holding_a_method_again_releases_the_calls_the_old_gate_held(
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


async def test_wait_async_is_false_while_the_handler_is_held(grpc_aio_test_server: AioGrpcTestServer) -> None:
    gate = grpc_aio_test_server.hold(UNARY)
    call = asyncio.ensure_future(grpc_aio_test_server.probe().Unary(ProbeRequest(), timeout=30))
    assert await gate.wait_entered(10)
    [record] = grpc_aio_test_server.calls
    assert not await record.wait_async(0.01)  # margin: none needed, the gate is shut
    gate.release()
    assert await record.wait_async(10)
    assert (await call).index == 0


async def test_a_delay_shorter_than_the_deadline_only_slows_the_call(
    grpc_aio_test_server: AioGrpcTestServer,
) -> None:
    grpc_aio_test_server.delay(UNARY, 0.05)  # margin: 50 ms against a 30 s deadline
    assert (await grpc_aio_test_server.probe().Unary(ProbeRequest(), timeout=30)).index == 0
    [record] = grpc_aio_test_server.calls
    assert (record.outcome, record.cancelled) == ("ok", False)
    assert record.duration is not None
    assert record.duration >= 0.05


async def test_a_cancellation_aware_delay_behind_a_gate_abandons_a_call_whose_client_left(
    grpc_aio_test_server: AioGrpcTestServer,
) -> None:
    """The gate ignores the client leaving; the delay after it does not, so the servicer
    never runs once the gate opens."""
    gate = grpc_aio_test_server.hold(UNARY)
    grpc_aio_test_server.delay(UNARY, 30)
    call = grpc_aio_test_server.probe().Unary(ProbeRequest(), timeout=REACHES_SERVER)
    assert (await _error(call)).code() is grpc.StatusCode.DEADLINE_EXCEEDED
    assert await gate.wait_cancelled(10)
    gate.release()
    [record] = grpc_aio_test_server.calls
    assert await record.wait_async(10), "the delay slept although the client had left"
    assert (record.outcome, record.cancelled) == ("abandoned", True)


# --- abandoned calls end CANCELLED, never OK ------------------------------------------------------


async def test_reset_during_a_delay_ends_a_unary_call_cancelled(
    grpc_aio_test_server: AioGrpcTestServer,
) -> None:
    grpc_aio_test_server.delay(UNARY, 30)
    call = asyncio.ensure_future(grpc_aio_test_server.probe().Unary(ProbeRequest(), timeout=30))
    record = await _first_call(grpc_aio_test_server)
    grpc_aio_test_server.reset()
    error = await _error(call)
    assert (error.code(), error.details()) == (grpc.StatusCode.CANCELLED, RESET)
    assert record.outcome == "abandoned"


@pytest.mark.parametrize("how", ["delay", "stream_interval"])
async def test_reset_ends_a_waiting_response_stream_cancelled_not_short(
    grpc_aio_test_server: AioGrpcTestServer, how: str
) -> None:
    getattr(grpc_aio_test_server, how)(STREAM, 30)
    stream = grpc_aio_test_server.probe().ServerStream(ProbeRequest(responses=3), timeout=30)
    read = asyncio.ensure_future(_messages(stream))
    record = await _first_call(grpc_aio_test_server)
    grpc_aio_test_server.reset()
    error = await _error(read)
    assert (error.code(), error.details()) == (grpc.StatusCode.CANCELLED, RESET)
    assert record.outcome == "abandoned"


# --- faults on streams ---------------------------------------------------------------------------


async def test_a_stream_fault_fails_before_the_first_message(grpc_aio_test_server: AioGrpcTestServer) -> None:
    grpc_aio_test_server.fail(STREAM, grpc.StatusCode.DATA_LOSS, "lost")
    received: list[int] = []

    async def read() -> None:
        async for message in grpc_aio_test_server.probe().ServerStream(ProbeRequest(responses=3), timeout=5):
            received.append(message.index)

    error = await _error(read())
    assert (received, error.code(), error.details()) == ([], grpc.StatusCode.DATA_LOSS, "lost")


async def test_a_stream_shorter_than_after_messages_fails_at_its_end(
    grpc_aio_test_server: AioGrpcTestServer,
) -> None:
    grpc_aio_test_server.fail(STREAM, grpc.StatusCode.ABORTED, after_messages=5)
    received: list[int] = []

    async def read() -> None:
        async for message in grpc_aio_test_server.probe().ServerStream(ProbeRequest(responses=3), timeout=5):
            received.append(message.index)

    error = await _error(read())
    assert (received, error.code()) == ([0, 1, 2], grpc.StatusCode.ABORTED)
    [record] = grpc_aio_test_server.calls
    assert (record.outcome, record.code) == ("aborted", grpc.StatusCode.ABORTED)


# --- user servicers ------------------------------------------------------------------------------


class _Writer:
    """Streams with ``context.write()`` instead of yielding; fails on request."""

    async def Chorus(self, request: bytes, context: Any) -> None:
        for index in range(3):
            await context.write(request + str(index).encode())

    async def Answer(self, requests: AsyncIterator[bytes], context: Any) -> None:
        async for request in requests:
            await context.write(b"re:" + request)

    async def Broken(self, request: bytes, context: Any) -> bytes:
        raise ValueError("boom")


def _add_writer(servicer: _Writer, server: Any) -> None:
    handlers = {
        "Chorus": grpc.unary_stream_rpc_method_handler(servicer.Chorus),
        "Answer": grpc.stream_stream_rpc_method_handler(servicer.Answer),
        "Broken": grpc.unary_unary_rpc_method_handler(servicer.Broken),
    }
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler("tests.Writer", handlers),))


async def _requests(*messages: bytes) -> AsyncIterator[bytes]:
    for message in messages:
        yield message


async def test_a_servicer_that_writes_with_context_write_streams_its_messages(
    grpc_aio_test_server_factory: AioFactory,
) -> None:
    server = await grpc_aio_test_server_factory((_add_writer, _Writer()))
    channel = server.channel()
    chorus = channel.unary_stream("/tests.Writer/Chorus")(b"la", timeout=5)
    assert await _messages(chorus) == [b"la0", b"la1", b"la2"]
    answer = channel.stream_stream("/tests.Writer/Answer")(_requests(b"a", b"b"), timeout=5)
    assert await _messages(answer) == [b"re:a", b"re:b"]
    assert [(c.method, c.outcome, c.request) for c in server.calls] == [
        ("tests.Writer/Chorus", "ok", b"la"),
        ("tests.Writer/Answer", "ok", b"a"),
    ]


async def test_a_writing_servicer_still_gets_delays_and_faults(
    grpc_aio_test_server_factory: AioFactory,
) -> None:
    server = await grpc_aio_test_server_factory((_add_writer, _Writer()))
    server.delay("tests.Writer/Chorus", 30)
    chorus = server.channel().unary_stream("/tests.Writer/Chorus")(b"la", timeout=REACHES_SERVER)
    assert (await _error(_messages(chorus))).code() is grpc.StatusCode.DEADLINE_EXCEEDED
    server.fail("tests.Writer/Answer", grpc.StatusCode.UNAVAILABLE)
    answer = server.channel().stream_stream("/tests.Writer/Answer")(_requests(b"a"), timeout=5)
    assert (await _error(_messages(answer))).code() is grpc.StatusCode.UNAVAILABLE
    delayed, failed = server.calls
    assert await delayed.wait_async(10)
    assert (delayed.outcome, failed.outcome) == ("abandoned", "aborted")


async def test_an_exception_is_recorded_as_raised_with_its_text(
    grpc_aio_test_server_factory: AioFactory,
) -> None:
    server = await grpc_aio_test_server_factory((_add_writer, _Writer()))
    call = server.channel().unary_unary("/tests.Writer/Broken")(b"", timeout=5)
    assert (await _error(call)).code() is grpc.StatusCode.UNKNOWN
    [record] = server.calls
    assert await record.wait_async(5)
    assert (record.outcome, record.code, record.details) == (
        "raised",
        grpc.StatusCode.UNKNOWN,
        "ValueError: boom",
    )
    assert isinstance(record.exception, ValueError)
