"""A real in-process sync grpc server with controlled delays, gates and faults, and call records.

Usable without pytest::

    with GrpcTestServer() as server:
        server.delay("pytest_grpc_deadlines.probe.v1.Probe/Unary", 0.5)
        server.probe().Unary(ProbeRequest(), timeout=0.1)  # DEADLINE_EXCEEDED
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from concurrent import futures
from dataclasses import dataclass
from types import TracebackType
from typing import Any

import grpc

from .cascade import DAGSTER, Cascade
from .client import serving
from .probe import ProbeStub, deadline_seconds
from .records import ServerCall
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

__all__ = ["Gate", "GrpcTestServer"]


class Gate:
    """Holds a method's calls until :meth:`release`; made by ``server.hold(method)``."""

    def __init__(self, server: GrpcTestServer, method: str, honor_cancellation: bool) -> None:
        self._server = server
        self.method = method.lstrip("/")
        self.honor_cancellation = honor_cancellation
        self._entered = threading.Event()
        self._cancelled = threading.Event()
        self.released = False
        self.entered = 0

    def wait_entered(self, timeout: float | None = None) -> bool:
        """Block until a call reaches the gate; False on timeout."""
        return self._entered.wait(timeout)

    def wait_cancelled(self, timeout: float | None = None) -> bool:
        """Block until the server sees a held call's client cancel or its deadline pass."""
        return self._cancelled.wait(timeout)

    def release(self) -> None:
        """Let held and future calls through."""
        with self._server._cond:
            self.released = True
            self._server._cond.notify_all()

    def __repr__(self) -> str:
        return f"Gate({self.method}, entered={self.entered}, released={self.released})"


@dataclass
class _CallState:
    generation: int
    terminated: bool = False
    gate: Gate | None = None


class _Interceptor(grpc.ServerInterceptor):  # type: ignore[misc]
    def __init__(self, server: GrpcTestServer) -> None:
        self._server = server

    def intercept_service(self, continuation: Callable[[Any], Any], details: Any) -> Any:
        handler = continuation(details)
        if handler is None:
            return None
        return self._server._wrap(details.method, handler)


class GrpcTestServer(ServerBase):
    """A sync grpc server for tests: TCP loopback on port 0, or a unix socket."""

    def __init__(
        self,
        *servicers: ServicerPair,
        transport: Transport = "tcp",
        host: str = "127.0.0.1",
        options: OptionsArg = None,
        max_workers: int | None = None,
        cascade: Cascade = DAGSTER,
    ) -> None:
        super().__init__(*servicers, transport=transport, host=host, options=options, cascade=cascade)
        if max_workers is not None and (
            isinstance(max_workers, bool) or not isinstance(max_workers, int) or max_workers < 1
        ):
            raise ValueError(f"max_workers={max_workers!r} must be None or a positive int")
        self._max_workers = max_workers or 32
        self._server: Any = None
        self._executor: futures.ThreadPoolExecutor | None = None
        self._channels: list[grpc.Channel] = []
        self._closing = False

    # lifecycle -----------------------------------------------------------------------------
    def start(self) -> GrpcTestServer:
        if self._server is not None:
            return self
        self._closing = False
        self._executor = futures.ThreadPoolExecutor(
            self._max_workers, thread_name_prefix="grpc-deadlines-server"
        )
        server = grpc.server(
            self._executor, interceptors=(_Interceptor(self),), options=self._server_options()
        )
        self._register(server)
        try:
            port = server.add_insecure_port(self._bind_address())
            self._bound(port)
        except BaseException:
            server.stop(None)
            self._executor.shutdown(wait=False)
            raise
        server.start()
        self._server = server
        return self

    @property
    def is_running(self) -> bool:
        return self._server is not None

    def stop(self, grace: float | None = DEFAULT_GRACE) -> None:
        """Stop serving: in-flight calls get ``grace`` seconds (the cascade's grace by default;
        None or 0 stop at once, as in grpc), then are cancelled. Returns once stopped."""
        grace = self._stop_grace(grace)
        server, self._server = self._server, None
        if server is not None:
            server.stop(grace).wait()
        if self._executor is not None:
            self._executor.shutdown(wait=False)
            self._executor = None

    def restart(self) -> GrpcTestServer:
        """Stop at once and serve again on the same address."""
        self.stop(None)
        return self.start()

    def close(self) -> None:
        """Stop at once, release every held or sleeping handler, close channels, remove files."""
        with self._cond:
            self._closing = True
        self._release_all()
        self.close_channels()
        self.stop(None)
        self._remove_tmpdir()

    def __enter__(self) -> GrpcTestServer:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    # clients ---------------------------------------------------------------------------------
    def channel(self, **options: Any) -> grpc.Channel:
        """An insecure channel to this server, closed at teardown. Option names may drop the
        ``grpc.`` prefix (``max_receive_message_length=1024``); the cascade's byte limits apply
        unless overridden."""
        channel = grpc.insecure_channel(self.target, options=self._channel_options(options))
        self._channels.append(channel)
        return channel

    def probe(self, **options: Any) -> ProbeStub:
        """A :class:`~pytest_grpc_deadlines.probe.ProbeStub` on a new :meth:`channel`."""
        return ProbeStub(self.channel(**options))

    def close_channels(self) -> None:
        channels, self._channels = self._channels, []
        for channel in channels:
            channel.close()

    # behaviour ------------------------------------------------------------------------------
    def hold(self, method: str, *, honor_cancellation: bool = False) -> Gate:
        """Hold ``method``'s calls at handler start until the gate is released. By default a
        held call ignores the client going away, which is what reproduces a disagreement."""
        full = self._method(method)
        if not isinstance(honor_cancellation, bool):
            raise ValueError(f"honor_cancellation={honor_cancellation!r} must be True or False")
        gate = Gate(self, full, honor_cancellation)
        with self._cond:
            old = self._gates.get(full)
            if old is not None:
                old.released = True
            self._gates[full] = gate
            self._cond.notify_all()
        return gate

    def _release_all(self) -> None:
        with self._cond:
            for gate in self._gates.values():
                gate.released = True
            self._cond.notify_all()

    def reset(self) -> None:
        super().reset()
        with self._cond:
            self._closing = False

    # handling -------------------------------------------------------------------------------
    def _wait(self, state: _CallState, seconds: float | None, honor: bool, gate: Gate | None) -> str:
        """ "elapsed", "released", "terminated" (the client went away) or "closing"."""
        end = None if seconds is None else time.monotonic() + seconds
        with self._cond:
            while True:
                if gate is not None and gate.released:
                    return "released"
                if honor and state.terminated:
                    return "terminated"
                if self._closing or state.generation != self._generation:
                    return "closing"
                remaining = None if end is None else end - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return "elapsed"
                self._cond.wait(remaining)

    def _begin(self, method: str, context: Any, request: Any) -> tuple[ServerCall, _CallState]:
        call = ServerCall(
            method=method.lstrip("/"),
            metadata=tuple((m.key, m.value) for m in context.invocation_metadata()),
            deadline=deadline_seconds(context),
            request=request,
        )
        with self._cond:
            state = _CallState(self._generation)
            self._calls.append(call)
        _pair(call)

        def terminated() -> None:
            with self._cond:
                state.terminated = True
                if call.outcome == "running":
                    call.mark_cancelled()
                    if state.gate is not None:
                        state.gate._cancelled.set()
                self._cond.notify_all()

        if not context.add_callback(terminated):
            terminated()
        return call, state

    def _before(self, full: str, call: ServerCall, state: _CallState) -> bool:
        """Hold and "before" delay; False when the call is abandoned."""
        with self._cond:
            gate = self._gates.get(full)
            delay = self._delays.get(full)
        if gate is not None:
            call.provoked = True
            with self._cond:
                state.gate = gate
                gate.entered += 1
                if state.terminated:
                    gate._cancelled.set()
            gate._entered.set()
            result = self._wait(state, None, gate.honor_cancellation, gate)
            state.gate = None
            if result == "terminated":
                call.finish("abandoned")
                return False
        if delay is not None and delay.when == "before":
            call.provoked = call.provoked or not delay.honor_cancellation
            result = self._wait(state, delay.next(), delay.honor_cancellation, None)
            if result in ("terminated", "closing"):
                call.finish("abandoned")
                return False
        return True

    def _after(self, full: str, call: ServerCall, state: _CallState) -> None:
        delay = self._delays.get(full)
        if delay is not None and delay.when == "after":
            call.provoked = True
            self._wait(state, delay.next(), delay.honor_cancellation, None)

    def _abort(self, call: ServerCall, context: Any, code: grpc.StatusCode, details: str) -> None:
        call.finish("aborted", code, details)
        context.abort(code, details)

    @staticmethod
    def _returned(call: ServerCall, context: Any) -> None:
        note_probe_delay(call)
        code = _context_code(context)
        if code is not None and code is not grpc.StatusCode.OK:
            call.finish("aborted", code, _context_details(context))
        else:
            call.finish("ok", grpc.StatusCode.OK)

    @staticmethod
    def _raised(call: ServerCall, context: Any, exc: BaseException) -> None:
        code = _context_code(context)
        if code is not None and code is not grpc.StatusCode.OK:
            call.finish("aborted", code, _context_details(context), exc)
        else:
            call.finish("raised", grpc.StatusCode.UNKNOWN, f"{type(exc).__name__}: {exc}", exc)

    def _unary_response(self, full: str, behaviour: Callable[..., Any]) -> Callable[..., Any]:
        def handle(argument: Any, context: Any) -> Any:
            call, state = self._begin(full, context, None)
            if not isinstance(argument, Iterator):
                call.request = argument
            else:
                argument = _FirstRecorded(argument, call)
            try:
                with serving():
                    if not self._before(full, call, state):
                        context.abort(grpc.StatusCode.CANCELLED, RESET_DETAILS)
                    fault = self._take_fault(full)
                    if fault is not None:
                        self._abort(call, context, fault.code, fault.details)
                    response = behaviour(argument, context)
                    self._after(full, call, state)
                self._returned(call, context)
                return response
            except Exception as exc:
                self._raised(call, context, exc)
                raise

        return handle

    def _stream_response(self, full: str, behaviour: Callable[..., Any]) -> Callable[..., Any]:
        def handle(argument: Any, context: Any) -> Iterator[Any]:
            call, state = self._begin(full, context, None)
            if not isinstance(argument, Iterator):
                call.request = argument
            else:
                argument = _FirstRecorded(argument, call)
            try:
                # The generator runs on this one worker thread, so the mark holds across yields.
                with serving():
                    yield from self._serve_stream(full, behaviour, argument, context, call, state)
            except GeneratorExit:
                call.mark_cancelled()
                call.finish("abandoned")
                raise
            except Exception as exc:
                self._raised(call, context, exc)
                raise

        return handle

    def _serve_stream(
        self,
        full: str,
        behaviour: Callable[..., Any],
        argument: Any,
        context: Any,
        call: ServerCall,
        state: Any,
    ) -> Iterator[Any]:
        responses: Any = None
        try:
            if not self._before(full, call, state):
                context.abort(grpc.StatusCode.CANCELLED, RESET_DETAILS)
            fault = self._take_fault(full)
            if fault is not None and fault.after_messages == 0:
                self._abort(call, context, fault.code, fault.details)
            interval = self._intervals.get(full)
            responses = iter(behaviour(argument, context))
            for count, message in enumerate(responses):
                if fault is not None and count >= fault.after_messages:
                    self._abort(call, context, fault.code, fault.details)
                if interval is not None and self._wait(state, interval, True, None) != "elapsed":
                    call.finish("abandoned")
                    context.abort(grpc.StatusCode.CANCELLED, RESET_DETAILS)
                yield message
            if fault is not None:
                self._abort(call, context, fault.code, fault.details)
            self._after(full, call, state)
            self._returned(call, context)
        finally:
            close = getattr(responses, "close", None)
            if close is not None:
                close()


class _FirstRecorded(Iterator[Any]):
    """A request iterator that records the first message on the call."""

    def __init__(self, requests: Iterator[Any], call: ServerCall) -> None:
        self._requests = requests
        self._call = call
        self._first = True

    def __next__(self) -> Any:
        message = next(self._requests)
        if self._first:
            self._first = False
            self._call.request = message
        return message


def _context_code(context: Any) -> grpc.StatusCode | None:
    code = getattr(context, "code", None)
    if callable(code):
        try:
            value = code()
        except Exception:
            return None
        if isinstance(value, grpc.StatusCode):
            return value
        if isinstance(value, int):
            for member in grpc.StatusCode:
                if member.value[0] == value:
                    return member
    return None


def _context_details(context: Any) -> str | None:
    details = getattr(context, "details", None)
    if callable(details):
        try:
            value = details()
        except Exception:
            return None
        if isinstance(value, bytes):
            return value.decode("utf-8", "replace")
        return value if isinstance(value, str) else None
    return None
