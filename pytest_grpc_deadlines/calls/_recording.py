"""Installing the call recording on grpc's own classes, transparently.

Code under test gets exactly what it gets without the plugin: grpc's own channel, multicallable
and call objects, with their signatures, errors (raised when and where grpc raises them),
keyword arguments and class-level patching. The recording observes each call at its innermost
point: a sync multicallable's ``__call__``, ``with_call`` and ``future`` (below every interceptor
that ``grpc.intercept_channel`` added), and an aio call's constructor (after the channel's
interceptors, those a library appends to the channel later included). So the timeout recorded
is the one grpc sends, whoever set it.

The hooks are ``wrapt`` function wrappers on grpc's classes, not on the module functions that
OpenTelemetry, ddtrace and Sentry wrap: their instrument and uninstrument work in any order
around ours. A wrapper goes beneath any ``wrapt`` wrappers already on the attribute (another
library unwrapping its own removes only its own), and :func:`uninstall` removes a wrapper only
where it is still in place as installed; one that something else has captured stays, inert.
The only objects the recording inspects are grpc's own, through these hooks.
"""

from __future__ import annotations

import functools
import importlib
import threading
import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from time import monotonic
from typing import Any, cast

import grpc
import grpc.aio
import wrapt

from . import _hooks as hooks
from ._client import TimeoutSource
from ._hooks import PENDING, ChannelInfo, Pending
from ._recorder import CALL_ID_HEADER, RECORDER
from ._sites import call_site

_OK = grpc.StatusCode.OK
_Metadata = grpc.aio.Metadata

#: A grpc method or function that a wrapper wraps.
Wrapped = Callable[..., Any]

__all__ = ["install", "installed", "missing", "raw_insecure_channel", "uninstall"]

_KINDS = ("unary_unary", "unary_stream", "stream_unary", "stream_stream")
#: grpc._channel's multicallables and the methods that start a call
_SYNC_CALLABLES = {
    "_UnaryUnaryMultiCallable": ("__call__", "with_call", "future"),
    "_UnaryStreamMultiCallable": ("__call__",),
    "_SingleThreadedUnaryStreamMultiCallable": ("__call__",),
    "_StreamUnaryMultiCallable": ("__call__", "with_call", "future"),
    "_StreamStreamMultiCallable": ("__call__",),
}
_AIO_CALLABLES = (
    "UnaryUnaryMultiCallable",
    "UnaryStreamMultiCallable",
    "StreamUnaryMultiCallable",
    "StreamStreamMultiCallable",
)
_AIO_CALLS = ("UnaryUnaryCall", "UnaryStreamCall", "StreamUnaryCall", "StreamStreamCall")
#: wrapt wrappers nest no deeper than this in practice; a longer chain is not walked.
_MAX_CHAIN = 64


@dataclass
class _Patch:
    owner: Any
    name: str
    wrapper: Any = None
    active: bool = True


def _chain(owner: Any, name: str) -> list[Any]:
    """The attribute and the ``wrapt`` wrappers beneath it, outermost first."""
    node = vars(owner)[name]
    chain = [node]
    while isinstance(node, wrapt.FunctionWrapper) and len(chain) < _MAX_CHAIN:
        node = node.__wrapped__
        chain.append(node)
    return chain


def _insert(owner: Any, name: str, make: Callable[[_Patch], Callable[..., Any]]) -> _Patch | None:
    """Wrap ``owner.name`` beneath any ``wrapt`` wrappers already on it (None: grpc has none)."""
    if name not in vars(owner):
        return None
    patch = _Patch(owner, name)
    chain = _chain(owner, name)
    patch.wrapper = wrapt.FunctionWrapper(chain[-1], make(patch))
    if len(chain) == 1:
        setattr(owner, name, patch.wrapper)
    else:
        chain[-2].__wrapped__ = patch.wrapper
    return patch


def _remove(patch: _Patch) -> None:
    patch.active = False
    chain = _chain(patch.owner, patch.name) if patch.name in vars(patch.owner) else []
    for index, node in enumerate(chain):
        if node is patch.wrapper:
            inner = patch.wrapper.__wrapped__
            if index == 0:
                setattr(patch.owner, patch.name, inner)
            else:
                chain[index - 1].__wrapped__ = inner
            return
    # Something else holds our wrapper (a plain function that captured it): it stays, inert.


# --- channels: which target each multicallable dials ------------------------------------------

_channels: weakref.WeakKeyDictionary[Any, ChannelInfo] = weakref.WeakKeyDictionary()
#: each recorded multicallable, by id: a weak reference to it, its channel, and the method it
#: calls (``pkg.Service/Method``). Looked up on every call: by id, a plain dict lookup and no
#: weak reference made (a ``WeakKeyDictionary`` makes one per lookup).
_callables: dict[int, tuple[weakref.ref[Any], ChannelInfo, str]] = {}
_unrecorded = threading.local()


def _forget_callable(key: int, ref: weakref.ref[Any]) -> None:
    """A recorded multicallable is gone (its id may already name another)."""
    entry = _callables.get(key)
    if entry is not None and entry[0] is ref:
        _callables.pop(key, None)


def _remember(multicallable: Any, info: ChannelInfo, method: str) -> None:
    key = id(multicallable)
    try:
        ref = weakref.ref(multicallable, functools.partial(_forget_callable, key))
    except TypeError:  # not weakly referenceable: left unrecorded
        return
    _callables[key] = (ref, info, method)


def _channel_init(options_at: int) -> Callable[[_Patch], Callable[..., Any]]:
    def make(patch: _Patch) -> Callable[..., Any]:
        def wrapper(wrapped: Wrapped, instance: object, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
            wrapped(*args, **kwargs)
            if patch.active and instance is not None and not getattr(_unrecorded, "on", False):
                target = args[0] if args else kwargs.get("target", "")
                options = args[options_at] if len(args) > options_at else kwargs.get("options")
                _channels[instance] = ChannelInfo.of(target, options)

        return wrapper

    return make


def _channel_method(patch: _Patch) -> Callable[..., Any]:
    def wrapper(wrapped: Wrapped, instance: object, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        multicallable = wrapped(*args, **kwargs)
        info = _channels.get(instance) if patch.active and instance is not None else None
        if info is not None:
            _remember(multicallable, info, hooks.method_name(args[0] if args else kwargs.get("method", "")))
        return multicallable

    return wrapper


# --- sync calls ---------------------------------------------------------------------------------

_TIMEOUT_AT, _METADATA_AT = 1, 2  # positions among (request, timeout, metadata, ...)


def _sync_call(name: str, streaming: bool) -> Callable[[_Patch], Callable[..., Any]]:
    """``name``: ``__call__``, ``with_call`` or ``future``; ``streaming``: the call object is a
    response stream."""
    watched = name == "future" or streaming  # it ends after the wrapper returns

    def make(patch: _Patch) -> Callable[..., Any]:
        # Lean on purpose: it runs on every call, between two waits in grpc (see Recorder.new_call).
        def wrapper(wrapped: Wrapped, instance: object, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
            __tracebackhide__ = True  # a failing call's traceback shows the caller
            # First: the call starts now, before this wrapper allocates (a garbage collection
            # here would otherwise move the start, and a deadline passed on looks late).
            started = monotonic()
            entry = _callables.get(id(instance)) if patch.active else None
            if entry is None or entry[0]() is not instance:
                return wrapped(*args, **kwargs)
            timeout = args[_TIMEOUT_AT] if len(args) > _TIMEOUT_AT else kwargs.get("timeout")
            if type(timeout) is not float:
                timeout = hooks.seconds(timeout)
            record = RECORDER.new_call(entry[1], entry[2], timeout, False, started)
            if record.call_id is not None:  # the pairing header, after the caller's metadata
                header = (CALL_ID_HEADER, record.call_id)
                try:
                    if len(args) > _METADATA_AT:
                        metadata = (*(args[_METADATA_AT] or ()), header)
                        args = (*args[:_METADATA_AT], metadata, *args[_METADATA_AT + 1 :])
                    else:
                        given = kwargs.get("metadata")
                        kwargs = {**kwargs, "metadata": (*given, header) if given else (header,)}
                except Exception:  # not pairs: grpc gets them as they are, and says so itself
                    pass
            try:
                result = wrapped(*args, **kwargs)
            except BaseException as error:
                hooks.finish_from_error(record, error)
                raise
            if watched:
                hooks.watch_sync(record, result)
            elif name == "with_call":
                call = result[1]
                record.finish(call.code(), call.details())
            else:
                record.finish(_OK, None)
            return result

        return wrapper

    return make


# --- aio calls ----------------------------------------------------------------------------------


def _aio_callable(patch: _Patch) -> Callable[..., Any]:
    def wrapper(wrapped: Wrapped, instance: object, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        started = monotonic()  # first, as for a sync call
        entry = _callables.get(id(instance)) if patch.active else None
        if entry is not None and entry[0]() is not instance:
            entry = None
        if PENDING.get() is None:
            if entry is None:
                return wrapped(*args, **kwargs)
            if len(args) <= 1 and not getattr(instance, "_interceptors", True):
                # No interceptor (grpc reads the same list as it makes the call): grpc makes the
                # call right here with these arguments, so it is recorded in one step. (Only the
                # request is positional: a streaming request's call also takes its timeout and
                # metadata by position, which the two-step path reads where grpc put them.)
                metadata = kwargs.get("metadata")
                if metadata is None or isinstance(metadata, (tuple, list, _Metadata)):
                    return _aio_direct(entry, wrapped, args, kwargs, started, metadata)
        # (None: a channel that records nothing, called from within a recorded call's interceptor)
        pending = None
        if entry is not None:
            # a streaming request's call takes its timeout second, by position or by keyword
            timeout = args[1] if len(args) > 1 else kwargs.get("timeout")
            pending = Pending(entry[1], call_site(1, RECORDER.base), timeout, started)
        token = PENDING.set(pending)
        try:
            return wrapped(*args, **kwargs)
        finally:
            PENDING.reset(token)

    return wrapper


def _aio_direct(
    entry: tuple[weakref.ref[Any], ChannelInfo, str],
    wrapped: Wrapped,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    started: float,
    metadata: Any,
) -> Any:
    """An aio call with no interceptor, recorded from the multicallable alone: the timeout is
    the caller's. grpc takes a ``Metadata`` as it is and converts pairs itself (reporting a bad
    one as it would), so the header goes on as :func:`_with_header` puts it."""
    timeout = kwargs.get("timeout")
    if type(timeout) is not float:
        timeout = hooks.seconds(timeout)
    record = RECORDER.new_call(entry[1], entry[2], timeout, True, started, depth=2)
    if record.call_id is not None:
        kwargs = {**kwargs, "metadata": _with_header(metadata, record.call_id)}
    try:
        call = wrapped(*args, **kwargs)
    except BaseException as error:  # grpc refused the call (a bad timeout): it never started
        hooks.finish_from_error(record, error)
        raise
    # before the loop can run the call, so its end is always seen
    call.add_done_callback(functools.partial(hooks.aio_done, record))
    return call


def _with_header(metadata: Any, call_id: str) -> Any:
    """An aio call's ``metadata`` with the pairing header after it: a new ``Metadata`` for none
    or for a ``Metadata`` (the caller's may be reused across calls), else the same kind of
    sequence of pairs (some grpc releases convert tuples only and pass lists on)."""
    header = (CALL_ID_HEADER, call_id)
    if metadata is None:
        return _Metadata(header)
    if isinstance(metadata, _Metadata):
        return _Metadata(*metadata, header)
    if isinstance(metadata, list):
        return [*metadata, header]
    return (*metadata, header)


_DEADLINE_AT, _AIO_METADATA_AT, _METHOD_AT = 1, 2, 6  # grpc.aio._call.*Call.__init__'s arguments


def _aio_call(patch: _Patch) -> Callable[..., Any]:
    def wrapper(wrapped: Wrapped, instance: object, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        pending = PENDING.get() if patch.active else None
        if pending is None or len(args) <= _METHOD_AT:
            return wrapped(*args, **kwargs)
        timeout, moved = hooks.aio_timeout(pending, args[_DEADLINE_AT])
        source: TimeoutSource = "interceptor" if moved else "call"
        name = hooks.method_name(args[_METHOD_AT])
        started = pending.started
        record = RECORDER.new_call(pending.info, name, timeout, True, started, 0, pending.site, source)
        if record.call_id is not None:
            try:
                metadata = _with_header(args[_AIO_METADATA_AT], record.call_id)
                args = (*args[:_AIO_METADATA_AT], metadata, *args[_AIO_METADATA_AT + 1 :])
            except Exception:  # not pairs: grpc gets them as they are, and says so itself
                pass
        try:
            wrapped(*args, **kwargs)
        except BaseException as error:
            hooks.finish_from_error(record, error)
            raise
        cast(Any, instance).add_done_callback(functools.partial(hooks.aio_done, record))
        return None  # a constructor's

    return wrapper


# --- installing ---------------------------------------------------------------------------------

_patches: list[_Patch] = []
_depth = 0
_lock = threading.Lock()


def install() -> None:
    """Record the calls of channels created from now on (nested installs are counted)."""
    global _depth
    with _lock:
        _depth += 1
        if _depth > 1:
            return
        # grpc's own classes, which its stubs do not describe
        _channel = importlib.import_module("grpc._channel")
        aio_call = importlib.import_module("grpc.aio._call")
        aio_channel = importlib.import_module("grpc.aio._channel")

        planned: list[tuple[Any, str, str, Callable[[_Patch], Callable[..., Any]]]] = [
            (_channel, "Channel", "__init__", _channel_init(1)),
            (aio_channel, "Channel", "__init__", _channel_init(1)),
        ]
        for kind in _KINDS:
            planned.append((_channel, "Channel", kind, _channel_method))
            planned.append((aio_channel, "Channel", kind, _channel_method))
        for cls_name, methods in _SYNC_CALLABLES.items():
            for method in methods:
                streaming = cls_name.endswith("StreamMultiCallable")  # a response stream
                planned.append((_channel, cls_name, method, _sync_call(method, streaming)))
        for cls_name in _AIO_CALLABLES:
            planned.append((aio_channel, cls_name, "__call__", _aio_callable))
        for cls_name in _AIO_CALLS:
            planned.append((aio_call, cls_name, "__init__", _aio_call))
        _missing.clear()
        for module, cls_name, name, make in planned:
            owner = getattr(module, cls_name, None)
            patch = _insert(owner, name, make) if isinstance(owner, type) else None
            if patch is not None:
                _patches.append(patch)
            elif cls_name not in _OPTIONAL:
                _missing.append(f"{module.__name__}.{cls_name}.{name}")


#: grpc classes that only some grpcio releases have
_OPTIONAL = frozenset({"_SingleThreadedUnaryStreamMultiCallable"})
_missing: list[str] = []


def missing() -> tuple[str, ...]:
    """What the recording needs and the installed grpc does not have (empty when all fits)."""
    return tuple(_missing)


def uninstall() -> None:
    """Undo :func:`install` once every install has been undone."""
    global _depth
    with _lock:
        if _depth == 0:
            return
        _depth -= 1
        if _depth:
            return
        while _patches:
            _remove(_patches.pop())


def installed() -> bool:
    return _depth > 0


def raw_insecure_channel(target: str, options: Sequence[tuple[str, Any]] | None = None) -> grpc.Channel:
    """A sync channel whose calls are not recorded (for measuring what recording costs)."""
    _unrecorded.on = True
    try:
        return grpc.insecure_channel(target, options=options)
    finally:
        _unrecorded.on = False
