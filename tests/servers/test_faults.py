"""Faults, sync and asyncio: calls failed with a status, a number of times, or partway through a
stream."""

from __future__ import annotations

import grpc
import grpc.aio
import pytest

from pytest_grpc_deadlines import AioGrpcTestServer, GrpcTestServer
from pytest_grpc_deadlines.probe import PROBE_SERVICE_NAME, ProbeRequest
from pytest_grpc_deadlines.servers._pool import ServerFactory
from tests.echo_service import SAY, EchoServicer, add_EchoServicer_to_server, say
from tests.rpc import rpc_error as _error
from tests.rpc import status_code as _code

UNARY = f"{PROBE_SERVICE_NAME}/Unary"
STREAM = f"{PROBE_SERVICE_NAME}/ServerStream"


# --- failing calls --------------------------------------------------------------------------------


def test_fail_ends_calls_with_the_code_without_running_the_servicer(
    grpc_test_server_factory: ServerFactory,
) -> None:
    servicer = EchoServicer()
    server = grpc_test_server_factory((add_EchoServicer_to_server, servicer))
    server.fail(SAY, grpc.StatusCode.UNAVAILABLE, "try later")
    with pytest.raises(grpc.RpcError) as info:
        say(server.channel(), b"hi")
    assert (info.value.code(), info.value.details()) == (grpc.StatusCode.UNAVAILABLE, "try later")
    [call] = server.calls
    assert (call.outcome, call.code, call.details) == ("aborted", grpc.StatusCode.UNAVAILABLE, "try later")
    assert servicer.said == []


def test_fail_times_limits_the_failing_calls(server: GrpcTestServer) -> None:
    server.fail(UNARY, grpc.StatusCode.UNAVAILABLE, times=2)
    stub = server.probe()
    codes = [_code(lambda: stub.Unary(ProbeRequest(), timeout=5)) for _ in range(3)]
    assert codes == [grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.OK]


def test_fail_after_messages_cuts_a_stream_partway(server: GrpcTestServer) -> None:
    server.fail(STREAM, grpc.StatusCode.DATA_LOSS, "cut", after_messages=2)
    received = []
    with pytest.raises(grpc.RpcError) as info:
        for response in server.probe().ServerStream(ProbeRequest(responses=5), timeout=5):
            received.append(response.index)
    assert received == [0, 1]
    assert info.value.code() is grpc.StatusCode.DATA_LOSS
    assert server.calls[0].outcome == "aborted"


@pytest.mark.asyncio
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


# --- faults on streams ----------------------------------------------------------------------------


def test_a_stream_fault_fails_before_the_first_message(grpc_test_server_factory: ServerFactory) -> None:
    server = grpc_test_server_factory()
    server.fail(STREAM, grpc.StatusCode.DATA_LOSS, "lost")
    received: list[int] = []
    error = _error(
        lambda: received.extend(
            m.index for m in server.probe().ServerStream(ProbeRequest(responses=3), timeout=5)
        )
    )
    assert (received, error.code(), error.details()) == ([], grpc.StatusCode.DATA_LOSS, "lost")
    [call] = server.calls
    assert (call.outcome, call.code) == ("aborted", grpc.StatusCode.DATA_LOSS)


@pytest.mark.asyncio
async def test_aio_a_stream_fault_fails_before_the_first_message(
    grpc_aio_test_server: AioGrpcTestServer,
) -> None:
    grpc_aio_test_server.fail(STREAM, grpc.StatusCode.DATA_LOSS, "lost")
    received: list[int] = []

    async def read() -> None:
        async for message in grpc_aio_test_server.probe().ServerStream(ProbeRequest(responses=3), timeout=5):
            received.append(message.index)

    error = await _error(read())
    assert (received, error.code(), error.details()) == ([], grpc.StatusCode.DATA_LOSS, "lost")


def test_a_stream_shorter_than_after_messages_fails_at_its_end(
    grpc_test_server_factory: ServerFactory,
) -> None:
    server = grpc_test_server_factory()
    server.fail(STREAM, grpc.StatusCode.ABORTED, after_messages=5)
    received: list[int] = []
    error = _error(
        lambda: received.extend(
            m.index for m in server.probe().ServerStream(ProbeRequest(responses=3), timeout=5)
        )
    )
    assert (received, error.code()) == ([0, 1, 2], grpc.StatusCode.ABORTED)


@pytest.mark.asyncio
async def test_aio_a_stream_shorter_than_after_messages_fails_at_its_end(
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
