"""Client-side call records: every RPC made through a channel created after the plugin loaded.

``install()`` wraps ``grpc.insecure_channel``, ``grpc.secure_channel``, ``grpc.intercept_channel``
and their ``grpc.aio`` twins so each new channel records its calls: method, target, the timeout as
sent (after the caller's own interceptors), final status, elapsed time and the caller's file:line.
Recording never changes what a call does. Calls to the plugin's own servers carry one extra
request header, :data:`CALL_ID_HEADER`, which pairs them with the server's records.
"""

from __future__ import annotations

import contextvars
import functools
import itertools
import os
import sys
import threading
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import grpc

__all__ = ["CALL_ID_HEADER", "RECORDER", "ClientCall", "Recorder", "install", "uninstall"]

#: The request header that pairs a client call with the test server's record of it.
CALL_ID_HEADER = "x-grpc-deadlines-call"

_GRPC_DIR = os.path.join(os.path.dirname(grpc.__file__), "")
_PACKAGE_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "")
#: grpc's interceptor machinery: a frame it calls is a user interceptor, not the call's origin.
_INTERCEPTOR_FILES = frozenset(
    {os.path.join(_GRPC_DIR, "_interceptor.py"), os.path.join(_GRPC_DIR, "aio", "_interceptor.py")}
)
_ids = itertools.count(1)
_CURRENT: contextvars.ContextVar[ClientCall | None] = contextvars.ContextVar(
    "grpc_deadlines_call", default=None
)


@dataclass(eq=False)
class ClientCall:
    """One RPC as the client made it. ``timeout`` None means no deadline; ``code`` None while
    the call runs; ``site`` is the caller's ``file:line``; ``test`` the node id it started in."""

    method: str
    target: str
    timeout: float | None
    site: str
    test: str | None
    aio: bool = False
    call_id: str | None = None
    internal: bool = False
    started: float = field(default_factory=time.monotonic)
    code: grpc.StatusCode | None = None
    details: str | None = None
    elapsed: float | None = None
    _settle: Callable[[], None] | None = field(default=None, repr=False)

    def finish(self, code: grpc.StatusCode | None, details: str | None) -> None:
        if self.elapsed is None:
            self.elapsed = time.monotonic() - self.started
            self.code = code
            self.details = details
        self._settle = None

    def settle(self) -> None:
        """Finish now if the call has ended but grpc has not yet run its done callback (grpc
        wakes the caller before it runs callbacks, so a just-consumed stream can look running)."""
        settle = self._settle
        if self.elapsed is None and settle is not None:
            settle()

    @property
    def done(self) -> bool:
        return self.elapsed is not None

    def __repr__(self) -> str:
        # no code: still running, or ended without a status (grpc refused it: a closed channel)
        code = self.code.name if self.code is not None else "running" if not self.done else "no status"
        timeout = "none" if self.timeout is None else f"{self.timeout:g}s"
        return f"ClientCall({self.method} -> {self.target}, timeout={timeout}, {code}, at {self.site})"


@dataclass
class _Frame:
    """What one pytest session (a pytester run nests another) is recording."""

    test: str | None = None
    calls: list[ClientCall] = field(default_factory=list)
    server_calls: dict[str, Any] = field(default_factory=dict)


class Recorder:
    """Where calls go: the test running now in the innermost pytest session."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._frames: list[_Frame] = [_Frame()]
        self.server_targets: set[str] = set()

    def push(self) -> None:
        with self._lock:
            self._frames.append(_Frame())

    def pop(self) -> None:
        with self._lock:
            if len(self._frames) > 1:
                self._frames.pop()

    @property
    def test(self) -> str | None:
        return self._frames[-1].test

    def start_test(self, nodeid: str | None) -> None:
        with self._lock:
            frame = self._frames[-1]
            frame.test = nodeid
            frame.calls = []
            frame.server_calls = {}

    def add(self, call: ClientCall) -> None:
        with self._lock:
            self._frames[-1].calls.append(call)

    def add_server_call(self, call_id: str, server_call: Any) -> None:
        with self._lock:
            self._frames[-1].server_calls[call_id] = server_call

    def server_call(self, call_id: str | None) -> Any:
        if call_id is None:
            return None
        with self._lock:
            for frame in reversed(self._frames):
                if call_id in frame.server_calls:
                    return frame.server_calls[call_id]
        return None

    def calls_of(self, nodeid: str | None) -> list[ClientCall]:
        with self._lock:
            return [c for c in self._frames[-1].calls if c.test == nodeid]

    def all_calls(self) -> list[ClientCall]:
        with self._lock:
            return list(self._frames[-1].calls)


RECORDER = Recorder()


def _site() -> tuple[str, bool]:
    """The frame that called into grpc: the first one outside grpc and this package, skipping
    user interceptors (frames grpc's interceptor machinery called); internal when there is none."""
    frame: Any = sys._getframe(1)
    while frame is not None:
        filename = frame.f_code.co_filename
        back = frame.f_back
        if (
            not filename.startswith((_GRPC_DIR, _PACKAGE_DIR))
            and not filename.startswith("<frozen importlib")
            and (back is None or back.f_code.co_filename not in _INTERCEPTOR_FILES)
        ):
            return f"{_relative(filename)}:{frame.f_lineno}", False
        frame = back
    return "<pytest-grpc-deadlines>", True


def _relative(path: str) -> str:
    """``path`` relative to the working directory when inside it, else as it is."""
    try:
        cwd = os.getcwd()
    except OSError:  # the working directory was removed
        return path
    return _relative_to(path, cwd)


@functools.lru_cache(maxsize=1024)
def _relative_to(path: str, cwd: str) -> str:
    # Memoised: os.path.relpath takes ~7 us, over half of what recording a call costs.
    try:
        relative = os.path.relpath(path, cwd)
    except ValueError:
        return path
    return path if relative.startswith("..") else relative


def _method(method: Any) -> str:
    text = method.decode() if isinstance(method, bytes) else str(method)
    return text.lstrip("/")


def _begin(target: str, method: str, timeout: Any, metadata: Any, aio: bool) -> tuple[ClientCall, Any]:
    site, internal = _site()
    call = ClientCall(
        method=method,
        target=target,
        timeout=None if timeout is None else float(timeout),
        site=site,
        test=RECORDER.test,
        aio=aio,
        internal=internal,
    )
    if target in RECORDER.server_targets:
        call.call_id = f"{os.getpid()}-{next(_ids)}"
        metadata = (*tuple(metadata or ()), (CALL_ID_HEADER, call.call_id))
    RECORDER.add(call)
    return call, metadata


_ARGUMENTS = ("timeout", "metadata", "credentials", "wait_for_ready", "compression")


def _split(args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, Any]:
    """The call's keyword arguments, positional ones named."""
    named = dict(kwargs)
    for name, value in zip(_ARGUMENTS, args, strict=False):
        named[name] = value
    return named


def _finish_from(record: ClientCall) -> Callable[[Any], None]:
    def done(call: Any) -> None:
        try:
            record.finish(call.code(), call.details())
        except Exception:  # a future cancelled before it started has no status
            record.finish(grpc.StatusCode.CANCELLED, None)

    return done


def _watch(record: ClientCall, call: Any, finish: Callable[[Any], None]) -> None:
    """Finish ``record`` when ``call`` ends; :meth:`ClientCall.settle` may finish it first. The
    record keeps only a weak reference to the call."""
    try:
        ref: Callable[[], Any] = weakref.ref(call)
    except TypeError:
        ref = lambda: None  # noqa: E731

    def settle() -> None:
        target = ref()
        done = getattr(target, "done", None)
        try:
            ended = callable(done) and bool(done())
        except Exception:
            return
        if ended:
            finish(target)

    record._settle = settle
    call.add_done_callback(finish)


def _watch_sync(record: ClientCall, call: Any) -> None:
    """:func:`_watch` for a sync call object (a stream or a future).

    grpc cancels such a call when the caller drops it, but ``add_done_callback`` stores the call
    itself in the call's state, which the channel holds until the call ends: the dropped call
    would run on. So the callback goes on that state directly, holding neither the call nor a
    way back to it; without that state (another grpc), ``add_done_callback`` it is.
    """
    state: Any = getattr(call, "_state", None)
    condition = getattr(state, "condition", None)
    if condition is None or not isinstance(getattr(state, "callbacks", None), list):
        _watch(record, call, _finish_from(record))
        return

    def finish() -> None:
        details = state.details
        text = details.decode("utf-8", "replace") if isinstance(details, bytes) else details
        record.finish(state.code, text)

    def settle() -> None:
        if state.code is not None:
            finish()

    record._settle = settle
    with condition:
        if state.code is None and state.callbacks is not None:
            state.callbacks.append(finish)
            return
    finish()


class _MultiCallable:
    """Wraps one sync multicallable; records each invocation."""

    def __init__(self, channel: RecordingChannel, method: str, inner: Any) -> None:
        self._channel = channel
        self._method = _method(method)
        self._inner = inner

    def _start(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[ClientCall, dict[str, Any]]:
        named = _split(args, kwargs)
        record, metadata = _begin(
            self._channel.target, self._method, named.get("timeout"), named.get("metadata"), False
        )
        if record.call_id is not None:
            named["metadata"] = metadata
        return record, named

    def _blocking(self, fn: Any, request: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        __tracebackhide__ = True  # a failing call's traceback shows the caller, not the recording
        """Start ``fn``; a call grpc refuses or fails while ``fn`` runs is finished here."""
        record, named = self._start(args, kwargs)
        try:
            result = fn(request, **named)
        except grpc.RpcError as exc:
            code = exc.code() if callable(getattr(exc, "code", None)) else None
            details = exc.details() if callable(getattr(exc, "details", None)) else None
            record.finish(code, details)
            raise
        except BaseException as exc:
            record.finish(None, f"{type(exc).__name__}: {exc}")
            raise
        return record, result

    def __call__(self, request: Any, *args: Any, **kwargs: Any) -> Any:
        __tracebackhide__ = True  # a failing call's traceback shows the caller, not the recording
        if self._streaming_response:
            record, call = self._blocking(self._inner, request, args, kwargs)  # grpc may refuse it
            _watch_sync(record, call)
            return call
        record, result = self._blocking(self._inner, request, args, kwargs)
        record.finish(grpc.StatusCode.OK, None)
        return result

    def with_call(self, request: Any, *args: Any, **kwargs: Any) -> Any:
        __tracebackhide__ = True  # a failing call's traceback shows the caller, not the recording
        record, (response, call) = self._blocking(self._inner.with_call, request, args, kwargs)
        record.finish(call.code(), call.details())
        return response, call

    def future(self, request: Any, *args: Any, **kwargs: Any) -> Any:
        __tracebackhide__ = True  # a failing call's traceback shows the caller, not the recording
        record, future = self._blocking(self._inner.future, request, args, kwargs)
        _watch_sync(record, future)
        return future

    _streaming_response = False


class _UnaryUnary(_MultiCallable, grpc.UnaryUnaryMultiCallable):  # type: ignore[misc]
    pass


class _UnaryStream(_MultiCallable, grpc.UnaryStreamMultiCallable):  # type: ignore[misc]
    _streaming_response = True


class _StreamUnary(_MultiCallable, grpc.StreamUnaryMultiCallable):  # type: ignore[misc]
    pass


class _StreamStream(_MultiCallable, grpc.StreamStreamMultiCallable):  # type: ignore[misc]
    _streaming_response = True


class RecordingChannel(grpc.Channel):  # type: ignore[misc]
    """A sync channel that records its calls; everything else is the wrapped channel's."""

    def __init__(self, channel: grpc.Channel, target: str) -> None:
        self._channel = channel
        self.target = _normal_target(target)

    def unary_unary(self, method: Any, *args: Any, **kwargs: Any) -> Any:
        return _UnaryUnary(self, method, self._channel.unary_unary(method, *args, **kwargs))

    def unary_stream(self, method: Any, *args: Any, **kwargs: Any) -> Any:
        return _UnaryStream(self, method, self._channel.unary_stream(method, *args, **kwargs))

    def stream_unary(self, method: Any, *args: Any, **kwargs: Any) -> Any:
        return _StreamUnary(self, method, self._channel.stream_unary(method, *args, **kwargs))

    def stream_stream(self, method: Any, *args: Any, **kwargs: Any) -> Any:
        return _StreamStream(self, method, self._channel.stream_stream(method, *args, **kwargs))

    def subscribe(self, callback: Any, try_to_connect: bool = False) -> None:
        self._channel.subscribe(callback, try_to_connect=try_to_connect)

    def unsubscribe(self, callback: Any) -> None:
        self._channel.unsubscribe(callback)

    def close(self) -> None:
        self._channel.close()

    def __enter__(self) -> RecordingChannel:
        self._channel.__enter__()
        return self

    def __exit__(self, *exc: Any) -> Any:
        return self._channel.__exit__(*exc)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._channel, name)


# --- asyncio ---------------------------------------------------------------------------------


def _now(coroutine: Any) -> Any:
    """Run a coroutine that completes without suspending (a done call's ``code()``)."""
    try:
        coroutine.send(None)
    except StopIteration as stop:
        return stop.value
    coroutine.close()
    return None


def _aio_finish_from(record: ClientCall) -> Callable[[Any], None]:
    def done(call: Any) -> None:
        try:
            code = _now(call.code())
            details = _now(call.details())
        except Exception:
            code, details = grpc.StatusCode.CANCELLED, None
        record.finish(code, details)

    return done


class _AioMultiCallable:
    def __init__(self, channel: RecordingAioChannel, method: str, inner: Any) -> None:
        self._channel = channel
        self._method = _method(method)
        self._inner = inner

    def __call__(self, request: Any = None, *args: Any, **kwargs: Any) -> Any:
        named = _split(args, kwargs)
        record, metadata = _begin(
            self._channel.target, self._method, named.get("timeout"), named.get("metadata"), True
        )
        if record.call_id is not None:
            named["metadata"] = metadata
        token = _CURRENT.set(record)
        try:
            call = self._inner(request, **named) if request is not None else self._inner(**named)
        except BaseException as exc:  # grpc refused the call (bad metadata): it never started
            record.finish(None, f"{type(exc).__name__}: {exc}")
            raise
        finally:
            _CURRENT.reset(token)
        _watch(record, call, _aio_finish_from(record))
        return call


class _SentTimeout:
    """The innermost aio interceptor: records the timeout after the caller's interceptors."""

    def _note(self, details: Any) -> None:
        record = _CURRENT.get()
        if record is not None:
            record.timeout = None if details.timeout is None else float(details.timeout)


def _aio_interceptors(user: Any) -> list[Any]:
    """Ours, innermost, for each kind of call the caller's own interceptors intercept (a kind
    they leave alone stays a plain call, its timeout the one given)."""
    if not _AIO_INTERCEPTORS:
        _AIO_INTERCEPTORS.extend(_make_aio_interceptors())
    return [ours for ours in _AIO_INTERCEPTORS if any(isinstance(u, ours.kind) for u in user)]


_AIO_INTERCEPTORS: list[Any] = []


def _make_aio_interceptors() -> list[Any]:
    import grpc.aio

    class UnaryUnary(_SentTimeout, grpc.aio.UnaryUnaryClientInterceptor):  # type: ignore[misc]
        kind = grpc.aio.UnaryUnaryClientInterceptor

        async def intercept_unary_unary(self, continuation: Any, details: Any, request: Any) -> Any:
            self._note(details)
            return await continuation(details, request)

    class UnaryStream(_SentTimeout, grpc.aio.UnaryStreamClientInterceptor):  # type: ignore[misc]
        kind = grpc.aio.UnaryStreamClientInterceptor

        async def intercept_unary_stream(self, continuation: Any, details: Any, request: Any) -> Any:
            self._note(details)
            return await continuation(details, request)

    class StreamUnary(_SentTimeout, grpc.aio.StreamUnaryClientInterceptor):  # type: ignore[misc]
        kind = grpc.aio.StreamUnaryClientInterceptor

        async def intercept_stream_unary(self, continuation: Any, details: Any, requests: Any) -> Any:
            self._note(details)
            return await continuation(details, requests)

    class StreamStream(_SentTimeout, grpc.aio.StreamStreamClientInterceptor):  # type: ignore[misc]
        kind = grpc.aio.StreamStreamClientInterceptor

        async def intercept_stream_stream(self, continuation: Any, details: Any, requests: Any) -> Any:
            self._note(details)
            return await continuation(details, requests)

    return [UnaryUnary(), UnaryStream(), StreamUnary(), StreamStream()]


class RecordingAioChannel:
    """A ``grpc.aio`` channel that records its calls; everything else is the wrapped channel's."""

    def __init__(self, channel: Any, target: str) -> None:
        self._channel = channel
        self.target = _normal_target(target)

    def unary_unary(self, method: Any, *args: Any, **kwargs: Any) -> Any:
        return _AioMultiCallable(self, method, self._channel.unary_unary(method, *args, **kwargs))

    def unary_stream(self, method: Any, *args: Any, **kwargs: Any) -> Any:
        return _AioMultiCallable(self, method, self._channel.unary_stream(method, *args, **kwargs))

    def stream_unary(self, method: Any, *args: Any, **kwargs: Any) -> Any:
        return _AioMultiCallable(self, method, self._channel.stream_unary(method, *args, **kwargs))

    def stream_stream(self, method: Any, *args: Any, **kwargs: Any) -> Any:
        return _AioMultiCallable(self, method, self._channel.stream_stream(method, *args, **kwargs))

    async def __aenter__(self) -> RecordingAioChannel:
        await self._channel.__aenter__()
        return self

    async def __aexit__(self, *exc: Any) -> Any:
        return await self._channel.__aexit__(*exc)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._channel, name)


def _normal_target(target: Any) -> str:
    text = target.decode() if isinstance(target, bytes) else str(target)
    if text.startswith("localhost:"):
        return "127.0.0.1:" + text.removeprefix("localhost:")
    return text


# --- installing -------------------------------------------------------------------------------

_originals: dict[tuple[Any, str], Any] = {}
_install_depth = 0
_install_lock = threading.Lock()


def _target_of(args: tuple[Any, ...], kwargs: dict[str, Any]) -> str:
    return str(args[0] if args else kwargs.get("target", ""))


def _wrap_sync(original: Callable[..., Any]) -> Callable[..., Any]:
    def create(*args: Any, **kwargs: Any) -> Any:
        return RecordingChannel(original(*args, **kwargs), _target_of(args, kwargs))

    create.__wrapped__ = original  # type: ignore[attr-defined]
    create.__doc__ = original.__doc__
    return create


def _wrap_intercept(original: Callable[..., Any]) -> Callable[..., Any]:
    def intercept_channel(channel: Any, *interceptors: Any) -> Any:
        if not isinstance(channel, RecordingChannel) and not _is_intercepted(channel):
            channel = RecordingChannel(channel, str(getattr(channel, "target", "")) or "<unknown>")
        return original(channel, *interceptors)

    intercept_channel.__wrapped__ = original  # type: ignore[attr-defined]
    intercept_channel.__doc__ = original.__doc__
    return intercept_channel


def _is_intercepted(channel: Any) -> bool:
    """Whether ``channel`` is an intercepted channel over a recording one (don't record twice)."""
    inner = getattr(channel, "_channel", None)
    while inner is not None:
        if isinstance(inner, RecordingChannel):
            return True
        inner = getattr(inner, "_channel", None)
    return False


def _wrap_aio(original: Callable[..., Any], position: int) -> Callable[..., Any]:
    """``position``: where ``interceptors`` sits among the positional arguments (3 for
    ``insecure_channel``, 4 for ``secure_channel``, after ``credentials``)."""

    def create(*args: Any, **kwargs: Any) -> Any:
        interceptors = kwargs.get("interceptors")
        if len(args) > position:
            interceptors = args[position]
            args = args[:position]
        if interceptors:
            interceptors = list(interceptors)
            kwargs["interceptors"] = [*interceptors, *_aio_interceptors(interceptors)]
        return RecordingAioChannel(original(*args, **kwargs), _target_of(args, kwargs))

    create.__wrapped__ = original  # type: ignore[attr-defined]
    create.__doc__ = original.__doc__
    return create


def install() -> None:
    """Record calls of channels created from now on (nested installs are counted)."""
    global _install_depth
    with _install_lock:
        _install_depth += 1
        if _install_depth > 1:
            return
        import grpc.aio

        patches: list[tuple[Any, str, Callable[[Callable[..., Any]], Callable[..., Any]]]] = [
            (grpc, "insecure_channel", _wrap_sync),
            (grpc, "secure_channel", _wrap_sync),
            (grpc, "intercept_channel", _wrap_intercept),
            (grpc.aio, "insecure_channel", lambda original: _wrap_aio(original, 3)),
            (grpc.aio, "secure_channel", lambda original: _wrap_aio(original, 4)),
        ]
        for module, name, wrap in patches:
            original = getattr(module, name)
            _originals[(module, name)] = original
            setattr(module, name, wrap(original))


def uninstall() -> None:
    """Undo :func:`install` once every install has been undone."""
    global _install_depth
    with _install_lock:
        if _install_depth == 0:
            return
        _install_depth -= 1
        if _install_depth:
            return
        for (module, name), original in _originals.items():
            setattr(module, name, original)
        _originals.clear()


def raw_insecure_channel(target: str, options: Any = None) -> grpc.Channel:
    """A channel that records nothing (for measuring the recording's cost)."""
    original = _originals.get((grpc, "insecure_channel"), grpc.insecure_channel)
    channel: grpc.Channel = original(target, options=options)
    return channel
