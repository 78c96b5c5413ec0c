"""grpcio-testing's server on a fake clock: test servicer deadline logic without sleeping.

Needs the ``fake-time`` extra (grpcio-testing), imported on first use so that the plugin loads
without it. ``FakeServer`` hosts ``(service_descriptor, servicer)`` pairs on
``grpc_testing.server_from_dictionary`` with ``grpc_testing.strict_fake_time``: a call's deadline
passes only when the test moves the clock with ``advance(seconds)``.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any, NamedTuple, TypeVar

import grpc

from .._checks import check_seconds
from .._errors import (
    ArgumentError,
    ArgumentTypeError,
    MissingExtraError,
    ServerStateError,
    WaitTimeoutError,
)
from ._behaviour import MethodError, method_name

__all__ = ["DEFAULT_WAIT", "INSTALL_HINT", "FakeRpc", "FakeServer", "FakeServicerPair", "Metadatum"]

#: A ``(service_descriptor, servicer)`` pair, e.g. ``(PROBE_SERVICE, ProbeServicer())`` or
#: ``(foo_pb2.DESCRIPTOR.services_by_name["Foo"], FooServicer())``.
FakeServicerPair = tuple[Any, Any]

INSTALL_HINT = 'pip install "pytest-grpc-deadlines[fake-time]"'

#: Real seconds a blocking ``FakeRpc`` method waits before raising ``TimeoutError``; a call on a
#: fake clock ends only when the test advances the clock, so an unbounded wait would hang the test.
DEFAULT_WAIT = 10.0

_T = TypeVar("_T")

# (client_streaming, server_streaming) -> (shape, the FakeServer method that invokes it)
_SHAPES: dict[tuple[bool, bool], tuple[str, str]] = {
    (False, False): ("unary-unary", "invoke_unary"),
    (False, True): ("unary-stream", "invoke_server_stream"),
    (True, False): ("stream-unary", "invoke_client_stream"),
    (True, True): ("stream-stream", "invoke_bidi"),
}


class Metadatum(NamedTuple):
    """One invocation metadata entry as the servicer sees it (like grpc's own ``_Metadatum``)."""

    key: str
    value: str | bytes


def _grpc_testing(user: str) -> Any:
    try:
        import grpc_testing
    except ImportError as exc:
        if exc.name in ("grpc_testing", None):
            raise MissingExtraError(
                f"{user} needs grpcio-testing, which could not be imported ({exc}); "
                f"install the fake-time extra: {INSTALL_HINT}"
            ) from exc
        raise MissingExtraError(
            f"{user} needs grpcio-testing, which is installed ({_installed('grpcio-testing')}) "
            f"but failed to import: {type(exc).__name__}: {exc}; install what it needs "
            f"(pip install {exc.name.partition('.')[0]}), or reinstall the fake-time extra: "
            f"{INSTALL_HINT}"
        ) from exc
    return grpc_testing


def _installed(distribution: str) -> str:
    from importlib import metadata

    try:
        return f"version {metadata.version(distribution)}"
    except metadata.PackageNotFoundError:
        return "version unknown"


def _shape(descriptor: Any) -> tuple[bool, bool]:
    """A method descriptor's (client_streaming, server_streaming).

    protobuf 4.21 to 4.24 (upb) have no such attributes on the descriptor; its proto has them.
    """
    try:
        return bool(descriptor.client_streaming), bool(descriptor.server_streaming)
    except AttributeError:
        from google.protobuf import descriptor_pb2

        proto = descriptor_pb2.MethodDescriptorProto()
        descriptor.CopyToProto(proto)
        return proto.client_streaming, proto.server_streaming


def _metadata(metadata: Iterable[tuple[str, str | bytes]]) -> tuple[Metadatum, ...]:
    entries = []
    for entry in metadata:
        if not isinstance(entry, tuple) or len(entry) != 2:
            raise ArgumentError(f"metadata entries are (key, value) pairs, not {entry!r}")
        key, value = entry
        if not isinstance(key, str) or not isinstance(value, (str, bytes)):
            raise ArgumentError(f"metadata entry {entry!r} needs a str key and a str or bytes value")
        entries.append(Metadatum(key, value))
    return tuple(entries)


def _bounded(call: Callable[[], _T], wait: float | None, what: str) -> _T:
    """``call()``, but raise ``TimeoutError`` after ``wait`` real seconds (None: no bound)."""
    if wait is None:
        return call()
    wait = check_seconds(wait, "wait", negative=False)
    outcome: list[tuple[bool, Any]] = []

    def run() -> None:
        try:
            outcome.append((True, call()))
        except BaseException as exc:  # handed to the waiting thread
            outcome.append((False, exc))

    # grpc_testing's own waits have no timeout; a daemon thread bounds them. One left waiting
    # ends when the call does (FakeServer.close() cancels every call).
    worker = threading.Thread(target=run, name="grpc-deadlines-fake-wait", daemon=True)
    worker.start()
    worker.join(wait)
    if not outcome:
        raise WaitTimeoutError(what)
    ok, value = outcome[0]
    if ok:
        result: _T = value
        return result
    raise value


class FakeRpc:
    """One call on a ``FakeServer``, played from the client's side.

    Blocking methods wait at most ``wait`` real seconds (``None``: forever) and then raise
    ``TimeoutError``. ``send_request``/``requests_closed`` exist for client-streaming calls and
    ``take_response`` for server-streaming calls; on other calls they raise ``TypeError``.
    ``raw`` is grpcio-testing's own rpc object.
    """

    def __init__(self, method: str, client_streaming: bool, server_streaming: bool, runs: bool) -> None:
        #: ``"pkg.Service/Method"``
        self.method = method
        self.client_streaming = client_streaming
        self.server_streaming = server_streaming
        self.raw: Any = None
        self._runs = runs  # False when the call expired before its handler could start
        self._entered = threading.Event()
        self._thread: threading.Thread | None = None
        self._cancelled: str | None = None  # details for a call cancelled by the test or close()

    def __repr__(self) -> str:
        return f"FakeRpc({self.method})"

    def _enter(self, thread: threading.Thread) -> None:
        self._thread = thread
        self._entered.set()

    def _ended(self, wait: float | None, what: str) -> str:
        return (
            f"{what} waited {wait} s (real time) and the call to {self.method} has not ended: "
            "advance the fake clock past its deadline, close its requests, or cancel it"
        )

    def _need(self, client_streaming: bool | None, server_streaming: bool | None, name: str) -> None:
        if (client_streaming is not None and client_streaming != self.client_streaming) or (
            server_streaming is not None and server_streaming != self.server_streaming
        ):
            shape = _SHAPES[(self.client_streaming, self.server_streaming)][0]
            raise ArgumentTypeError(f"{name}() does not apply to {self.method}, a {shape} call")

    # --- requests -------------------------------------------------------------------------------
    def send_request(self, request: Any) -> None:
        """Send one request message (client-streaming calls)."""
        self._need(True, None, "send_request")
        self.raw.send_request(request)

    def requests_closed(self) -> None:
        """End the request stream (client-streaming calls)."""
        self._need(True, None, "requests_closed")
        self.raw.requests_closed()

    # --- responses ------------------------------------------------------------------------------
    def initial_metadata(self, *, wait: float | None = DEFAULT_WAIT) -> tuple[tuple[str, Any], ...]:
        """The server's initial metadata once sent (grpcio-testing appends one entry of its own);
        ``()`` for a call that ended without any, as a real client sees it."""

        def read() -> tuple[tuple[str, Any], ...]:
            try:
                return tuple(self.raw.initial_metadata())
            except ValueError:  # grpcio-testing: "No initial metadata despite status code!"
                return ()

        return _bounded(read, wait, self._ended(wait, "initial_metadata()"))

    def take_response(self, *, wait: float | None = DEFAULT_WAIT) -> Any:
        """The next streamed response (server-streaming calls); ``ValueError`` when the call has
        ended and none is left."""
        self._need(None, True, "take_response")
        return _bounded(self.raw.take_response, wait, self._ended(wait, "take_response()"))

    def _raw_termination(self, wait: float | None) -> tuple[Any, Any, grpc.StatusCode, str]:
        def read() -> tuple[Any, Any, grpc.StatusCode, str]:
            try:
                if self.server_streaming:
                    trailing, code, details = self.raw.termination()
                    return None, trailing, code, details
                response, trailing, code, details = self.raw.termination()
                return response, trailing, code, details
            except ValueError:  # grpcio-testing: "Huh? Cancelled but wanting status?"
                if self._cancelled is None:
                    raise
                return None, (), grpc.StatusCode.CANCELLED, self._cancelled

        return _bounded(read, wait, self._ended(wait, "termination()"))

    def termination(self, *, wait: float | None = DEFAULT_WAIT) -> tuple[Any, grpc.StatusCode, str]:
        """``(response, code, details)`` once the call has ended.

        ``response`` is the unary response of an OK call, and None otherwise: None on every
        response stream (take them with ``take_response``), and None for a call that did not
        end OK even when its handler returned a response after the deadline (a real client never
        sees that response; grpcio-testing may, see ``docs/fake-time.md``). A call the test
        cancelled ends ``CANCELLED``.
        """
        response, _, code, details = self._raw_termination(wait)
        if code is not grpc.StatusCode.OK:
            response = None
        return response, code, details

    def trailing_metadata(self, *, wait: float | None = DEFAULT_WAIT) -> tuple[tuple[str, Any], ...]:
        """The trailing metadata once the call has ended (grpcio-testing appends one entry)."""
        return tuple(self._raw_termination(wait)[1])

    def cancel(self) -> None:
        """Cancel the call, as a client would: the handler's ``is_active()`` turns False and its
        ``add_callback`` callbacks run; ``termination()`` gives ``CANCELLED``. No effect on a call
        that has already ended."""
        self._cancel("Locally cancelled by application!")

    def _cancel(self, details: str) -> None:
        if self._cancelled is None:
            self._cancelled = details
        # grpcio-testing 1.44 raises UnboundLocalError cancelling a call that has already ended
        # (later releases do nothing); the call's state is untouched either way.
        with contextlib.suppress(UnboundLocalError):
            self.raw.cancel()

    def wait_handler(self, *, wait: float | None = DEFAULT_WAIT) -> bool:
        """Wait until the servicer's handler has returned (for a response stream: finished its
        iteration). True when it has, or never ran (a deadline of 0 or less); False when it is
        still running after ``wait`` real seconds. The call may end (deadline, cancel) well
        before its handler does."""
        if not self._runs:
            return True
        start = time.monotonic()
        if not self._entered.wait(wait):
            return False
        thread = self._thread
        assert thread is not None
        thread.join(None if wait is None else max(0.0, wait - (time.monotonic() - start)))
        return not thread.is_alive()


class _TrackedServicer:
    """Hands grpcio-testing the servicer's methods, each wrapped to note its handler thread."""

    def __init__(self, servicer: Any, methods: Iterable[str], server: FakeServer) -> None:
        self._servicer = servicer
        self._methods = frozenset(methods)
        self._server = server

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._servicer, name)
        if name not in self._methods:
            return attribute
        # grpcio-testing looks the method up in the invoking thread, before it starts the
        # handler thread: the call being invoked is the one to note.
        rpc = self._server._binding if self._server._binding_thread == threading.get_ident() else None

        def handler(request: Any, context: Any) -> Any:
            if rpc is not None:
                rpc._enter(threading.current_thread())
            return attribute(request, context)

        return handler


def _check_pair(pair: object) -> tuple[Any, Any]:
    usage = "servicers are (service_descriptor, servicer) pairs such as (PROBE_SERVICE, ProbeServicer())"
    if not isinstance(pair, (tuple, list)) or len(pair) != 2:
        raise ArgumentTypeError(f"{usage}; got {pair!r}")
    descriptor, servicer = pair
    if not hasattr(descriptor, "full_name") or not hasattr(descriptor, "methods"):
        hint = ""
        if callable(descriptor):
            hint = (
                " (the fake server takes the service descriptor, e.g. "
                "foo_pb2.DESCRIPTOR.services_by_name['Foo'], not add_FooServicer_to_server)"
            )
        raise ArgumentTypeError(f"{usage}; {descriptor!r} is not a service descriptor{hint}")
    return descriptor, servicer


class FakeServer:
    """grpcio-testing's server on ``strict_fake_time(start)``, hosting ``(descriptor, servicer)``
    pairs. ``advance(seconds)`` moves the clock; ``close()`` (or ``with``) cancels calls still
    running and waits for their handlers."""

    def __init__(self, *servicers: FakeServicerPair, start: float = 0.0) -> None:
        testing = _grpc_testing("FakeServer")
        if not servicers:
            raise ArgumentError(
                "FakeServer needs at least one (service_descriptor, servicer) pair, "
                "e.g. FakeServer((PROBE_SERVICE, ProbeServicer()))"
            )
        self._binding: FakeRpc | None = None
        self._binding_thread: int | None = None
        self._lock = threading.Lock()
        self._rpcs: list[FakeRpc] = []
        self._closed = False
        self._methods: dict[str, Any] = {}
        hosted: dict[Any, _TrackedServicer] = {}
        for pair in servicers:
            descriptor, servicer = _check_pair(pair)
            names = [method.name for method in descriptor.methods]
            if any(f"/{descriptor.full_name}/{name}" in self._methods for name in names):
                raise ArgumentError(f"service {descriptor.full_name} is given twice")
            missing = [name for name in names if not callable(getattr(servicer, name, None))]
            if missing:
                raise ArgumentError(
                    f"{type(servicer).__name__} does not implement {', '.join(missing)} "
                    f"of service {descriptor.full_name}"
                )
            hosted[descriptor] = _TrackedServicer(servicer, names, self)
            for method in descriptor.methods:
                self._methods[f"/{descriptor.full_name}/{method.name}"] = method
        self._time: Any = testing.strict_fake_time(check_seconds(start, "start", negative=True))
        self._server: Any = testing.server_from_dictionary(hosted, self._time)

    # --- the clock ------------------------------------------------------------------------------
    @property
    def time(self) -> Any:
        """The ``grpc_testing.Time`` the server runs on (``time()``, ``call_in``, ``call_at``)."""
        return self._time

    def now(self) -> float:
        """The fake clock's current time (``start`` plus every ``advance``)."""
        now: float = self._time.time()
        return now

    def advance(self, seconds: float) -> float:
        """Move the fake clock forward ``seconds`` and return the new time. Deadlines that pass
        expire before this returns (``termination()`` then reports them at once); handlers
        learn of it from their ``add_callback`` callbacks, run right after on their own thread.
        Zero real sleeping."""
        self._time.sleep_for(check_seconds(seconds, "seconds", negative=False))
        return self.now()

    # --- calls ----------------------------------------------------------------------------------
    def invoke_unary(
        self,
        method: str,
        request: Any,
        *,
        timeout: float | None = None,
        metadata: Iterable[tuple[str, str | bytes]] = (),
    ) -> FakeRpc:
        """Start a unary-unary call. ``timeout`` is in fake seconds (None: no deadline)."""
        return self._invoke(method, (False, False), request, timeout, metadata)

    def invoke_server_stream(
        self,
        method: str,
        request: Any,
        *,
        timeout: float | None = None,
        metadata: Iterable[tuple[str, str | bytes]] = (),
    ) -> FakeRpc:
        """Start a unary-stream call; take its responses with ``take_response()``."""
        return self._invoke(method, (False, True), request, timeout, metadata)

    def invoke_client_stream(
        self,
        method: str,
        *,
        timeout: float | None = None,
        metadata: Iterable[tuple[str, str | bytes]] = (),
    ) -> FakeRpc:
        """Start a stream-unary call; ``send_request()`` each message, then ``requests_closed()``."""
        return self._invoke(method, (True, False), None, timeout, metadata)

    def invoke_bidi(
        self,
        method: str,
        *,
        timeout: float | None = None,
        metadata: Iterable[tuple[str, str | bytes]] = (),
    ) -> FakeRpc:
        """Start a stream-stream call."""
        return self._invoke(method, (True, True), None, timeout, metadata)

    def _invoke(
        self,
        method: str,
        shape: tuple[bool, bool],
        request: Any,
        timeout: float | None,
        metadata: Iterable[tuple[str, str | bytes]],
    ) -> FakeRpc:
        full = method_name(method, self._methods)
        descriptor = self._methods[full]
        actual = _shape(descriptor)
        if actual != shape:
            kind, invoke = _SHAPES[actual]
            raise MethodError(f"{method!r} is a {kind} method: start it with FakeServer.{invoke}()")
        deadline = None if timeout is None else check_seconds(timeout, "timeout", negative=True)
        invocation = _metadata(metadata)
        rpc = FakeRpc(full.lstrip("/"), shape[0], shape[1], runs=deadline is None or deadline > 0)
        with self._lock:
            if self._closed:
                raise ServerStateError("this FakeServer is closed")
            self._binding, self._binding_thread = rpc, threading.get_ident()
            try:
                if shape == (False, False):
                    raw = self._server.invoke_unary_unary(descriptor, invocation, request, deadline)
                elif shape == (False, True):
                    raw = self._server.invoke_unary_stream(descriptor, invocation, request, deadline)
                elif shape == (True, False):
                    raw = self._server.invoke_stream_unary(descriptor, invocation, deadline)
                else:
                    raw = self._server.invoke_stream_stream(descriptor, invocation, deadline)
            finally:
                self._binding, self._binding_thread = None, None
            rpc.raw = raw
            self._rpcs.append(rpc)
        return rpc

    # --- lifecycle ------------------------------------------------------------------------------
    def close(self, *, wait: float = 5.0) -> None:
        """Cancel every call still running and wait up to ``wait`` real seconds for their
        handlers to return; ``RuntimeError`` names those that did not (a handler that checks
        neither ``is_active()`` nor ``add_callback`` keeps its thread). Idempotent."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            rpcs = list(self._rpcs)
        for rpc in rpcs:
            rpc._cancel("Cancelled: the FakeServer was closed")
        end = time.monotonic() + check_seconds(wait, "wait", negative=False)
        stuck = [rpc.method for rpc in rpcs if not rpc.wait_handler(wait=max(0.0, end - time.monotonic()))]
        if stuck:
            raise ServerStateError(
                f"FakeServer.close(): {len(stuck)} handler(s) still running {wait} s after their "
                f"calls were cancelled ({', '.join(stuck)}); a handler that checks neither "
                "context.is_active() nor context.add_callback keeps its thread"
            )

    def __enter__(self) -> FakeServer:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
