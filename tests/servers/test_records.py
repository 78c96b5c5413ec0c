"""A server's call records, sync and asyncio: method, metadata, request and deadline, waiting for
the handler to end, and the outcome the servicer gave."""

from __future__ import annotations

import asyncio
import re

import grpc
import grpc.aio
import pytest

from pytest_grpc_deadlines import AioGrpcTestServer, GrpcTestServer
from pytest_grpc_deadlines.probe import PROBE_SERVICE_NAME, ProbeRequest
from pytest_grpc_deadlines.servers._pool import ServerFactory
from tests.echo_service import EchoServicer, add_EchoServicer_to_server, say
from tests.rpc import status_code as _code

UNARY = f"{PROBE_SERVICE_NAME}/Unary"


# --- what a record holds --------------------------------------------------------------------------


def test_records_hold_method_metadata_request_and_deadline(server: GrpcTestServer) -> None:
    stub = server.probe()
    stub.Unary(ProbeRequest(payload=b"abc"), timeout=5, metadata=(("x-test", "1"),))
    stub.Unary(ProbeRequest())
    first, second = server.calls
    assert first.method == UNARY
    assert ("x-test", "1") in first.metadata
    assert first.request.payload == b"abc"
    assert first.deadline is not None
    assert 4 < first.deadline <= 5.1
    assert second.deadline is None  # the sync server's 9.22e18 means "none"
    assert first.wait(5)
    assert first.ended is not None
    assert first.ended >= first.started


def test_client_stream_records_its_first_request(server: GrpcTestServer) -> None:
    server.probe().ClientStream(iter([ProbeRequest(payload=b"1"), ProbeRequest(payload=b"2")]), timeout=5)
    [call] = server.calls
    assert call.request.payload == b"1"


@pytest.mark.asyncio
async def test_no_deadline_is_recorded_as_none(grpc_aio_test_server: AioGrpcTestServer) -> None:
    response = await grpc_aio_test_server.probe().Unary(ProbeRequest())
    assert response.deadline_seconds == 0.0
    assert grpc_aio_test_server.calls[0].deadline is None


@pytest.mark.asyncio
async def test_wait_async_is_false_while_the_handler_is_held(grpc_aio_test_server: AioGrpcTestServer) -> None:
    gate = grpc_aio_test_server.hold(UNARY)
    call = asyncio.ensure_future(grpc_aio_test_server.probe().Unary(ProbeRequest(), timeout=30))
    assert await gate.wait_entered(10)
    [record] = grpc_aio_test_server.calls
    assert not await record.wait_async(0.01)  # margin: none needed, the gate is shut
    gate.release()
    assert await record.wait_async(10)
    assert (await call).index == 0


# --- the servicer's outcome -----------------------------------------------------------------------


def test_servicer_abort_and_raise_are_recorded(grpc_test_server_factory: ServerFactory) -> None:
    server = grpc_test_server_factory()
    stub = server.probe()
    assert _code(lambda: stub.Unary(ProbeRequest(status_code=5, status_details="gone"), timeout=5)) is (
        grpc.StatusCode.NOT_FOUND
    )
    call = server.calls[0]
    assert call.wait(5)
    assert (call.outcome, call.code, call.details) == ("aborted", grpc.StatusCode.NOT_FOUND, "gone")


def test_servicer_exception_is_recorded_as_raised(grpc_test_server_factory: ServerFactory) -> None:
    class Broken(EchoServicer):
        def Say(self, request: bytes, context: object) -> bytes:
            raise RuntimeError("boom")

    server = grpc_test_server_factory((add_EchoServicer_to_server, Broken()))
    assert _code(lambda: say(server.channel(), b"x")) is grpc.StatusCode.UNKNOWN
    [call] = server.calls
    assert call.wait(5)
    assert (call.outcome, call.code) == ("raised", grpc.StatusCode.UNKNOWN)
    assert isinstance(call.exception, RuntimeError)


@pytest.mark.asyncio
async def test_servicer_status_is_recorded_as_aborted(grpc_aio_test_server: AioGrpcTestServer) -> None:
    stub = grpc_aio_test_server.probe()
    assert await _code(stub.Unary(ProbeRequest(status_code=5, status_details="gone"), timeout=5)) is (
        grpc.StatusCode.NOT_FOUND
    )
    [call] = grpc_aio_test_server.calls
    assert await call.wait_async(5)
    assert (call.outcome, call.code) == ("aborted", grpc.StatusCode.NOT_FOUND)


# --- a response grpc does not send ----------------------------------------------------------------

SEND_LIMIT = {"grpc.max_send_message_length": 1000}


def test_a_response_larger_than_the_send_limit_is_recorded_as_not_sent(
    grpc_test_server_factory: ServerFactory,
) -> None:
    server = grpc_test_server_factory(options=SEND_LIMIT)
    stub = server.probe()
    with pytest.raises(grpc.RpcError) as info:
        stub.Unary(ProbeRequest(response_bytes=2000), timeout=5)
    assert info.value.code() is grpc.StatusCode.RESOURCE_EXHAUSTED
    assert stub.Unary(ProbeRequest(response_bytes=10), timeout=5).index == 0  # small ones pass
    big, small = server.calls
    assert big.wait(5)
    assert (big.outcome, big.code) == ("aborted", grpc.StatusCode.RESOURCE_EXHAUSTED)
    # the size grpc measured, in grpc's own words (newer grpcio puts "SERVER: " before them)
    assert re.fullmatch(r"Sent message larger than max \(\d+ vs\. 1000\)", big.details or "")
    assert info.value.details() in (big.details, f"SERVER: {big.details}")
    assert (small.outcome, small.code) == ("ok", grpc.StatusCode.OK)


def test_a_stream_message_larger_than_the_send_limit_is_recorded_as_not_sent(
    grpc_test_server_factory: ServerFactory,
) -> None:
    server = grpc_test_server_factory(options=SEND_LIMIT)
    with pytest.raises(grpc.RpcError) as info:
        list(server.probe().ServerStream(ProbeRequest(responses=2, response_bytes=2000), timeout=5))
    assert info.value.code() is grpc.StatusCode.RESOURCE_EXHAUSTED
    [call] = server.calls
    assert call.wait(5)
    assert (call.outcome, call.code) == ("aborted", grpc.StatusCode.RESOURCE_EXHAUSTED)


@pytest.mark.asyncio
async def test_aio_a_response_larger_than_the_send_limit_is_recorded_as_not_sent() -> None:
    async with AioGrpcTestServer(options=SEND_LIMIT) as server:
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await server.probe().Unary(ProbeRequest(response_bytes=2000), timeout=5)
        assert info.value.code() is grpc.StatusCode.RESOURCE_EXHAUSTED
        [call] = server.calls
        assert await call.wait_async(5)
        assert (call.outcome, call.code) == ("aborted", grpc.StatusCode.RESOURCE_EXHAUSTED)


@pytest.mark.asyncio
async def test_aio_a_blocking_wait_on_the_servers_own_loop_raises_naming_the_awaitable_one(
    grpc_aio_test_server: AioGrpcTestServer,
) -> None:
    gate = grpc_aio_test_server.hold(f"{PROBE_SERVICE_NAME}/Unary")
    pending = asyncio.ensure_future(grpc_aio_test_server.probe().Unary(ProbeRequest(), timeout=5))
    assert await gate.wait_entered(5)
    [call] = grpc_aio_test_server.calls
    with pytest.raises(RuntimeError, match=re.escape("use `await call.wait_async(timeout)` instead")):
        call.wait(1)  # would block the loop the held handler needs
    assert call.wait(0) is False  # a wait that does not block is fine
    gate.release()
    assert (await pending).index == 0
    assert await call.wait_async(5)
    assert call.wait(1)  # ended: nothing to block on


@pytest.mark.asyncio
async def test_a_blocking_wait_on_a_sync_servers_record_works_in_an_async_test(
    server: GrpcTestServer,
) -> None:
    server.probe().Unary(ProbeRequest(), timeout=5)
    [call] = server.calls
    assert call.wait(5)  # the sync server's handler runs on its own threads
