"""A real in-process sync grpc server with controlled delays, gates and faults, and call records.

Usable without pytest::

    with GrpcTestServer() as server:
        server.delay("pytest_grpc_deadlines.probe.v1.Probe/Unary", 0.5)
        server.probe().Unary(ProbeRequest(), timeout=0.1)  # DEADLINE_EXCEEDED
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent import futures
from types import TracebackType
from typing import TYPE_CHECKING, TypeVar, cast

import grpc

from .._checks import check_flag, check_optional_positive_int
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
from ._observers import serving
from ._options import OptionsArg, ServicerPair, Transport
from ._records import ServerCall

if TYPE_CHECKING:  # the probe (and protobuf) load when a test first asks for its stub
    from ..probe import ProbeStub

_Req = TypeVar("_Req")
_Resp = TypeVar("_Resp")

__all__ = ["Gate", "GrpcTestServer"]


class Gate(GateBase):
    """Holds a method's calls until :meth:`release`; made by ``server.hold(method)``."""

    _entered: threading.Event
    _cancelled: threading.Event

    def __init__(self, server: GrpcTestServer, method: str, honor_cancellation: bool) -> None:
        super().__init__(server, method, honor_cancellation)
        self._entered = threading.Event()
        self._cancelled = threading.Event()

    def wait_entered(self, timeout: float | None = None) -> bool:
        """Block until a call reaches the gate; False on timeout."""
        return self._entered.wait(timeout)

    def wait_cancelled(self, timeout: float | None = None) -> bool:
        """Block until the server sees a held call's client cancel or its deadline pass."""
        return self._cancelled.wait(timeout)


class _Interceptor(grpc.ServerInterceptor):
    def __init__(self, server: GrpcTestServer) -> None:
        self._server = server

    def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], grpc.RpcMethodHandler[_Req, _Resp] | None],
        details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler[_Req, _Resp] | None:
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
        reuse_channels: bool = False,
    ) -> None:
        super().__init__(*servicers, transport=transport, host=host, options=options, cascade=cascade)
        self._max_workers = check_optional_positive_int(max_workers, "max_workers") or 32
        self._server: grpc.Server | None = None
        self._executor: futures.ThreadPoolExecutor | None = None
        self._channels: list[grpc.Channel] = []
        #: with ``reuse_channels`` (the ``grpc_test_server`` fixture's servers), the channels
        #: ``channel()`` made, by their options: kept across tests, closed when the server stops
        self._reuse = check_flag(reuse_channels, "reuse_channels")
        self._reused: dict[str, grpc.Channel] = {}
        self._stubs: dict[int, tuple[grpc.Channel, ProbeStub]] = {}

    # lifecycle -----------------------------------------------------------------------------
    def start(self) -> GrpcTestServer:
        if self._server is not None:
            return self
        self._closing = False
        self._executor = futures.ThreadPoolExecutor(
            self._max_workers, thread_name_prefix="grpc-deadlines-server"
        )
        server = grpc.server(self._executor, interceptors=[_Interceptor(self)], options=self._start_options())
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

    def stop(self, grace: Grace = DEFAULT_GRACE) -> None:
        """Stop serving: in-flight calls get ``grace`` seconds (the cascade's grace by default;
        None or 0 stop at once, as in grpc), then are cancelled. Returns once stopped."""
        grace = self._stop_grace(grace)
        server, self._server = self._server, None
        if server is not None:
            server.stop(grace).wait()
        self._close_reused()  # a channel to a stopped server reconnects with backoff: not reused
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
    def channel(self, **options: object) -> grpc.Channel:
        """An insecure channel to this server, closed at teardown. Option names may drop the
        ``grpc.`` prefix (``max_receive_message_length=1024``); the cascade's byte limits apply
        unless overridden. The ``grpc_test_server`` fixture's server hands out one open channel
        per set of options, across its tests, until it stops."""
        merged = self._channel_options(options)
        if not self._reuse:
            channel = grpc.insecure_channel(self.target, options=merged)
            self._channels.append(channel)
            return channel
        key = repr(merged)
        reused = self._reused.get(key)
        if reused is None or not _is_open(reused):
            reused = self._reused[key] = grpc.insecure_channel(self.target, options=merged)
        return reused

    def probe(self, **options: object) -> ProbeStub:
        """A :class:`~pytest_grpc_deadlines.probe.ProbeStub` on :meth:`channel`."""
        from ..probe import ProbeStub

        channel = self.channel(**options)
        if not self._reuse:
            return ProbeStub(channel)
        stub = self._stubs.get(id(channel))
        if stub is None or stub[0] is not channel:
            stub = self._stubs[id(channel)] = (channel, ProbeStub(channel))
        return stub[1]

    def close_channels(self) -> None:
        """Close the channels ``channel()`` made (a reused server's stay open for its next test)."""
        channels, self._channels = self._channels, []
        for channel in channels:
            channel.close()

    def _close_reused(self) -> None:
        channels, self._reused = list(self._reused.values()), {}
        self._stubs.clear()
        for channel in channels:
            channel.close()

    # behaviour ------------------------------------------------------------------------------
    def hold(
        self,
        method: str,
        *,
        honor_cancellation: bool = False,
        max_hold: float | None = DEFAULT_MAX_HOLD,
        times: int | None = None,
        skip: int = 0,
    ) -> Gate:
        """Hold ``method``'s calls at handler start until the gate is released. By default a
        held call ignores the client going away, which is what reproduces a disagreement. A
        call held ``max_hold`` seconds fails with ABORTED, saying the gate was never released
        (None: hold it for ever). ``skip`` lets that many calls through first, then ``times``
        calls are held (None: every one); each attempt of a retried call counts."""
        return cast(Gate, self._hold(method, honor_cancellation, max_hold, times, skip))

    def _new_gate(self, method: str, honor_cancellation: bool) -> Gate:
        return Gate(self, method, honor_cancellation)

    def _notify(self) -> None:
        with self._cond:
            self._cond.notify_all()

    # handling: the core's flows, run with a blocking wait on this worker thread ---------------
    def _wait(self, state: CallState, wait: Wait) -> Wake:
        end = self._end(wait)
        with self._cond:
            while (woken := self._woken(state, wait, end)) is None:
                self._cond.wait(None if end is None else end - time.monotonic())
        return woken

    def _start(
        self, full: str, argument: object, context: grpc.ServicerContext
    ) -> tuple[ServerCall, CallState, object]:
        call, state = self._begin(full, context, context.invocation_metadata())
        if not context.add_callback(lambda: self._terminated(call, state)):
            self._terminated(call, state)
        seen = lambda: self._seen(call)  # noqa: E731
        if isinstance(argument, Iterator):  # before _observe: the check is grpc's own
            argument = _FirstRecorded(argument, call, seen, context.is_active)
        else:
            call.request = argument
        _observe(context, call, seen)
        return call, state, argument

    def _run(
        self, flow: Flow, state: CallState, context: grpc.ServicerContext, start: Start, stream: bool
    ) -> Iterator[object]:
        """Carry out ``flow``'s effects; yields the messages it sends."""
        responses: Iterator[object] = iter(())
        sent: object = None
        try:
            while True:
                try:
                    effect = flow.send(sent)
                except StopIteration:
                    return
                sent = None
                if effect is RUN:
                    result = start()
                    if stream:
                        responses = iter(cast("Iterable[object]", result))
                    else:
                        sent = result
                elif effect is NEXT:
                    sent = next(responses, END)
                elif isinstance(effect, Emit):
                    yield effect.message
                elif isinstance(effect, Wait):
                    sent = self._wait(state, effect)
                elif isinstance(effect, Abort):
                    context.abort(effect.code, effect.details)
        finally:
            close = getattr(responses, "close", None)
            if close is not None:
                close()

    def _unary_response(self, full: str, behaviour: Behaviour, arrived: int) -> Behaviour:
        def handle(argument: object, context: grpc.ServicerContext) -> object:
            if self._stale(arrived):
                context.abort(grpc.StatusCode.CANCELLED, RESET_DETAILS)
            call, state, argument = self._start(full, argument, context)
            if self._plain(full):  # the servicer alone: no flow to run around it
                try:
                    with serving(call):
                        response = behaviour(argument, context)
                    self._check_sendable(full, call, response)
                    settle(call, context)
                    return response
                except Exception as exc:
                    settle(call, context, exc)
                    raise
            flow = self._unary_flow(full, call, state)
            try:
                with serving(call):
                    [response] = self._run(
                        flow, state, context, lambda: behaviour(argument, context), stream=False
                    )
                settle(call, context)
                return response
            except Exception as exc:
                settle(call, context, exc)
                raise

        return handle

    def _stream_response(self, full: str, behaviour: Behaviour, arrived: int) -> Behaviour:
        def handle(argument: object, context: grpc.ServicerContext) -> Iterator[object]:
            if self._stale(arrived):
                context.abort(grpc.StatusCode.CANCELLED, RESET_DETAILS)
            call, state, argument = self._start(full, argument, context)
            flow = self._stream_flow(full, call, state)
            try:
                # The generator runs on this one worker thread, so the mark holds across yields.
                with serving(call):
                    yield from self._run(
                        flow, state, context, lambda: behaviour(argument, context), stream=True
                    )
                settle(call, context)
            except GeneratorExit as exc:
                settle(call, context, exc, cancelled=True)
                raise
            except Exception as exc:
                settle(call, context, exc)
                raise

        return handle


def _observe(context: grpc.ServicerContext, call: ServerCall, seen: Callable[[], None]) -> None:
    """Note when the servicer's code sees the RPC end under it (``is_active()`` False) and when
    it cancels the call itself. The wrappers sit on this one context object: its class, and what
    each method does and returns, stay grpc's. ``time_remaining()`` reaching 0 and a termination
    callback are not counted: code reads the one to pass a deadline on and registers the other
    to log, and may go on with the work either way."""
    is_active, cancel = context.is_active, context.cancel

    def observed_is_active() -> bool:
        active = is_active()
        if not active:
            seen()
        return active

    def observed_cancel() -> bool:
        call.cancel_called()
        return cancel()

    context.is_active = observed_is_active  # type: ignore[method-assign]
    context.cancel = observed_cancel  # type: ignore[method-assign]


def _is_open(channel: grpc.Channel) -> bool:
    """Whether a channel can still make calls: the test that had it may have closed it."""
    try:
        channel._channel.check_connectivity_state(False)  # type: ignore[attr-defined]
    except ValueError:  # "Cannot invoke RPC: Channel closed!"
        return False
    except AttributeError:  # a grpcio without it: do not reuse what cannot be checked
        return False
    return True


class _FirstRecorded(Iterator[object]):
    """A request iterator that records the first message on the call."""

    def __init__(
        self,
        requests: Iterator[object],
        call: ServerCall,
        seen: Callable[[], None],
        active: Callable[[], bool],
    ) -> None:
        self._requests = requests
        self._call = call
        self._seen = seen
        self._active = active
        self._first = True

    def __next__(self) -> object:
        try:
            message = next(self._requests)
        except grpc.RpcError:  # grpc's request iterator raises this once the RPC has ended
            self._seen()
            raise
        except StopIteration:  # the client closed its stream, or (not active) the RPC ended
            if not self._active():
                self._seen()
            raise
        if self._first:
            self._first = False
            self._call.request = message
        return message
