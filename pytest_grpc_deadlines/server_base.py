"""What the sync and asyncio test servers share: configuration, behaviour tables and records."""

from __future__ import annotations

import ipaddress
import os
import shutil
import sys
import tempfile
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Literal

import grpc

from .behaviour import Delay, Fault, Jitter, When, make_fault, method_name
from .cascade import DAGSTER, Cascade, Resolved
from .client import CALL_ID_HEADER, RECORDER
from .invariants import INT32_MAX
from .records import ServerCall

__all__ = [
    "DEFAULT_GRACE",
    "RESET_DETAILS",
    "ServerBase",
    "ServicerPair",
    "Transport",
    "_pair",
    "note_probe_delay",
]

Transport = Literal["tcp", "unix"]
ServicerPair = tuple[Callable[[Any, Any], Any], Any]
OptionsArg = Mapping[str, Any] | Sequence[tuple[str, Any]] | None

#: ``stop()`` without an argument uses the cascade's grace setting.
DEFAULT_GRACE: Any = object()

#: The details of a call abandoned before its servicer ran (``reset()`` or ``close()`` during its
#: delay, or its client gone): it ends CANCELLED, not OK with a response the servicer never made.
RESET_DETAILS = "the test server was reset"

_LOOPBACK_NAMES = ("localhost",)
#: sockaddr_un holds 108 bytes on Linux and 104 on macOS, terminating NUL included.
_SUN_PATH_MAX = 103


def _check_host(host: str) -> str:
    """The address to bind for ``host``, refusing anything but loopback."""
    if not isinstance(host, str):
        raise ValueError(f"host={host!r} must be a str such as '127.0.0.1'")
    if host in _LOOPBACK_NAMES:
        return "127.0.0.1"
    try:
        loopback = ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    if not loopback:
        raise ValueError(
            f"host={host!r} is refused: test servers bind loopback only "
            "(127.0.0.1 or another 127.x address, ::1, localhost)"
        )
    return host


def _options_list(options: OptionsArg, what: str) -> list[tuple[str, Any]]:
    if options is None:
        return []
    if isinstance(options, Mapping):
        return list(options.items())
    try:
        pairs = [(str(k), v) for k, v in options]
    except (TypeError, ValueError):
        raise ValueError(
            f"{what}={options!r} must be a mapping or a sequence of (name, value) pairs"
        ) from None
    return pairs


def byte_limit_options(resolved: Resolved) -> list[tuple[str, int]]:
    """grpc options for the cascade's ``max_rx_bytes`` / ``max_send_bytes`` settings, if any."""
    out: list[tuple[str, int]] = []
    for name, option in (
        ("max_rx_bytes", "grpc.max_receive_message_length"),
        ("max_send_bytes", "grpc.max_send_message_length"),
    ):
        if name not in resolved:
            continue
        value = resolved[name]  # raises CascadeError, naming the variable, for a bad value
        if not isinstance(value, int) or not -INT32_MAX - 1 <= value <= INT32_MAX:
            setting = resolved.cascade[name]
            raise ValueError(
                f"{name}={value!r} ({resolved.source(name)}) cannot be given to grpc: "
                f"{setting.env_var} must fit in 32 bits (-2147483648 to {INT32_MAX}), "
                "or grpc raises OverflowError"
            )
        out.append((option, value))
    return out


def _pair(call: ServerCall) -> None:
    """Note the pairing header, so the client's record of this call can find this one."""
    for key, value in call.metadata:
        if key == CALL_ID_HEADER:
            call.client_call_id = value.decode() if isinstance(value, bytes) else value
            RECORDER.add_server_call(call.client_call_id, call)
            return


def note_probe_delay(call: ServerCall) -> None:
    """A probe request that asks the server to wait (``delay_seconds``, ``interval_seconds``)
    makes the call outlive its client on purpose: it is provoked, as a gate or delay is."""
    from .probe import PROBE_SERVICE_NAME  # protobuf is loaded once a server hosts the probe

    if call.method.startswith(PROBE_SERVICE_NAME + "/"):
        request = call.request
        if getattr(request, "delay_seconds", 0) > 0 or getattr(request, "interval_seconds", 0) > 0:
            call.provoked = True


class _Capture:
    """Stands in for the server while ``add_XServicer_to_server`` runs, to learn the methods."""

    def __init__(self, server: Any) -> None:
        self._grpc_deadlines_target = server
        self.methods: set[str] = set()
        self.opaque = False

    def add_generic_rpc_handlers(self, handlers: Iterable[Any]) -> None:
        handlers = tuple(handlers)
        for handler in handlers:
            table = getattr(handler, "_method_handlers", None)
            if isinstance(table, Mapping):
                self.methods.update(str(name) for name in table)
            else:
                self.opaque = True
        self._grpc_deadlines_target.add_generic_rpc_handlers(handlers)

    def add_registered_method_handlers(self, service: str, handlers: Mapping[str, Any]) -> None:
        self.methods.update(f"/{service}/{name}" for name in handlers)
        self._grpc_deadlines_target.add_registered_method_handlers(service, handlers)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._grpc_deadlines_target, name)


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
        if not servicers:
            from .probe import ProbeServicer, add_ProbeServicer_to_server

            servicers = ((add_ProbeServicer_to_server, ProbeServicer()),)
        for pair in servicers:
            if not (isinstance(pair, tuple) and len(pair) == 2 and callable(pair[0])):
                raise ValueError(
                    f"servicer {pair!r} is not accepted; pass (add_FooServicer_to_server, "
                    "FooServicer()) pairs"
                )
        if transport not in ("tcp", "unix"):
            raise ValueError(f"transport={transport!r} is not accepted; use 'tcp' or 'unix'")
        if transport == "unix" and sys.platform == "win32":
            raise ValueError("transport='unix' needs a POSIX system (Linux or macOS)")
        self._servicers = servicers
        self._transport: Transport = transport
        self._host = _check_host(host)
        self._user_options = _options_list(options, "options")
        self._cascade = cascade
        self._methods: set[str] = set()
        self._opaque = False
        self._port: int | None = None
        self._tmpdir: str | None = None
        self._cond = threading.Condition()
        self._generation = 0
        self._delays: dict[str, Delay] = {}
        self._intervals: dict[str, float] = {}
        self._faults: dict[str, Fault] = {}
        self._calls: list[ServerCall] = []
        self._gates: dict[str, Any] = {}

    # configuration -------------------------------------------------------------------------
    def _server_options(self) -> list[tuple[str, Any]]:
        resolved = self._cascade.resolve(os.environ)
        # grpc takes the first of repeated options: merge, so the caller's options win
        options: dict[str, Any] = {"grpc.so_reuseport": 0, **dict(byte_limit_options(resolved))}
        options.update(self._user_options)
        return list(options.items())

    def limits_key(self) -> tuple[tuple[str, Any], ...]:
        """The options grpc fixes at creation, for deciding whether a server can be reused."""
        return tuple(self._server_options())

    def _bind_address(self) -> str:
        if self._transport == "unix":
            if self._tmpdir is None:  # mkdtemp makes it 0700: private to this user
                self._tmpdir = tempfile.mkdtemp(prefix="grpc-deadlines-")
                if len(os.path.join(self._tmpdir, "server.sock").encode()) > _SUN_PATH_MAX:
                    # A long TMPDIR: a socket path must fit sockaddr_un, so use /tmp instead.
                    os.rmdir(self._tmpdir)
                    self._tmpdir = tempfile.mkdtemp(prefix="grpc-deadlines-", dir="/tmp")
            return f"unix:{os.path.join(self._tmpdir, 'server.sock')}"
        port = self._port or 0
        host = f"[{self._host}]" if ":" in self._host else self._host
        return f"{host}:{port}"

    def _register(self, server: Any) -> None:
        for add, servicer in self._servicers:
            capture = _Capture(server)
            add(servicer, capture)
            self._methods |= capture.methods
            self._opaque = self._opaque or capture.opaque

    def _bound(self, port: int) -> None:
        if self._transport == "tcp":
            if not port:
                raise RuntimeError(f"grpc could not bind {self._bind_address()}")
            self._port = port
        RECORDER.server_targets.add(self.target)

    def _unbound(self) -> None:
        if self._port is not None or self._tmpdir is not None:
            RECORDER.server_targets.discard(self.target)

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
                raise RuntimeError("the server has not been started")
            return self._bind_address()
        if self._port is None:
            raise RuntimeError("the server has not been started")
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

    def _channel_options(self, options: Mapping[str, Any]) -> list[tuple[str, Any]]:
        resolved = self._cascade.resolve(os.environ)
        merged: dict[str, Any] = dict(byte_limit_options(resolved))
        for key, value in options.items():
            merged[key if "." in key else f"grpc.{key}"] = value
        return list(merged.items())

    def _stop_grace(self, grace: Any) -> float | None:
        """The grace ``stop()`` hands grpc: the cascade's by default, else checked here, since
        grpc takes any value and fails later on a thread of its own."""
        if grace is DEFAULT_GRACE:
            return self._grace()
        if grace is None:
            return None
        if isinstance(grace, bool) or not isinstance(grace, (int, float)) or not grace >= 0:
            raise ValueError(
                f"stop(grace={grace!r}) is not accepted: give seconds >= 0, or None to stop at once"
            )
        return float(grace)

    def _grace(self) -> float | None:
        resolved = self._cascade.resolve(os.environ)
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
    ) -> None:
        """Delay ``method``'s calls: before the servicer runs (a cancellation abandons the call)
        or after it (its side effects happen; the response waits)."""
        full = self._method(method)
        spec = Delay(seconds, when, honor_cancellation)
        with self._cond:
            self._delays[full] = spec

    def stream_interval(self, method: str, seconds: float) -> None:
        """Wait ``seconds`` before each response message of a streaming ``method``."""
        full = self._method(method)
        if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or seconds < 0:
            raise ValueError(f"stream_interval seconds={seconds!r} must be a number >= 0")
        with self._cond:
            self._intervals[full] = float(seconds)

    def fail(
        self,
        method: str,
        code: grpc.StatusCode,
        details: str = "",
        *,
        times: int | None = None,
        after_messages: int = 0,
    ) -> None:
        """End ``method``'s calls with ``code`` instead of running the servicer (or, for a
        response stream, after ``after_messages`` messages); ``times`` limits how many calls."""
        full = self._method(method)
        fault = make_fault(code, details, times, after_messages)
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

    def _release_all(self) -> None:
        raise NotImplementedError

    # handling -------------------------------------------------------------------------------
    def _unary_response(self, full: str, behaviour: Callable[..., Any]) -> Callable[..., Any]:
        raise NotImplementedError

    def _stream_response(self, full: str, behaviour: Callable[..., Any]) -> Callable[..., Any]:
        raise NotImplementedError

    def _response_serializer(self, handler: Any) -> Any:
        return handler.response_serializer

    def _wrap(self, method: str, handler: Any) -> Any:
        """The recording, behaviour-injecting handler around ``handler`` (same shape)."""
        kwargs = {
            "request_deserializer": handler.request_deserializer,
            "response_serializer": self._response_serializer(handler),
        }
        if handler.unary_unary is not None:
            return grpc.unary_unary_rpc_method_handler(
                self._unary_response(method, handler.unary_unary), **kwargs
            )
        if handler.stream_unary is not None:
            return grpc.stream_unary_rpc_method_handler(
                self._unary_response(method, handler.stream_unary), **kwargs
            )
        if handler.unary_stream is not None:
            return grpc.unary_stream_rpc_method_handler(
                self._stream_response(method, handler.unary_stream), **kwargs
            )
        return grpc.stream_stream_rpc_method_handler(
            self._stream_response(method, handler.stream_stream), **kwargs
        )

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
            self._cond.notify_all()
