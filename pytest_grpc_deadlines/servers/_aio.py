"""The test server over ``grpc.aio``, running on the caller's event loop.

Same behaviour API as :class:`~pytest_grpc_deadlines.server.GrpcTestServer`; the lifecycle and
the gate waits are awaitable. Run it on the test's own loop: grpc.aio on a second loop in a
thread makes grpcio < 1.80 log BlockingIOError storms, so sync tests use the sync server.
"""

from __future__ import annotations

import asyncio
import inspect
import time
import warnings
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Generator, Iterable
from contextlib import aclosing
from types import TracebackType
from typing import TYPE_CHECKING, Any, TypeVar, cast

import grpc
import grpc.aio

from .._errors import ServerStateError
from ..cascade._cascade import DAGSTER, Cascade
from ._core import (
    DEFAULT_GRACE,
    DEFAULT_MAX_HOLD,
    END,
    NEXT,
    RESET_DETAILS,
    RUN,
    Abort,
    Behaviour,
    CallState,
    Emit,
    Flow,
    GateBase,
    Grace,
    ServerBase,
    Start,
    Wait,
    Wake,
    settle,
)
from ._observers import serve_in_task
from ._options import OptionsArg, ServicerPair, Transport
from ._records import ServerCall

_Req = TypeVar("_Req")
_Resp = TypeVar("_Resp")
if TYPE_CHECKING:
    from ..probe import ProbeAioStub  # loaded (with protobuf) when a test first asks for it

    # generic in grpc's stubs only
    _Context = grpc.aio.ServicerContext[Any, Any]

__all__ = ["AioGate", "AioGrpcTestServer"]


class AioGate(GateBase):
    """Holds a method's calls until :meth:`release`; the waits are awaitable."""

    _entered: asyncio.Event
    _cancelled: asyncio.Event

    def __init__(self, server: AioGrpcTestServer, method: str, honor_cancellation: bool) -> None:
        super().__init__(server, method, honor_cancellation)
        self._entered = asyncio.Event()
        self._cancelled = asyncio.Event()

    async def wait_entered(self, timeout: float | None = None) -> bool:
        """Wait until a call reaches the gate; False on timeout."""
        return await _wait_event(self._entered, timeout)

    async def wait_cancelled(self, timeout: float | None = None) -> bool:
        """Wait until the server sees a held call's client cancel or its deadline pass."""
        return await _wait_event(self._cancelled, timeout)


async def _wait_event(event: asyncio.Event, timeout: float | None) -> bool:
    try:
        await asyncio.wait_for(event.wait(), timeout)
    except asyncio.TimeoutError:
        return False
    return True


def _rpc_done(context: object) -> bool:
    """Whether grpc already ended the RPC (its cancellation can precede the handler)."""
    done = getattr(context, "done", None)
    return bool(done()) if callable(done) else False


#: A held or sleeping handler also checks the RPC this often, in case grpc ended it without
#: cancelling the handler's task (grpcio 1.44 does that for a call that expired before the
#: handler started).
_POLL_SECONDS = 0.05
#: How long close() waits for the handler tasks it cancelled: they end at their next await,
#: unless a servicer swallows the cancellation and goes on.
_HANDLER_EXIT_SECONDS = 5.0


class _Interceptor(grpc.aio.ServerInterceptor):
    def __init__(self, server: AioGrpcTestServer) -> None:
        self._server = server

    async def intercept_service(
        self,
        continuation: Callable[
            [grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler[_Req, _Resp] | None]
        ],
        details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler[_Req, _Resp] | None:
        handler = await continuation(details)
        if handler is None:
            return None
        return self._server._wrap(details.method, handler)


class AioGrpcTestServer(ServerBase):
    """A ``grpc.aio`` server for asyncio tests: TCP loopback on port 0, or a unix socket."""

    def __init__(
        self,
        *servicers: ServicerPair,
        transport: Transport = "tcp",
        host: str = "127.0.0.1",
        options: OptionsArg = None,
        cascade: Cascade = DAGSTER,
    ) -> None:
        super().__init__(*servicers, transport=transport, host=host, options=options, cascade=cascade)
        self._server: grpc.aio.Server | None = None
        self._channels: list[grpc.aio.Channel] = []
        self._changed = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._handlers: set[asyncio.Task[Any]] = set()

    # lifecycle -----------------------------------------------------------------------------
    async def start(self) -> AioGrpcTestServer:
        if self._server is not None:
            return self
        self._closing = False
        self._loop = asyncio.get_running_loop()
        server = grpc.aio.server(interceptors=(_Interceptor(self),), options=self._start_options())
        self._register(server)
        try:
            self._bound(server.add_insecure_port(self._bind_address()))
        except BaseException:
            await server.stop(None)
            raise
        await server.start()
        self._server = server
        return self

    @property
    def is_running(self) -> bool:
        return self._server is not None

    async def stop(self, grace: Grace = DEFAULT_GRACE) -> None:
        """Stop serving: in-flight calls get ``grace`` seconds (the cascade's grace by default;
        None or 0 stop at once), then are cancelled."""
        grace = self._stop_grace(grace)
        server, self._server = self._server, None
        if server is not None:
            await server.stop(grace)

    async def restart(self) -> AioGrpcTestServer:
        """Stop at once and serve again on the same address."""
        await self.stop(None)
        return await self.start()

    async def close(self) -> None:
        """Stop at once, release every held or sleeping handler, close channels, remove files."""
        self._closing = True
        self._release_all()
        await self.close_channels()
        await self.stop(None)
        try:
            stuck = await self._end_handlers()
        finally:
            self._remove_tmpdir()
        if stuck:  # after the cleanup: under filterwarnings = error the warning raises
            warnings.warn(stuck, ResourceWarning, stacklevel=2)

    async def _end_handlers(self) -> str:
        """End the handler tasks the stop left running, and wait for them; what to say of those
        that did not end ("" when all did).

        Some grpcio releases (1.44 among them) leave the task of a handler that was in flight at
        ``stop()`` pending, and pytest-asyncio 0.24 to 1.0 close the test's loop without
        cancelling pending tasks: the handler, its server and its channel would then outlive the
        test, and "Task was destroyed but it is pending!" land in another test's output.
        """
        current = asyncio.current_task()
        tasks = [task for task in self._handlers if not task.done() and task is not current]
        self._handlers.clear()
        if not tasks:
            return ""
        for task in tasks:
            task.cancel()
        _, pending = await asyncio.wait(tasks, timeout=_HANDLER_EXIT_SECONDS)
        if not pending:
            return ""
        return (
            f"{len(pending)} handler task(s) of the closed AioGrpcTestServer on {self.target} "
            f"did not end within {_HANDLER_EXIT_SECONDS:g} s of being cancelled (a servicer "
            "that catches asyncio.CancelledError and goes on?)"
        )

    async def __aenter__(self) -> AioGrpcTestServer:
        return await self.start()

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    # clients --------------------------------------------------------------------------------
    def channel(self, **options: object) -> grpc.aio.Channel:
        """A ``grpc.aio`` channel to this server, closed at teardown (see the sync server)."""
        self._check_loop("channel()")
        channel = grpc.aio.insecure_channel(self.target, options=self._channel_options(options))
        self._channels.append(channel)
        return channel

    def _check_loop(self, what: str) -> None:
        """A server serves only while its loop runs: code on another loop would wait for ever."""
        try:
            running: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if self._loop is not None and running is not self._loop:
            where = "outside any event loop" if running is None else "on another event loop"
            raise ServerStateError(
                f"AioGrpcTestServer.{what} is called {where}, not on the one the server runs on, "
                "whose calls would then wait for ever: start the server on the loop the test runs "
                "on (a function-scoped fixture, or the same loop_scope for the fixture and the test)"
            )

    def probe(self, **options: object) -> ProbeAioStub:
        from ..probe import ProbeAioStub

        return ProbeAioStub(self.channel(**options))

    async def close_channels(self) -> None:
        channels, self._channels = self._channels, []
        for channel in channels:
            await channel.close()

    # behaviour ------------------------------------------------------------------------------
    def hold(
        self,
        method: str,
        *,
        honor_cancellation: bool = False,
        max_hold: float | None = DEFAULT_MAX_HOLD,
        times: int | None = None,
        skip: int = 0,
    ) -> AioGate:
        """Hold ``method``'s calls until the gate is released (see the sync server)."""
        return cast(AioGate, self._hold(method, honor_cancellation, max_hold, times, skip))

    def _new_gate(self, method: str, honor_cancellation: bool) -> AioGate:
        return AioGate(self, method, honor_cancellation)

    def _notify(self) -> None:
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()

    # handling: the core's flows, run with an awaitable wait on the server's loop -------------
    async def _wait(self, call: ServerCall, state: CallState, wait: Wait) -> Wake:
        end = self._end(wait)
        while True:
            if not state.terminated and _rpc_done(state.context):
                self._terminated(call, state)
            woken = self._woken(state, wait, end)
            if woken is not None:
                return woken
            remaining = None if end is None else end - time.monotonic()
            poll = _POLL_SECONDS if remaining is None else min(remaining, _POLL_SECONDS)
            try:
                await asyncio.wait_for(self._changed.wait(), poll)
            except asyncio.TimeoutError:
                pass
            except asyncio.CancelledError:
                self._terminated(call, state)
                if wait.honor:
                    raise
                task = asyncio.current_task()
                uncancel = getattr(task, "uncancel", None)
                if uncancel is not None:
                    uncancel()

    def _start(self, full: str, argument: object, context: _Context) -> tuple[ServerCall, CallState, object]:
        call, state = self._begin(full, context, context.invocation_metadata())
        call._loop = asyncio.get_running_loop()
        task = asyncio.current_task()
        if task is not None:
            self._handlers.add(task)
            task.add_done_callback(self._handlers.discard)
        add_done_callback = getattr(context, "add_done_callback", None)
        if add_done_callback is not None:
            add_done_callback(lambda _: self._terminated(call, state))
        return call, state, _record_first(argument, call)

    @staticmethod
    def _settle(call: ServerCall, context: _Context, exc: BaseException | None) -> None:
        settle(
            call,
            context,
            exc,
            cancelled=isinstance(exc, asyncio.CancelledError),
            aborted=isinstance(exc, grpc.aio.AbortError),
        )

    async def _run(
        self, flow: Flow, call: ServerCall, state: CallState, context: _Context, start: Start, stream: bool
    ) -> AsyncGenerator[object, None]:
        """Carry out ``flow``'s effects; yields the messages it sends."""
        responses: AsyncIterator[object] = _no_messages()
        sent: object = None
        while True:
            try:
                effect = flow.send(sent)
            except StopIteration:
                return
            sent = None
            if effect is RUN:
                # A sync servicer's method returns its response or an iterator, as grpc.aio
                # serves it; an async one returns an awaitable or an async iterator.
                result = start()
                if not stream:
                    sent = await _Watched(result, self, call) if inspect.isawaitable(result) else result
                elif hasattr(result, "__aiter__"):
                    responses = result
                elif inspect.isawaitable(result):  # a servicer that writes with context.write()
                    await _Watched(result, self, call)
                elif result is not None:
                    responses = _from_iterable(result)
            elif effect is NEXT:
                sent = await _Watched(anext(responses, END), self, call)
            elif isinstance(effect, Emit):
                yield effect.message
            elif isinstance(effect, Abort):
                await context.abort(effect.code, effect.details)
            elif isinstance(effect, Wait):
                try:
                    sent = await self._wait(call, state, effect)
                except asyncio.CancelledError as exc:
                    flow.throw(exc)  # the flow records what it must, then re-raises
                    raise

    def _unary_response(self, full: str, behaviour: Behaviour, arrived: int) -> Behaviour:
        async def handle(argument: object, context: _Context) -> object:
            if self._stale(arrived):
                await context.abort(grpc.StatusCode.CANCELLED, RESET_DETAILS)
            call, state, argument = self._start(full, argument, context)
            serve_in_task(call)
            try:
                if self._plain(full):  # the servicer alone: no flow to run around it
                    result = behaviour(argument, context)
                    response = await _Watched(result, self, call) if inspect.isawaitable(result) else result
                    self._check_sendable(full, call, response)
                else:
                    flow = self._unary_flow(full, call, state)
                    start = lambda: behaviour(argument, context)  # noqa: E731
                    async with aclosing(self._run(flow, call, state, context, start, False)) as messages:
                        [response] = [message async for message in messages]
            except BaseException as exc:
                self._settle(call, context, exc)
                raise
            self._settle(call, context, None)
            return response

        return handle

    def _stream_response(self, full: str, behaviour: Behaviour, arrived: int) -> Behaviour:
        async def handle(argument: object, context: _Context) -> AsyncIterator[object]:
            if self._stale(arrived):
                await context.abort(grpc.StatusCode.CANCELLED, RESET_DETAILS)
            call, state, argument = self._start(full, argument, context)
            serve_in_task(call)
            flow = self._stream_flow(full, call, state)
            try:
                start = lambda: behaviour(argument, context)  # noqa: E731
                async with aclosing(self._run(flow, call, state, context, start, True)) as messages:
                    async for message in messages:
                        yield message
            except BaseException as exc:
                self._settle(call, context, exc)
                raise
            self._settle(call, context, None)

        return handle


class _Watched(Awaitable[Any]):
    """Awaits the servicer's ``awaitable``, noting when the cancellation grpc delivers to the
    handler's task (the RPC ended) ends it: a servicer that catches it and returns has seen it;
    one that goes on awaiting more work finishes that work anyway."""

    def __init__(self, awaitable: Awaitable[Any], server: ServerBase, call: ServerCall) -> None:
        self._awaitable = awaitable
        self._server = server
        self._call = call

    def __await__(self) -> Generator[Any, Any, Any]:
        inner = self._awaitable.__await__()
        value: Any = None
        error: BaseException | None = None
        while True:
            cancelled = isinstance(error, asyncio.CancelledError)
            try:
                step = inner.send(value) if error is None else inner.throw(error)
            except StopIteration as stop:
                if cancelled:
                    self._server._seen(self._call)
                return stop.value
            except BaseException:
                if cancelled:
                    self._server._seen(self._call)
                raise
            value, error = None, None
            try:
                value = yield step
            except GeneratorExit:
                close = getattr(inner, "close", None)
                if close is not None:
                    close()
                raise
            except BaseException as exc:
                if isinstance(exc, asyncio.CancelledError):  # grpc cancelled the handler's task
                    self._call.mark_cancelled(self._server._cancelled_by())
                error = exc


async def _from_iterable(messages: Iterable[object]) -> AsyncIterator[object]:
    for message in messages:
        yield message


async def _no_messages() -> AsyncIterator[object]:
    return
    yield


def _record_first(argument: object, call: ServerCall) -> object:
    if not hasattr(argument, "__aiter__"):
        call.request = argument
        return argument

    async def recorded() -> AsyncIterator[object]:
        async for message in argument:
            if call.request is None:
                call.request = message
            yield message

    return recorded()
