"""What the server records of a cancellation: who ended the call, when the server learnt of it,
when the handler saw it and ended, and the verdict that follows. Real servicers on real servers:
one that checks and stops, one that finishes the work anyway, one that cancels the call itself."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable
from typing import Any

import grpc
import grpc.aio
import pytest

from pytest_grpc_deadlines import AioGrpcTestServer, CallLog, GrpcTestServer
from pytest_grpc_deadlines.servers._pool import ServerFactory
from pytest_grpc_deadlines.servers._records import SERVER_CANCELLED_DETAILS
from tests.echo_service import SAY, add_EchoServicer_to_server
from tests.rpc import status_code, unary_unary
from tests.timing import REACHES_SERVER

AioFactory = Callable[..., Awaitable[AioGrpcTestServer]]
#: How long a test waits for something that happens in milliseconds. # margin: a loaded machine
WAIT = 10.0


class Checking:
    """Checks ``context.is_active()`` while it works, and stops when the client is gone."""

    def __init__(self) -> None:
        self.entered = threading.Event()
        self._tick = threading.Event()

    def Say(self, request: bytes, context: grpc.ServicerContext) -> bytes:
        self.entered.set()
        while context.is_active():
            self._tick.wait(0.005)  # margin: the poll of a handler that checks cancellation
        return b"stopped"

    def Chorus(self, request: bytes, context: grpc.ServicerContext) -> Any:
        yield b""


class Stubborn:
    """Waits until the client is gone (a termination callback), then finishes the work."""

    def __init__(self) -> None:
        self.entered = threading.Event()
        self.gone = threading.Event()

    def Say(self, request: bytes, context: grpc.ServicerContext) -> bytes:
        context.add_callback(self.gone.set)
        self.entered.set()
        assert self.gone.wait(WAIT)
        return b"done anyway"

    def Chorus(self, request: bytes, context: grpc.ServicerContext) -> Any:
        yield b""


class SelfCancelling:
    def Say(self, request: bytes, context: grpc.ServicerContext) -> bytes:
        context.cancel()
        return b"never sent"

    def Chorus(self, request: bytes, context: grpc.ServicerContext) -> Any:
        yield b""


def _say(server: GrpcTestServer, timeout: float | None) -> grpc.Future[bytes]:
    return unary_unary(server.channel(), "/" + SAY).future(b"hi", timeout=timeout)


def test_a_handler_that_checks_and_stops_is_an_agreed_failure(
    grpc_test_server_factory: ServerFactory, grpc_calls: CallLog
) -> None:
    servicer = Checking()
    server = grpc_test_server_factory((add_EchoServicer_to_server, servicer))
    future = _say(server, REACHES_SERVER)
    assert status_code(future.result) is grpc.StatusCode.DEADLINE_EXCEEDED
    [call] = server.calls
    assert call.wait(WAIT)
    assert (call.outcome, call.cancelled, call.cancelled_by) == ("abandoned", True, "deadline")
    assert None not in (call.cancelled_at, call.noticed_at, call.ended)
    assert call.cancelled_at <= call.noticed_at <= call.ended  # type: ignore[operator]
    assert call.time_to_notice is not None
    assert call.time_to_stop is not None
    assert 0 <= call.time_to_notice <= call.time_to_stop < WAIT
    [pair] = grpc_calls.pairs(timeout=WAIT)
    assert (pair.verdict, pair.server) == ("agreed-failure", call)


def test_a_client_that_cancels_is_told_from_a_deadline(
    grpc_test_server_factory: ServerFactory, grpc_calls: CallLog
) -> None:
    servicer = Checking()
    server = grpc_test_server_factory((add_EchoServicer_to_server, servicer))
    future = _say(server, 60)
    assert servicer.entered.wait(WAIT)
    future.cancel()
    [call] = server.calls
    assert call.wait(WAIT)
    assert (call.outcome, call.cancelled_by) == ("abandoned", "client")
    [pair] = grpc_calls.pairs(timeout=WAIT)
    assert pair.client.code is grpc.StatusCode.CANCELLED
    assert pair.verdict == "agreed-failure"


def test_a_handler_that_finishes_anyway_is_a_disagreement(
    grpc_test_server_factory: ServerFactory, grpc_calls: CallLog
) -> None:
    servicer = Stubborn()
    server = grpc_test_server_factory((add_EchoServicer_to_server, servicer))
    future = _say(server, REACHES_SERVER)
    assert status_code(future.result) is grpc.StatusCode.DEADLINE_EXCEEDED
    [call] = server.calls
    assert call.wait(WAIT)
    assert (call.outcome, call.cancelled_by, call.noticed_at) == ("ok", "deadline", None)
    assert call.time_to_stop is not None
    assert call.time_to_notice is None
    [pair] = grpc_calls.pairs(timeout=WAIT)
    assert pair.verdict == "disagreement"


def test_a_handler_that_cancels_the_call_itself_is_server_cancelled(
    grpc_test_server_factory: ServerFactory, grpc_calls: CallLog
) -> None:
    server = grpc_test_server_factory((add_EchoServicer_to_server, SelfCancelling()))
    future = _say(server, 60)
    assert status_code(future.result) is grpc.StatusCode.CANCELLED
    [call] = server.calls
    assert call.wait(WAIT)
    assert (call.outcome, call.code, call.details) == (
        "aborted",
        grpc.StatusCode.CANCELLED,
        SERVER_CANCELLED_DETAILS,
    )
    assert call.cancelled_by == "server"
    [pair] = grpc_calls.pairs(timeout=WAIT)
    assert pair.verdict == "server-cancelled"


def test_a_stop_under_a_running_handler_is_the_servers_doing(
    grpc_test_server_factory: ServerFactory,
) -> None:
    servicer = Stubborn()
    server = grpc_test_server_factory((add_EchoServicer_to_server, servicer))
    future = _say(server, 60)
    assert servicer.entered.wait(WAIT)
    server.stop(None)
    assert status_code(future.result) is not grpc.StatusCode.OK
    [call] = server.calls
    assert call.wait(WAIT)
    assert (call.cancelled, call.cancelled_by) == (True, "server")


class AioChecking:
    """An asyncio servicer that catches the cancellation grpc.aio delivers and returns."""

    def __init__(self) -> None:
        self.entered = asyncio.Event()

    async def Say(self, request: bytes, context: grpc.aio.ServicerContext[Any, Any]) -> bytes:
        self.entered.set()
        try:
            await asyncio.Event().wait()  # until grpc cancels the handler
        except asyncio.CancelledError:
            return b"stopped"
        return b"unreachable"

    async def Chorus(self, request: bytes, context: Any) -> Any:
        yield b""


class AioStubborn:
    """An asyncio servicer that catches the cancellation and goes on with the work."""

    def __init__(self) -> None:
        self.entered = asyncio.Event()
        self.release = asyncio.Event()

    async def Say(self, request: bytes, context: grpc.aio.ServicerContext[Any, Any]) -> bytes:
        self.entered.set()
        try:
            await self.release.wait()
        except asyncio.CancelledError:
            await self.release.wait()  # the work goes on
        return b"done anyway"

    async def Chorus(self, request: bytes, context: Any) -> Any:
        yield b""


@pytest.mark.asyncio
async def test_aio_a_handler_that_catches_the_cancellation_is_an_agreed_failure(
    grpc_aio_test_server_factory: AioFactory, grpc_calls: CallLog
) -> None:
    servicer = AioChecking()
    server = await grpc_aio_test_server_factory((add_EchoServicer_to_server, servicer))
    say = unary_unary(server.channel(), "/" + SAY)
    with pytest.raises(grpc.RpcError) as info:
        await say(b"hi", timeout=REACHES_SERVER)
    assert info.value.code() is grpc.StatusCode.DEADLINE_EXCEEDED
    [call] = server.calls
    assert await call.wait_async(WAIT)
    assert (call.outcome, call.cancelled_by) == ("abandoned", "deadline")
    assert call.time_to_notice is not None
    [pair] = grpc_calls.pairs(timeout=0)
    assert pair.verdict == "agreed-failure"


@pytest.mark.asyncio
async def test_aio_a_handler_that_finishes_anyway_is_a_disagreement(
    grpc_aio_test_server_factory: AioFactory, grpc_calls: CallLog
) -> None:
    servicer = AioStubborn()
    server = await grpc_aio_test_server_factory((add_EchoServicer_to_server, servicer))
    say = unary_unary(server.channel(), "/" + SAY)
    call_task = asyncio.ensure_future(say(b"hi", timeout=REACHES_SERVER))
    assert await asyncio.wait_for(servicer.entered.wait(), WAIT)
    with pytest.raises(grpc.RpcError) as info:
        await call_task
    assert info.value.code() is grpc.StatusCode.DEADLINE_EXCEEDED
    [call] = server.calls
    await asyncio.wait_for(_until(lambda: call.cancelled), WAIT)
    servicer.release.set()
    assert await call.wait_async(WAIT)
    assert (call.outcome, call.cancelled_by, call.noticed_at) == ("ok", "deadline", None)
    [pair] = grpc_calls.pairs(timeout=0)
    assert pair.verdict == "disagreement"


async def _until(condition: Callable[[], bool]) -> None:
    while not condition():
        await asyncio.sleep(0.005)  # margin: a poll, bounded by the caller's wait_for
