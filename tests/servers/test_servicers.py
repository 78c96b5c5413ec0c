"""User servicers beside the probe, of every shape: streams the client cancels, lists, statuses set
on the context, exceptions, generic and registered handlers, and asyncio servicers that write
with ``context.write()``."""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any

import grpc
import grpc.aio
import pytest

from pytest_grpc_deadlines import AioGrpcTestServer, GrpcTestServer, MethodError
from pytest_grpc_deadlines.probe import PROBE_SERVICE_NAME, ProbeRequest
from pytest_grpc_deadlines.servers._pool import ServerFactory
from tests.echo_service import CHORUS, SAY, EchoServicer, add_EchoServicer_to_server, say
from tests.rpc import rpc_error as _error
from tests.rpc import stream_stream, unary_stream, unary_unary
from tests.timing import REACHES_SERVER

UNARY = f"{PROBE_SERVICE_NAME}/Unary"
GRPC_VERSION = tuple(int(part) for part in grpc.__version__.split(".")[:2])
AioFactory = Callable[..., Awaitable[AioGrpcTestServer]]


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
    handlers: dict[str, grpc.RpcMethodHandler[Any, Any]] = {
        "Chorus": grpc.unary_stream_rpc_method_handler(servicer.Chorus),
        "Answer": grpc.stream_stream_rpc_method_handler(servicer.Answer),
        "Broken": grpc.unary_unary_rpc_method_handler(servicer.Broken),
    }
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler("tests.Writer", handlers),))


# --- hosting --------------------------------------------------------------------------------------


def test_user_servicers_are_hosted_beside_each_other(grpc_test_server_factory: ServerFactory) -> None:
    from pytest_grpc_deadlines.probe import ProbeServicer, add_ProbeServicer_to_server

    server = grpc_test_server_factory(
        (add_EchoServicer_to_server, EchoServicer()), (add_ProbeServicer_to_server, ProbeServicer())
    )
    assert say(server.channel(), b"a") == b"echo:a"
    assert server.probe().Unary(ProbeRequest(), timeout=5).index == 0
    assert list(unary_stream(server.channel(), f"/{CHORUS}")(b"c", timeout=5)) == [b"c0", b"c1", b"c2"]
    assert set(server.methods) >= {SAY, CHORUS, UNARY}


def test_bad_servicer_pair_is_refused() -> None:
    with pytest.raises(ValueError, match=r"pass \(add_FooServicer_to_server, FooServicer\(\)\) pairs"):
        GrpcTestServer(EchoServicer())  # type: ignore[arg-type]


# --- servicers of every shape ---------------------------------------------------------------------


class _Flood:
    """Streams megabyte messages without checking the client; notes when its generator closes."""

    def __init__(self) -> None:
        self.closed = threading.Event()

    def Flood(self, request: bytes, context: Any) -> Iterator[bytes]:
        try:
            for _ in range(1000):
                yield b"x" * 1_000_000
        finally:
            self.closed.set()

    def Listed(self, request: bytes, context: Any) -> list[bytes]:
        return [b"a", b"b", b"c"]

    def Quiet(self, request: bytes, context: Any) -> bytes:
        context.set_code(grpc.StatusCode.NOT_FOUND)
        context.set_details("no such thing")
        return b""

    def Broken(self, request: bytes, context: Any) -> bytes:
        raise ValueError("boom")


def _add_flood(servicer: _Flood, server: Any) -> None:
    handlers: dict[str, grpc.RpcMethodHandler[Any, Any]] = {
        "Flood": grpc.unary_stream_rpc_method_handler(servicer.Flood),
        "Listed": grpc.unary_stream_rpc_method_handler(servicer.Listed),
        "Quiet": grpc.unary_unary_rpc_method_handler(servicer.Quiet),
        "Broken": grpc.unary_unary_rpc_method_handler(servicer.Broken),
    }
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler("tests.Flood", handlers),))


def test_a_stream_the_client_cancels_is_abandoned_and_its_generator_closed(
    grpc_test_server_factory: ServerFactory,
) -> None:
    """The client reads one message and cancels; flow control keeps the server's next send from
    completing, so the handler can only end by grpc dropping the stream."""
    servicer = _Flood()
    server = grpc_test_server_factory((_add_flood, servicer))
    stream = unary_stream(server.channel(), "/tests.Flood/Flood")(b"", timeout=30)
    assert len(next(stream)) == 1_000_000
    stream.cancel()
    [call] = server.calls
    assert call.wait(10)
    assert (call.outcome, call.cancelled) == ("abandoned", True)
    assert servicer.closed.wait(10), "the servicer's generator was left open"


def test_a_servicer_may_return_a_list_for_a_response_stream(grpc_test_server_factory: ServerFactory) -> None:
    server = grpc_test_server_factory((_add_flood, _Flood()))
    assert list(unary_stream(server.channel(), "/tests.Flood/Listed")(b"", timeout=5)) == [b"a", b"b", b"c"]
    [call] = server.calls
    assert (call.outcome, call.code) == ("ok", grpc.StatusCode.OK)


def test_a_status_set_on_the_context_is_recorded_as_aborted(grpc_test_server_factory: ServerFactory) -> None:
    server = grpc_test_server_factory((_add_flood, _Flood()))
    error = _error(lambda: unary_unary(server.channel(), "/tests.Flood/Quiet")(b"", timeout=5))
    assert (error.code(), error.details()) == (grpc.StatusCode.NOT_FOUND, "no such thing")
    [call] = server.calls
    assert (call.outcome, call.code, call.details) == ("aborted", grpc.StatusCode.NOT_FOUND, "no such thing")


def test_an_exception_is_recorded_as_raised_with_its_text(grpc_test_server_factory: ServerFactory) -> None:
    server = grpc_test_server_factory((_add_flood, _Flood()))
    error = _error(lambda: unary_unary(server.channel(), "/tests.Flood/Broken")(b"", timeout=5))
    assert error.code() is grpc.StatusCode.UNKNOWN
    [call] = server.calls
    assert call.wait(5)
    assert (call.outcome, call.code, call.details) == ("raised", grpc.StatusCode.UNKNOWN, "ValueError: boom")
    assert isinstance(call.exception, ValueError)


@pytest.mark.asyncio
async def test_aio_an_exception_is_recorded_as_raised_with_its_text(
    grpc_aio_test_server_factory: AioFactory,
) -> None:
    server = await grpc_aio_test_server_factory((_add_writer, _Writer()))
    call = unary_unary(server.channel(), "/tests.Writer/Broken")(b"", timeout=5)
    assert (await _error(call)).code() is grpc.StatusCode.UNKNOWN
    [record] = server.calls
    assert await record.wait_async(5)
    assert (record.outcome, record.code, record.details) == (
        "raised",
        grpc.StatusCode.UNKNOWN,
        "ValueError: boom",
    )
    assert isinstance(record.exception, ValueError)


# --- generic and registered handlers --------------------------------------------------------------


class _AnyMethod(grpc.GenericRpcHandler):
    """A hand-written generic handler: serves every method of ``tests.Any``, lists none."""

    def service(self, handler_call_details: Any) -> Any:
        if handler_call_details.method.startswith("/tests.Any/"):
            return grpc.unary_unary_rpc_method_handler(lambda request, context: b"any:" + request)
        return None


def _add_any(servicer: _AnyMethod, server: Any) -> None:
    server.add_generic_rpc_handlers((servicer,))


def test_an_opaque_generic_handler_accepts_any_service_method_name(
    grpc_test_server_factory: ServerFactory,
) -> None:
    server = grpc_test_server_factory((_add_any, _AnyMethod()))
    assert server.methods == ()
    server.fail("tests.Any/Refused", grpc.StatusCode.PERMISSION_DENIED)
    server.delay("/tests.Any/Slow", 0)
    channel = server.channel()
    assert unary_unary(channel, "/tests.Any/Slow")(b"x", timeout=5) == b"any:x"
    error = _error(lambda: unary_unary(channel, "/tests.Any/Refused")(b"x", timeout=5))
    assert error.code() is grpc.StatusCode.PERMISSION_DENIED
    assert [(c.method, c.outcome) for c in server.calls] == [
        ("tests.Any/Slow", "ok"),
        ("tests.Any/Refused", "aborted"),
    ]
    with pytest.raises(MethodError, match="unknown method 'Refused'"):
        server.fail("Refused", grpc.StatusCode.PERMISSION_DENIED)


def _add_registered(servicer: EchoServicer, server: Any) -> None:
    """What grpcio-tools >= 1.63 generates: generic handlers plus registered method handlers."""
    handlers: dict[str, grpc.RpcMethodHandler[Any, Any]] = {
        "Say": grpc.unary_unary_rpc_method_handler(servicer.Say)
    }
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler("tests.Echo", handlers),))
    server.add_registered_method_handlers("tests.Echo", handlers)


def test_registered_method_handlers_are_hosted_and_controllable(
    grpc_test_server_factory: ServerFactory,
) -> None:
    if GRPC_VERSION < (1, 63):
        pytest.skip(f"grpcio {grpc.__version__} has no registered method handlers (added in 1.63)")
    servicer = EchoServicer()
    server = grpc_test_server_factory((_add_registered, servicer))
    assert server.methods == (SAY,)
    server.fail(SAY, grpc.StatusCode.UNAVAILABLE, times=1)
    assert _error(lambda: say(server.channel(), b"a")).code() is grpc.StatusCode.UNAVAILABLE
    assert say(server.channel(), b"b") == b"echo:b"
    assert servicer.said == [b"b"]


# --- asyncio servicers that write -----------------------------------------------------------------


async def _messages(stream: Any) -> list[Any]:
    return [message async for message in stream]


async def _requests(*messages: bytes) -> AsyncIterator[bytes]:
    for message in messages:
        yield message


@pytest.mark.asyncio
async def test_a_servicer_that_writes_with_context_write_streams_its_messages(
    grpc_aio_test_server_factory: AioFactory,
) -> None:
    server = await grpc_aio_test_server_factory((_add_writer, _Writer()))
    channel = server.channel()
    chorus = unary_stream(channel, "/tests.Writer/Chorus")(b"la", timeout=5)
    assert await _messages(chorus) == [b"la0", b"la1", b"la2"]
    answer = stream_stream(channel, "/tests.Writer/Answer")(_requests(b"a", b"b"), timeout=5)
    assert await _messages(answer) == [b"re:a", b"re:b"]
    assert [(c.method, c.outcome, c.request) for c in server.calls] == [
        ("tests.Writer/Chorus", "ok", b"la"),
        ("tests.Writer/Answer", "ok", b"a"),
    ]


@pytest.mark.asyncio
async def test_a_writing_servicer_still_gets_delays_and_faults(
    grpc_aio_test_server_factory: AioFactory,
) -> None:
    server = await grpc_aio_test_server_factory((_add_writer, _Writer()))
    server.delay("tests.Writer/Chorus", 30)
    chorus = unary_stream(server.channel(), "/tests.Writer/Chorus")(b"la", timeout=REACHES_SERVER)
    assert (await _error(_messages(chorus))).code() is grpc.StatusCode.DEADLINE_EXCEEDED
    server.fail("tests.Writer/Answer", grpc.StatusCode.UNAVAILABLE)
    # No request message: a grpc.aio client still writing one when the server has already ended
    # the call reports INTERNAL "Failed execute_batch" instead of the server's status
    # (grpc/grpc#36066), a race the fault at handler start would otherwise run.
    answer = stream_stream(server.channel(), "/tests.Writer/Answer")(_requests(), timeout=5)
    assert (await _error(_messages(answer))).code() is grpc.StatusCode.UNAVAILABLE
    delayed, failed = server.calls
    assert await delayed.wait_async(10)
    assert (delayed.outcome, failed.outcome) == ("abandoned", "aborted")


# --- an asyncio server serves sync servicers, as grpc.aio does ---------------------------------------


@pytest.mark.asyncio
async def test_aio_server_serves_a_sync_servicer(grpc_aio_test_server_factory: Any) -> None:
    server = await grpc_aio_test_server_factory((add_EchoServicer_to_server, EchoServicer()))
    channel = server.channel()
    assert await unary_unary(channel, f"/{SAY}")(b"hi", timeout=5) == b"echo:hi"
    chorus = [m async for m in unary_stream(channel, f"/{CHORUS}")(b"c", timeout=5)]
    assert chorus == [b"c0", b"c1", b"c2"]
    assert [(c.method, c.outcome) for c in server.calls] == [(SAY, "ok"), (CHORUS, "ok")]
