"""The test server over ``grpc.aio``, running on the caller's event loop.

Same behaviour API as :class:`~pytest_grpc_deadlines.server.GrpcTestServer`; the lifecycle and
the gate waits are awaitable. Run it on the test's own loop: grpc.aio on a second loop in a
thread makes grpcio < 1.80 log BlockingIOError storms, so sync tests use the sync server.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from types import TracebackType
from typing import Any

import grpc
import grpc.aio

from .cascade import DAGSTER, Cascade
from .probe import ProbeAioStub, deadline_seconds
from .records import ServerCall
from .server import _context_code, _context_details
from .server_base import (
    DEFAULT_GRACE,
    RESET_DETAILS,
    OptionsArg,
    ServerBase,
    ServicerPair,
    Transport,
    _pair,
    note_probe_delay,
)

__all__ = ["AioGate", "AioGrpcTestServer"]


class AioGate:
    """Holds a method's calls until :meth:`release`; the waits are awaitable."""

    def __init__(self, server: AioGrpcTestServer, method: str, honor_cancellation: bool) -> None:
        self._server = server
        self.method = method.lstrip("/")
        self.honor_cancellation = honor_cancellation
        self._entered = asyncio.Event()
        self._cancelled = asyncio.Event()
        self.released = False
        self.entered = 0

    async def wait_entered(self, timeout: float | None = None) -> bool:
        """Wait until a call reaches the gate; False on timeout."""
        return await _wait_event(self._entered, timeout)

    async def wait_cancelled(self, timeout: float | None = None) -> bool:
        """Wait until the server sees a held call's client cancel or its deadline pass."""
        return await _wait_event(self._cancelled, timeout)

    def release(self) -> None:
        """Let held and future calls through."""
        self.released = True
        self._server._notify()

    def __repr__(self) -> str:
        return f"AioGate({self.method}, entered={self.entered}, released={self.released})"


async def _wait_event(event: asyncio.Event, timeout: float | None) -> bool:
    try:
        await asyncio.wait_for(event.wait(), timeout)
    except asyncio.TimeoutError:
        return False
    return True


@dataclass
class _CallState:
    generation: int
    context: Any
    terminated: bool = False
    gate: AioGate | None = None

    def rpc_done(self) -> bool:
        """Whether grpc already ended the RPC (its cancellation can precede the handler)."""
        done = getattr(self.context, "done", None)
        return bool(done()) if callable(done) else False


#: A held or sleeping handler also checks the RPC this often, in case grpc ended it without
#: cancelling the handler's task (grpcio 1.44 does that for a call that expired before the
#: handler started).
_POLL_SECONDS = 0.05


class _Interceptor(grpc.aio.ServerInterceptor):  # type: ignore[misc]
    def __init__(self, server: AioGrpcTestServer) -> None:
        self._server = server

    async def intercept_service(self, continuation: Callable[[Any], Any], details: Any) -> Any:
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
        self._server: Any = None
        self._channels: list[grpc.aio.Channel] = []
        self._changed = asyncio.Event()
        self._closing = False

    # lifecycle -----------------------------------------------------------------------------
    async def start(self) -> AioGrpcTestServer:
        if self._server is not None:
            return self
        self._closing = False
        server = grpc.aio.server(interceptors=(_Interceptor(self),), options=self._server_options())
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

    async def stop(self, grace: float | None = DEFAULT_GRACE) -> None:
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
        self._remove_tmpdir()

    async def __aenter__(self) -> AioGrpcTestServer:
        return await self.start()

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    # clients --------------------------------------------------------------------------------
    def channel(self, **options: Any) -> grpc.aio.Channel:
        """A ``grpc.aio`` channel to this server, closed at teardown (see the sync server)."""
        channel = grpc.aio.insecure_channel(self.target, options=self._channel_options(options))
        self._channels.append(channel)
        return channel

    def probe(self, **options: Any) -> ProbeAioStub:
        return ProbeAioStub(self.channel(**options))

    async def close_channels(self) -> None:
        channels, self._channels = self._channels, []
        for channel in channels:
            await channel.close()

    # behaviour ------------------------------------------------------------------------------
    def hold(self, method: str, *, honor_cancellation: bool = False) -> AioGate:
        """Hold ``method``'s calls until the gate is released (see the sync server)."""
        full = self._method(method)
        if not isinstance(honor_cancellation, bool):
            raise ValueError(f"honor_cancellation={honor_cancellation!r} must be True or False")
        gate = AioGate(self, full, honor_cancellation)
        old = self._gates.get(full)
        if old is not None:
            old.released = True
        self._gates[full] = gate
        self._notify()
        return gate

    def _notify(self) -> None:
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()

    def _release_all(self) -> None:
        for gate in self._gates.values():
            gate.released = True
        self._notify()

    def reset(self) -> None:
        super().reset()
        self._closing = False
        self._notify()

    # handling -------------------------------------------------------------------------------
    async def _wait(
        self, call: ServerCall, state: _CallState, seconds: float | None, honor: bool, gate: AioGate | None
    ) -> str:
        """ "elapsed", "released", "terminated" (the client went away) or "closing"."""
        end = None if seconds is None else time.monotonic() + seconds
        while True:
            if not state.terminated and state.rpc_done():
                self._terminated(call, state)
            if gate is not None and gate.released:
                return "released"
            if honor and state.terminated:
                return "terminated"
            if self._closing or state.generation != self._generation:
                return "closing"
            remaining = None if end is None else end - time.monotonic()
            if remaining is not None and remaining <= 0:
                return "elapsed"
            poll = _POLL_SECONDS if remaining is None else min(remaining, _POLL_SECONDS)
            try:
                await asyncio.wait_for(self._changed.wait(), poll)
            except asyncio.TimeoutError:
                pass
            except asyncio.CancelledError:
                self._terminated(call, state)
                if honor:
                    raise
                task = asyncio.current_task()
                uncancel = getattr(task, "uncancel", None)
                if uncancel is not None:
                    uncancel()

    def _terminated(self, call: ServerCall, state: _CallState) -> None:
        state.terminated = True
        if call.outcome == "running":
            call.mark_cancelled()
            if state.gate is not None:
                state.gate._cancelled.set()

    def _begin(self, method: str, context: Any) -> tuple[ServerCall, _CallState]:
        call = ServerCall(
            method=method.lstrip("/"),
            metadata=tuple((m.key, m.value) for m in (context.invocation_metadata() or ())),
            deadline=deadline_seconds(context),
        )
        state = _CallState(self._generation, context)
        with self._cond:
            self._calls.append(call)
        _pair(call)
        add_done_callback = getattr(context, "add_done_callback", None)
        if add_done_callback is not None:

            def done(_: Any) -> None:
                self._terminated(call, state)
                self._notify()

            add_done_callback(done)
        return call, state

    async def _before(self, full: str, call: ServerCall, state: _CallState) -> bool:
        gate = self._gates.get(full)
        delay = self._delays.get(full)
        if gate is not None:
            call.provoked = True
            state.gate = gate
            gate.entered += 1
            gate._entered.set()
            if state.terminated:
                gate._cancelled.set()
            result = await self._wait(call, state, None, gate.honor_cancellation, gate)
            state.gate = None
            if result == "terminated":
                call.finish("abandoned")
                return False
        if delay is not None and delay.when == "before":
            call.provoked = call.provoked or not delay.honor_cancellation
            result = await self._wait(call, state, delay.next(), delay.honor_cancellation, None)
            if result in ("terminated", "closing"):
                call.finish("abandoned")
                return False
        return True

    async def _after(self, full: str, call: ServerCall, state: _CallState) -> None:
        delay = self._delays.get(full)
        if delay is not None and delay.when == "after":
            call.provoked = True
            try:
                await self._wait(call, state, delay.next(), delay.honor_cancellation, None)
            except asyncio.CancelledError:
                call.finish("ok", grpc.StatusCode.OK)  # the servicer ran; only its response waited
                raise

    async def _abort(self, call: ServerCall, context: Any, code: grpc.StatusCode, details: str) -> None:
        call.finish("aborted", code, details)
        await context.abort(code, details)

    @staticmethod
    def _ended(call: ServerCall, context: Any, exc: BaseException | None) -> None:
        code = _context_code(context)
        if isinstance(exc, asyncio.CancelledError):
            call.mark_cancelled()
            call.finish("abandoned")
        elif code is not None and code is not grpc.StatusCode.OK:
            call.finish("aborted", code, _context_details(context), exc)
        elif exc is not None and not isinstance(exc, grpc.aio.AbortError):
            call.finish("raised", grpc.StatusCode.UNKNOWN, f"{type(exc).__name__}: {exc}", exc)
        elif exc is not None:
            call.finish("aborted", code, _context_details(context), exc)
        else:
            note_probe_delay(call)
            call.finish("ok", grpc.StatusCode.OK)

    def _unary_response(self, full: str, behaviour: Callable[..., Any]) -> Callable[..., Any]:
        async def handle(argument: Any, context: Any) -> Any:
            call, state = self._begin(full, context)
            argument = _record_first(argument, call)
            try:
                if not await self._before(full, call, state):
                    await context.abort(grpc.StatusCode.CANCELLED, RESET_DETAILS)
                fault = self._take_fault(full)
                if fault is not None:
                    await self._abort(call, context, fault.code, fault.details)
                response = await behaviour(argument, context)
                await self._after(full, call, state)
            except BaseException as exc:
                self._ended(call, context, exc)
                raise
            self._ended(call, context, None)
            return response

        return handle

    def _stream_response(self, full: str, behaviour: Callable[..., Any]) -> Callable[..., Any]:
        async def handle(argument: Any, context: Any) -> AsyncIterator[Any]:
            call, state = self._begin(full, context)
            argument = _record_first(argument, call)
            try:
                if not await self._before(full, call, state):
                    await context.abort(grpc.StatusCode.CANCELLED, RESET_DETAILS)
                fault = self._take_fault(full)
                if fault is not None and fault.after_messages == 0:
                    await self._abort(call, context, fault.code, fault.details)
                interval = self._intervals.get(full)
                count = 0
                result = behaviour(argument, context)
                if not hasattr(result, "__aiter__"):  # a servicer that writes with context.write()
                    await result
                    result = _no_messages()
                async for message in result:
                    if fault is not None and count >= fault.after_messages:
                        await self._abort(call, context, fault.code, fault.details)
                    if (
                        interval is not None
                        and await self._wait(call, state, interval, True, None) != "elapsed"
                    ):
                        call.finish("abandoned")
                        await context.abort(grpc.StatusCode.CANCELLED, RESET_DETAILS)
                    yield message
                    count += 1
                if fault is not None:
                    await self._abort(call, context, fault.code, fault.details)
                await self._after(full, call, state)
            except BaseException as exc:
                self._ended(call, context, exc)
                raise
            self._ended(call, context, None)

        return handle


async def _no_messages() -> AsyncIterator[Any]:
    return
    yield


def _record_first(argument: Any, call: ServerCall) -> Any:
    if not hasattr(argument, "__aiter__"):
        call.request = argument
        return argument

    async def recorded() -> AsyncIterator[Any]:
        async for message in argument:
            if call.request is None:
                call.request = message
            yield message

    return recorded()
