"""The test servers' core: configuration, behaviour tables, records, and every decision a handler
makes. The sync and asyncio servers supply only their waiting primitive and grpc transport."""

from __future__ import annotations

import enum
import os
import re
import shutil
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Generator, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final, Literal, TypeVar

import grpc
import grpc.aio

from .._checks import check_flag, check_wait
from .._context import PROBE_SERVICE_NAME, deadline_seconds, status_code
from .._errors import ArgumentError, ServerStateError
from ..cascade._cascade import DAGSTER, Cascade, Resolved
from ._behaviour import Chosen, Delay, Fault, Jitter, When, choose, make_fault, method_name
from ._observers import CALL_ID_HEADER, announce, bind, unbind
from ._options import (
    SUN_PATH_MAX,
    Capture,
    OptionsArg,
    ServicerPair,
    Transport,
    byte_limit_options,
    check_host,
    options_list,
)
from ._records import SERVER_CANCELLED_DETAILS, CancelledBy, ServerCall

__all__ = [
    "DEFAULT_GRACE",
    "DEFAULT_MAX_HOLD",
    "END",
    "NEXT",
    "RESET_DETAILS",
    "RUN",
    "Abort",
    "Behaviour",
    "CallState",
    "Emit",
    "Flow",
    "GateBase",
    "Grace",
    "ServerBase",
    "Start",
    "Wait",
    "Wake",
    "note_probe_delay",
    "settle",
]


class _Default(enum.Enum):
    GRACE = "the cascade's grace"


#: How long a call waits at a gate that is never released before it fails saying so (``hold()``'s
#: ``max_hold`` default): longer than any test should hold a call, short of a hang.
DEFAULT_MAX_HOLD = 60.0

#: ``stop()`` without an argument uses the cascade's grace setting.
DEFAULT_GRACE: Final = _Default.GRACE
#: What ``stop(grace=...)`` takes: seconds, None (stop at once), or the cascade's grace.
Grace = float | None | Literal[_Default.GRACE]

#: The details of a call abandoned before its servicer ran (``reset()`` or ``close()`` during its
#: delay, or its client gone): it ends CANCELLED, not OK with a response the servicer never made.
RESET_DETAILS = "the test server was reset"


def _pair(call: ServerCall) -> None:
    """Note the pairing header, so the client's record of this call can find this one."""
    for key, value in call.metadata:
        if key == CALL_ID_HEADER:
            call.client_call_id = value.decode() if isinstance(value, bytes) else value
            announce(call)
            return


def note_probe_delay(call: ServerCall) -> None:
    """A probe request that asks the server to wait (``delay_seconds``, ``interval_seconds``)
    makes the call outlive its client on purpose: it is provoked, as a gate or delay is."""
    if call.method.startswith(PROBE_SERVICE_NAME + "/"):
        request = call.request
        if getattr(request, "delay_seconds", 0) > 0 or getattr(request, "interval_seconds", 0) > 0:
            call.provoked = True


# What a handler decides, once for both servers ------------------------------------------------
#
# A call's handling is a generator (``_unary_flow``, ``_stream_flow``) that makes every decision
# (phases, gates, delays, faults, outcomes) and yields the effects it needs from its server. The
# sync and asyncio servers run the same generator, each with its own waiting primitive (a
# ``threading.Condition`` or an ``asyncio.Event``) and transport (grpc's sync or aio context).

#: Why a wait ended: its time elapsed, its gate was released, the client went away (only when
#: the wait honours cancellation), or the server was reset or closed.
Wake = Literal["elapsed", "released", "terminated", "closing"]


@dataclass(frozen=True)
class Wait:
    """Wait ``seconds`` (None: until woken); ``honor``: a client going away ends the wait."""

    seconds: float | None
    honor: bool
    gate: GateBase | None = None


@dataclass(frozen=True)
class Abort:
    """End the RPC with ``code`` and ``details`` (the server's ``context.abort``)."""

    code: grpc.StatusCode
    details: str


class _Marker:
    def __init__(self, name: str) -> None:
        self._name = name

    def __repr__(self) -> str:
        return self._name


#: Run the servicer (a unary response: the flow receives it); for a response stream, start it.
RUN: Final = _Marker("RUN")
#: Take the response stream's next message (the flow receives it, or END).
NEXT: Final = _Marker("NEXT")
#: What NEXT receives once the response stream is exhausted.
END: Final = _Marker("END")


@dataclass(frozen=True)
class Emit:
    """Send ``message`` to the client (a response stream)."""

    message: object


Effect = Wait | Abort | Emit | _Marker
#: A call's handling: yields effects and receives what each gave (a Wake, the servicer's unary
#: response, the next message of its response stream or END).
Flow = Generator[Effect, object, None]
#: A servicer method (``behaviour``) of any message types, or the handler that wraps it.
Behaviour = Callable[[Any, Any], Any]
#: Runs the servicer for one call: its response, response iterator, or (asyncio) awaitable.
Start = Callable[[], Any]
if TYPE_CHECKING:  # grpc's classes are generic in its stubs only
    #: grpc's servicer context, sync or asyncio.
    Context = grpc.ServicerContext | grpc.aio.ServicerContext[Any, Any]
_Req = TypeVar("_Req")
_Resp = TypeVar("_Resp")


@dataclass
class CallState:
    """What the server knows of one call while it runs."""

    generation: int
    context: Context | None = None
    terminated: bool = False
    gate: GateBase | None = None


class GateBase:
    """Holds a method's calls until :meth:`release`; the servers' ``Gate`` and ``AioGate`` add
    their events and waits."""

    _entered: Any
    _cancelled: Any

    def __init__(self, server: ServerBase, method: str, honor_cancellation: bool) -> None:
        self._server = server
        self.method = method.lstrip("/")
        self.honor_cancellation = honor_cancellation
        self.released = False
        self.entered = 0
        #: seconds a call may wait at the gate before it fails, saying the gate was never
        #: released (None: no limit)
        self.max_hold: float | None = DEFAULT_MAX_HOLD
        #: which calls the gate holds (``hold(times=, skip=)``); the others pass
        self.chosen = Chosen()

    def release(self) -> None:
        """Let held and future calls through."""
        with self._server._cond:
            self.released = True
        self._server._notify()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.method}, entered={self.entered}, released={self.released})"


def context_code(context: object) -> grpc.StatusCode | None:
    """The status the servicer set on ``context`` (None when it set none or cannot say)."""
    code = getattr(context, "code", None)
    if callable(code):
        try:
            value = code()
        except Exception:
            return None
        if isinstance(value, grpc.StatusCode):
            return value
        if isinstance(value, int):
            return status_code(value)
    return None


def context_details(context: object) -> str | None:
    """The details the servicer set on ``context``."""
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


def settle(
    call: ServerCall,
    context: Any,
    exc: BaseException | None = None,
    *,
    cancelled: bool = False,
    aborted: bool = False,
) -> None:
    """Record how the handler ended: returned (``exc`` None), raised ``exc``, stopped because
    the RPC was cancelled under it (``cancelled``: grpc stopped it; or it saw the cancellation
    and ended), cancelled the call itself, or ``aborted`` through grpc's abort."""
    if cancelled:  # grpc closed the response stream or cancelled the task
        call.mark_cancelled()
        call.notice()
        call.finish("abandoned", exception=exc)
        return
    if call._cancel_called:
        call.finish("aborted", grpc.StatusCode.CANCELLED, SERVER_CANCELLED_DETAILS, exc)
        return
    if call.noticed_at is not None:  # the handler saw the RPC end under it, and stopped
        call.finish("abandoned", exception=exc)
        return
    code = context_code(context)
    if code is not None and code is not grpc.StatusCode.OK:
        call.finish("aborted", code, context_details(context), exc)
    elif exc is None:
        note_probe_delay(call)
        call.finish("ok", grpc.StatusCode.OK)
    elif aborted:
        call.finish("aborted", code, context_details(context), exc)
    else:
        call.finish("raised", grpc.StatusCode.UNKNOWN, f"{type(exc).__name__}: {exc}", exc)


def _size(message: object, encode: Callable[[Any], bytes] | None) -> int | None:
    """The serialized size of a response: protobuf's ByteSize, else the serializer's output."""
    byte_size = getattr(message, "ByteSize", None)
    if callable(byte_size):
        size = byte_size()
        return size if isinstance(size, int) else None
    if encode is not None:
        try:
            return len(encode(message))
        except Exception:  # grpc reports a serializer's failure itself
            return None
    return len(message) if isinstance(message, bytes) else None


#: ``os.environ``'s own mapping (bytes to bytes on POSIX), read directly to tell whether the
#: cascade's variables changed: ``os.environ.get`` encodes and decodes on every lookup, and a
#: reused server asks for every variable at least once per test.
_ENVIRON_DATA: Mapping[object, object] | None = (
    getattr(os.environ, "_data", None) if os.name == "posix" else None
)


def _environ_keys(names: Sequence[str]) -> tuple[object, ...]:
    return tuple(os.fsencode(name) for name in names) if _ENVIRON_DATA is not None else tuple(names)


def _environ_values(keys: tuple[object, ...]) -> tuple[object, ...]:
    """The values of these variables now (compared, never read as text)."""
    data = _ENVIRON_DATA
    if data is not None:
        return tuple(map(data.get, keys))
    return tuple(os.environ.get(str(key)) for key in keys)


#: Characters grpc reads as URI syntax in a ``unix:`` target (and whitespace, which it rejects).
_URI_SYNTAX = re.compile(r"[#?,%;\s]")


class ServerBase:
    """Configuration, per-method behaviour and records; subclasses run the grpc server."""

    def __init__(
        self,
        *servicers: ServicerPair,
        transport: Transport = "tcp",
        host: str = "127.0.0.1",
        options: OptionsArg = None,
        cascade: Cascade = DAGSTER,
    ) -> None:
        if not servicers:  # the probe (and protobuf) load only for a server that hosts it
            from ..probe import ProbeServicer, add_ProbeServicer_to_server

            servicers = ((add_ProbeServicer_to_server, ProbeServicer()),)
        for pair in servicers:
            if not (isinstance(pair, tuple) and len(pair) == 2 and callable(pair[0])):
                raise ArgumentError(
                    f"servicer {pair!r} is not accepted; pass (add_FooServicer_to_server, "
                    "FooServicer()) pairs"
                )
        if transport not in ("tcp", "unix"):
            raise ArgumentError(f"transport={transport!r} is not accepted; use 'tcp' or 'unix'")
        if transport == "unix" and sys.platform == "win32":
            raise ArgumentError("transport='unix' needs a POSIX system (Linux or macOS)")
        self._servicers = servicers
        self._transport: Transport = transport
        self._host = check_host(host)
        self._user_options = options_list(options, "options")
        self._cascade = cascade
        self._methods: set[str] = set()
        self._streaming: dict[str, bool] = {}
        self._opaque = False
        self._port: int | None = None
        self._tmpdir: str | None = None
        self._cond = threading.Condition()
        self._closing = False
        self._generation = 0
        self._delays: dict[str, Delay] = {}
        self._intervals: dict[str, float] = {}
        self._faults: dict[str, Fault] = {}
        self._calls: list[ServerCall] = []
        self._gates: dict[str, GateBase] = {}
        self._encoders: dict[str, Callable[[Any], bytes] | None] = {}
        self._send_limit = -1
        self._resolution: tuple[tuple[object, ...], Resolved] | None = None
        self._options: list[tuple[str, object]] | None = None
        self._env_keys = _environ_keys(cascade.env_vars)

    # configuration -------------------------------------------------------------------------
    def _resolved(self) -> Resolved:
        """The cascade resolved from the environment now; resolved again only when one of its
        variables changed since the last time (a reused server asks at least once per test)."""
        key = _environ_values(self._env_keys)
        cached = self._resolution
        if cached is None or cached[0] != key:
            cached = self._resolution = (key, self._cascade.resolve(os.environ))
            self._options = None
        return cached[1]

    def _server_options(self) -> list[tuple[str, object]]:
        resolved = self._resolved()
        if self._options is None:
            # grpc takes the first of repeated options: merge, so the caller's options win
            options: dict[str, object] = {"grpc.so_reuseport": 0, **dict(byte_limit_options(resolved))}
            options.update(self._user_options)
            self._options = list(options.items())
        return list(self._options)

    def _start_options(self) -> list[tuple[str, object]]:
        """The options a server starts with; notes the send limit they give it."""
        options = self._server_options()
        limit = dict(options).get("grpc.max_send_message_length", -1)
        self._send_limit = limit if isinstance(limit, int) and not isinstance(limit, bool) else -1
        return options

    def limits_key(self) -> tuple[tuple[str, object], ...]:
        """The options grpc fixes at creation, for deciding whether a server can be reused."""
        return tuple(self._server_options())

    def _bind_address(self) -> str:
        if self._transport == "unix":
            if self._tmpdir is None:  # mkdtemp makes it 0700: private to this user
                self._tmpdir = tempfile.mkdtemp(prefix="grpc-deadlines-")
                path = os.path.join(self._tmpdir, "server.sock")
                if len(path.encode()) > SUN_PATH_MAX or _URI_SYNTAX.search(path):
                    # A socket path must fit sockaddr_un, and grpc reads a target as a URI: a
                    # long TMPDIR, or one with "#", "?", "," or "%", gets /tmp instead.
                    os.rmdir(self._tmpdir)
                    self._tmpdir = tempfile.mkdtemp(prefix="grpc-deadlines-", dir="/tmp")
            return f"unix:{os.path.join(self._tmpdir, 'server.sock')}"
        port = self._port or 0
        host = f"[{self._host}]" if ":" in self._host else self._host
        return f"{host}:{port}"

    def _register(self, server: grpc.Server | grpc.aio.Server) -> None:
        for add, servicer in self._servicers:
            capture = Capture(server)
            add(servicer, capture)
            self._methods |= capture.methods
            self._streaming.update(capture.streaming)
            self._opaque = self._opaque or capture.opaque

    def _bound(self, port: int) -> None:
        if self._transport == "tcp":
            if not port:
                raise ServerStateError(f"grpc could not bind {self._bind_address()}")
            self._port = port
        bind(self.target)

    def _unbound(self) -> None:
        if self._port is not None or self._tmpdir is not None:
            unbind(self.target)

    def _remove_tmpdir(self) -> None:
        self._unbound()
        if self._tmpdir is not None:
            tmpdir, self._tmpdir = self._tmpdir, None
            try:  # grpc usually removed the socket already; rmdir is the cheap common case
                os.rmdir(tmpdir)
            except OSError:
                shutil.rmtree(tmpdir, ignore_errors=True)

    @property
    def target(self) -> str:
        """The address clients dial: ``127.0.0.1:PORT`` or ``unix:/path``."""
        if self._transport == "unix":
            if self._tmpdir is None:
                raise ServerStateError("the server has not been started")
            return self._bind_address()
        if self._port is None:
            raise ServerStateError("the server has not been started")
        host = f"[{self._host}]" if ":" in self._host else self._host
        return f"{host}:{self._port}"

    @property
    def transport(self) -> Transport:
        return self._transport

    @property
    def methods(self) -> tuple[str, ...]:
        """The hosted methods, ``"pkg.Service/Method"``."""
        return tuple(sorted(m.lstrip("/") for m in self._methods))

    def _method(self, method: str) -> str:
        if self._opaque and isinstance(method, str) and "/" in method.strip("/"):
            return method if method.startswith("/") else f"/{method}"
        return method_name(method, self._methods)

    def _channel_options(self, options: Mapping[str, object]) -> list[tuple[str, object]]:
        resolved = self._resolved()
        merged: dict[str, object] = dict(byte_limit_options(resolved))
        for key, value in options.items():
            merged[key if "." in key else f"grpc.{key}"] = value
        return list(merged.items())

    def _stop_grace(self, grace: Grace) -> float | None:
        """The grace ``stop()`` hands grpc: the cascade's by default, else checked here, since
        grpc takes any value and fails later on a thread of its own."""
        if grace is DEFAULT_GRACE:
            return self._grace()
        if grace is None:
            return None
        if (
            isinstance(grace, bool)
            or not isinstance(grace, (int, float))
            or not 0 <= grace <= threading.TIMEOUT_MAX
        ):
            raise ArgumentError(
                f"stop(grace={grace!r}) is not accepted: give seconds from 0 to "
                f"{threading.TIMEOUT_MAX:g} (the longest grpc waits), or None to stop at once"
            )
        return float(grace)

    def _grace(self) -> float | None:
        resolved = self._resolved()
        if "grace" not in resolved:
            return None
        value = resolved["grace"]
        return float(value) if isinstance(value, (int, float)) else None

    # behaviour -----------------------------------------------------------------------------
    def delay(
        self,
        method: str,
        seconds: float | Sequence[float] | Jitter,
        *,
        when: When = "before",
        honor_cancellation: bool = True,
        times: int | None = None,
        skip: int = 0,
    ) -> None:
        """Delay ``method``'s calls: before the servicer runs (a cancellation abandons the call)
        or after it (its side effects happen; the response waits). ``skip`` lets that many
        calls through first, then ``times`` calls are delayed (None: every one); each attempt
        of a retried call counts."""
        full = self._method(method)
        spec = Delay(seconds, when, honor_cancellation, choose(times, skip))
        with self._cond:
            self._delays[full] = spec

    def stream_interval(self, method: str, seconds: float) -> None:
        """Wait ``seconds`` before each response message of a streaming ``method`` (``inf``: until
        the call ends)."""
        full = self._method(method)
        value = check_wait(seconds, "stream_interval seconds")
        self._need_response_stream(full, "stream_interval()")
        with self._cond:
            self._intervals[full] = value

    def _need_response_stream(self, full: str, what: str) -> None:
        """Refuse an option that acts between response messages, for a method that sends one."""
        if self._streaming.get(full) is False:
            raise ArgumentError(
                f"{what} applies to a method that streams its responses; {full.lstrip('/')} sends "
                "one response"
            )

    def fail(
        self,
        method: str,
        code: grpc.StatusCode,
        details: str = "",
        *,
        times: int | None = None,
        after_messages: int = 0,
        skip: int = 0,
    ) -> None:
        """End ``method``'s calls with ``code`` instead of running the servicer (or, for a
        response stream, after ``after_messages`` messages). ``skip`` lets that many calls
        through first, then ``times`` calls fail (None: every one); each attempt of a retried
        call counts."""
        full = self._method(method)
        fault = make_fault(code, details, times, after_messages, skip)
        if fault.after_messages:
            self._need_response_stream(full, f"fail(after_messages={fault.after_messages})")
        with self._cond:
            self._faults[full] = fault

    @property
    def calls(self) -> list[ServerCall]:
        """The calls since the last reset, in arrival order."""
        with self._cond:
            return list(self._calls)

    def _take_fault(self, full: str) -> Fault | None:
        fault = self._faults.get(full)
        if fault is not None and fault.take():
            return fault
        return None

    # holds, wakes and resets -----------------------------------------------------------------
    def _new_gate(self, method: str, honor_cancellation: bool) -> GateBase:
        raise NotImplementedError

    def _notify(self) -> None:
        """Wake every waiting handler, to look at its state again."""
        raise NotImplementedError

    def _hold(
        self, method: str, honor_cancellation: bool, max_hold: float | None, times: int | None, skip: int
    ) -> GateBase:
        full = self._method(method)
        check_flag(honor_cancellation, "honor_cancellation")
        limit = None if max_hold is None else check_wait(max_hold, "max_hold")
        chosen = choose(times, skip)
        gate = self._new_gate(full, honor_cancellation)
        gate.max_hold = limit
        gate.chosen = chosen
        with self._cond:
            old = self._gates.get(full)
            if old is not None:
                old.released = True
            self._gates[full] = gate
        self._notify()
        return gate

    def _release_all(self) -> None:
        with self._cond:
            for gate in self._gates.values():
                gate.released = True
        self._notify()

    def reset(self) -> None:
        """Forget behaviour and records, and release every held or sleeping handler."""
        self._release_all()
        with self._cond:
            self._generation += 1
            self._delays.clear()
            self._intervals.clear()
            self._faults.clear()
            self._gates.clear()
            self._calls = []
            self._closing = False
        self._notify()

    # handling -------------------------------------------------------------------------------
    def _begin(
        self, method: str, context: Context, metadata: Iterable[tuple[str, str | bytes]] | None
    ) -> tuple[ServerCall, CallState]:
        """The record and state of a call that reached its handler."""
        call = ServerCall(
            method=method.lstrip("/"),
            metadata=tuple((key, value) for key, value in (metadata or ())),
            deadline=deadline_seconds(context),
        )
        with self._cond:
            state = CallState(self._generation, context)
            self._calls.append(call)
        _pair(call)
        return call, state

    @property
    def is_running(self) -> bool:
        raise NotImplementedError

    def _cancelled_by(self) -> CancelledBy | None:
        """Who ended an RPC under its handler now: the server when it is stopping, else the
        client or its deadline (None: :meth:`ServerCall.mark_cancelled` tells them apart)."""
        return None if self.is_running else "server"

    def _seen(self, call: ServerCall) -> None:
        """The handler saw the RPC end under it."""
        call.mark_cancelled(self._cancelled_by())
        call.notice()

    def _terminated(self, call: ServerCall, state: CallState) -> None:
        """The RPC ended: the client cancelled, its deadline passed, or the server stopped."""
        with self._cond:
            state.terminated = True
            if call.outcome == "running":
                call.mark_cancelled(self._cancelled_by())
                if state.gate is not None:
                    state.gate._cancelled.set()
        self._notify()

    @staticmethod
    def _end(wait: Wait) -> float | None:
        """When ``wait`` elapses; None when it lasts until woken (no time given, or more than
        the platform can wait: it means "until the call ends")."""
        if wait.seconds is None or wait.seconds > threading.TIMEOUT_MAX:
            return None
        return time.monotonic() + wait.seconds

    def _woken(self, state: CallState, wait: Wait, end: float | None) -> Wake | None:
        """Why a handler waiting on ``wait`` (until ``end``) wakes now, or None to keep waiting."""
        if wait.gate is not None and wait.gate.released:
            return "released"
        if wait.honor and state.terminated:
            return "terminated"
        if self._closing or state.generation != self._generation:
            return "closing"
        if end is not None and end - time.monotonic() <= 0:
            return "elapsed"
        return None

    def _before(self, full: str, call: ServerCall, state: CallState) -> Flow:
        """Hold and "before" delay; an abandoned call ends CANCELLED."""
        with self._cond:
            gate = self._gates.get(full)
            delay = self._delays.get(full)
        if gate is not None and gate.chosen.take():
            call.provoked = True
            with self._cond:
                state.gate = gate
                gate.entered += 1
                if state.terminated:
                    gate._cancelled.set()
            gate._entered.set()
            result = yield Wait(gate.max_hold, gate.honor_cancellation, gate)
            state.gate = None
            if result == "terminated":
                call.notice()
                call.finish("abandoned")
                yield Abort(grpc.StatusCode.CANCELLED, RESET_DETAILS)
            if result == "elapsed":  # the test never released the gate: say so, do not hang
                details = (
                    f"the gate on {gate.method} was never released: the call waited "
                    f"{gate.max_hold:g} s at it (hold(..., max_hold=)); release it with "
                    "gate.release(), or give the call a deadline"
                )
                call.finish("aborted", grpc.StatusCode.ABORTED, details)
                yield Abort(grpc.StatusCode.ABORTED, details)
        if delay is not None and delay.when == "before" and delay.chosen.take():
            call.provoked = call.provoked or not delay.honor_cancellation
            result = yield Wait(delay.next(), delay.honor_cancellation)
            if result in ("terminated", "closing"):
                if result == "terminated":
                    call.notice()
                call.finish("abandoned")
                yield Abort(grpc.StatusCode.CANCELLED, RESET_DETAILS)

    def _after(self, full: str, call: ServerCall) -> Flow:
        delay = self._delays.get(full)
        if delay is not None and delay.when == "after" and delay.chosen.take():
            call.provoked = True
            try:
                yield Wait(delay.next(), delay.honor_cancellation)
            except BaseException:  # the RPC was cancelled under the wait (asyncio)
                call.finish("ok", grpc.StatusCode.OK)  # the servicer ran; only its response waited
                raise

    def _fault(self, call: ServerCall, fault: Fault) -> Flow:
        call.finish("aborted", fault.code, fault.details)
        yield Abort(fault.code, fault.details)

    def _check_sendable(self, full: str, call: ServerCall, message: object) -> None:
        """A response larger than the server's send limit: grpc will not send it and the client
        gets RESOURCE_EXHAUSTED, so the record says that, not "ok"."""
        if self._send_limit < 0:
            return
        size = _size(message, self._encoders.get(full))
        if size is not None and size > self._send_limit:
            call.finish(
                "aborted",
                grpc.StatusCode.RESOURCE_EXHAUSTED,
                f"Sent message larger than max ({size} vs. {self._send_limit})",
            )

    def _unary_flow(self, full: str, call: ServerCall, state: CallState) -> Flow:
        """A unary response: hold, delay, fault, the servicer (RUN receives its response), the
        "after" delay, then the response is sent."""
        yield from self._before(full, call, state)
        fault = self._take_fault(full)
        if fault is not None:
            yield from self._fault(call, fault)
        response = yield RUN
        yield from self._after(full, call)
        self._check_sendable(full, call, response)
        yield Emit(response)

    def _stream_flow(self, full: str, call: ServerCall, state: CallState) -> Flow:
        """A response stream: as unary, with the interval before each message and a fault after
        ``after_messages`` messages."""
        yield from self._before(full, call, state)
        fault = self._take_fault(full)
        if fault is not None and fault.after_messages == 0:
            yield from self._fault(call, fault)
        interval = self._intervals.get(full)
        yield RUN
        count = 0
        while (message := (yield NEXT)) is not END:
            if fault is not None and count >= fault.after_messages:
                yield from self._fault(call, fault)
            if interval is not None and (woken := (yield Wait(interval, True))) != "elapsed":
                if woken == "terminated":
                    call.notice()
                call.finish("abandoned")
                yield Abort(grpc.StatusCode.CANCELLED, RESET_DETAILS)
            self._check_sendable(full, call, message)
            yield Emit(message)
            count += 1
        if fault is not None:
            yield from self._fault(call, fault)
        yield from self._after(full, call)

    def _plain(self, full: str) -> bool:
        """Whether nothing is configured for ``full`` now (no gate, delay or fault): its call is
        the servicer's alone, and the handler can skip the flow. A gate, delay or fault set at
        the same moment as a call arrives may miss it either way."""
        return full not in self._gates and full not in self._delays and full not in self._faults

    def _stale(self, arrived: int) -> bool:
        """Whether a call arrived before the last reset (in an earlier test): it ends CANCELLED
        without a record."""
        return arrived != self._generation

    def _unary_response(self, full: str, behaviour: Behaviour, arrived: int) -> Behaviour:
        """The handler for a unary response, running ``_unary_flow`` around ``behaviour``."""
        raise NotImplementedError

    def _stream_response(self, full: str, behaviour: Behaviour, arrived: int) -> Behaviour:
        """The handler for a response stream, running ``_stream_flow`` around ``behaviour``."""
        raise NotImplementedError

    def _wrap(
        self, method: str, handler: grpc.RpcMethodHandler[_Req, _Resp]
    ) -> grpc.RpcMethodHandler[_Req, _Resp]:
        """The recording, behaviour-injecting handler around ``handler`` (same shape)."""
        decode, encode = handler.request_deserializer, handler.response_serializer
        self._encoders[method] = encode
        # grpc asks for the handler when the call arrives: a call still queued behind busy
        # workers when the test ends must not reach the next test's gates and records.
        arrived = self._generation
        if handler.unary_unary is not None:
            return grpc.unary_unary_rpc_method_handler(
                self._unary_response(method, handler.unary_unary, arrived), decode, encode
            )
        if handler.stream_unary is not None:
            return grpc.stream_unary_rpc_method_handler(
                self._unary_response(method, handler.stream_unary, arrived), decode, encode
            )
        if handler.unary_stream is not None:
            return grpc.unary_stream_rpc_method_handler(
                self._stream_response(method, handler.unary_stream, arrived), decode, encode
            )
        assert handler.stream_stream is not None, handler  # grpc sets exactly one of the four
        return grpc.stream_stream_rpc_method_handler(
            self._stream_response(method, handler.stream_stream, arrived), decode, encode
        )
