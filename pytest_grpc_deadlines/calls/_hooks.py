"""What the recording does at each point it observes a call: pure functions over grpc's arguments.

:mod:`._recording` calls these from wrappers on grpc's own classes, at the innermost point of a
call: a sync multicallable's ``__call__``, ``with_call`` and ``future`` (below any interceptors
``grpc.intercept_channel`` added, so the timeout seen is the one grpc sends), and an aio call's
constructor (after the channel's interceptors ran, so the same holds). The arguments are passed
on as they came, but for one request header (:data:`~.client.CALL_ID_HEADER`) on calls to the
plugin's own servers; errors, return values and their timing are grpc's own.
"""

from __future__ import annotations

import contextvars
import json
import math
import time
import weakref
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple

import grpc

from ._client import ClientCall
from ._sites import CallSite

__all__ = ["PENDING", "ChannelInfo", "Pending", "service_config"]

#: An interceptor that moved the deadline by more than this (seconds) is said to have set it. An
#: aio call's timeout is read back from its absolute deadline, which a thread descheduled between
#: grpc computing it and the recording reading it sees late: several ms on a loaded machine.
MOVED = 0.05


def normal_target(target: object) -> str:
    text = target.decode() if isinstance(target, (bytes, bytearray)) else str(target)
    if text.startswith("localhost:"):
        return "127.0.0.1:" + text.removeprefix("localhost:")
    return text


def method_name(method: object) -> str:
    text = method.decode() if isinstance(method, (bytes, bytearray)) else str(method)
    return text.lstrip("/")


def seconds(value: Any) -> float | None:
    """A timeout as a float, or None (no deadline, or not a number: grpc raises its own error)."""
    if value is None or isinstance(value, bool):
        return None
    try:
        return float(value)
    except (TypeError, ValueError, OverflowError):
        return None


# --- service config -----------------------------------------------------------------------------


def _duration(text: object) -> float | None:
    if not isinstance(text, str) or not text.endswith("s"):
        return None
    try:
        value = float(text[:-1])
    except ValueError:
        return None
    return value if math.isfinite(value) and value >= 0 else None


def service_config(options: Any) -> Mapping[tuple[str, str], float]:
    """``methodConfig`` timeouts from a channel's ``grpc.service_config`` option, keyed by
    ``(service, method)``, ``""`` standing for "every" (an unreadable config gives none: grpc
    reports it itself)."""
    text = None
    try:
        for key, value in options or ():
            if key == "grpc.service_config":
                text = value
    except (TypeError, ValueError):
        return {}
    if not isinstance(text, (str, bytes)):
        return {}
    try:
        config = json.loads(text)
    except ValueError:
        return {}
    out: dict[tuple[str, str], float] = {}
    entries = config.get("methodConfig", []) if isinstance(config, dict) else []
    for entry in entries if isinstance(entries, list) else []:
        if not isinstance(entry, dict):
            continue
        timeout = _duration(entry.get("timeout"))
        names = entry.get("name", [])
        if timeout is None or not isinstance(names, list):
            continue
        for name in names:
            if isinstance(name, dict):
                out.setdefault((str(name.get("service", "")), str(name.get("method", ""))), timeout)
    return out


@dataclass(frozen=True)
class ChannelInfo:
    """What the recording knows of a channel: its target and its service config's timeouts."""

    target: str
    config: Mapping[tuple[str, str], float]

    @classmethod
    def of(cls, target: object, options: object) -> ChannelInfo:
        return cls(normal_target(target), service_config(options))

    def config_timeout(self, method: str) -> float | None:
        if not self.config:
            return None
        service, _, name = method.rpartition("/")
        for key in ((service, name), (service, ""), ("", "")):
            if key in self.config:
                return self.config[key]
        return None


# --- sync ---------------------------------------------------------------------------------------


def finish_from_error(record: ClientCall, error: BaseException) -> None:
    if isinstance(error, grpc.RpcError):
        code = error.code() if callable(getattr(error, "code", None)) else None
        details = error.details() if callable(getattr(error, "details", None)) else None
        record.finish(code, details)
    else:  # grpc refused the call (bad arguments, a closed channel): it never started
        record.finish(None, f"{type(error).__name__}: {error}")


def _finish_from(record: ClientCall) -> Callable[[Any], None]:
    def done(call: Any) -> None:
        try:
            record.finish(call.code(), call.details())
        except Exception:  # a future cancelled before it started has no status
            record.finish(grpc.StatusCode.CANCELLED, None)

    return done


def watch(record: ClientCall, call: Any, finish: Callable[[Any], None]) -> None:
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


def watch_sync(record: ClientCall, call: Any) -> None:
    """:func:`watch` for a sync call object (a stream or a future).

    grpc cancels such a call when the caller drops it, but ``add_done_callback`` stores the call
    itself in the call's state, which the channel holds until the call ends: the dropped call
    would run on. So the callback goes on that state directly, holding neither the call nor a
    way back to it; without that state (another grpc), ``add_done_callback`` it is.
    """
    state: Any = getattr(call, "_state", None)
    condition = getattr(state, "condition", None)
    if condition is None or not isinstance(getattr(state, "callbacks", None), list):
        watch(record, call, _finish_from(record))
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


# --- asyncio ------------------------------------------------------------------------------------


class Pending(NamedTuple):
    """What an aio multicallable saw of a call before grpc ran the channel's interceptors (on a
    task of their own, where the caller's frames are gone): the channel, the caller's line and
    the timeout the caller gave. A tuple: made on every aio call."""

    info: ChannelInfo
    site: CallSite
    timeout: Any
    started: float  # time.monotonic() when the multicallable was called


PENDING: contextvars.ContextVar[Pending | None] = contextvars.ContextVar(
    "grpc_deadlines_pending", default=None
)


def aio_timeout(pending: Pending, deadline: Any) -> tuple[float | None, bool]:
    """The timeout an aio call was created with, from its absolute ``deadline``, and whether an
    interceptor set it (it differs from the caller's by more than :data:`MOVED`)."""
    caller = seconds(pending.timeout)
    if deadline is None:
        return None, caller is not None
    try:
        timeout = float(deadline) - time.time()
    except (TypeError, ValueError):
        return caller, False
    if caller is not None and abs(caller - timeout) <= MOVED:
        return caller, False
    return round(timeout, 3), True


def _now(coroutine: Any) -> Any:
    """Run a coroutine that completes without suspending (a done call's ``code()``)."""
    try:
        coroutine.send(None)
    except StopIteration as stop:
        return stop.value
    coroutine.close()
    return None


#: grpc's status codes by number (the number is the first item of each one's value)
_CODES = {code.value[0]: code for code in grpc.StatusCode}


def aio_done(record: ClientCall, call: Any) -> None:
    """Finish ``record`` from the aio ``call`` that has just ended: from the status grpc has just
    set on it, or (another grpc) through the call's own ``code()`` and ``details()``.

    The recording adds this as the call's done callback. An aio record needs no settling (see
    :meth:`ClientCall.settle`): grpc marks an aio call done and runs its done callbacks in one
    step on the loop, so a done call's record is finished by the time anything can read it."""
    status = getattr(getattr(call, "_cython_call", None), "_status", None)
    if status is not None:
        try:
            code = _CODES.get(status.code())
            details = status.details()
        except Exception:  # not the status object this reads
            code = None
        if code is not None:  # (a number grpc has no code for: as grpc's own code() says)
            record.finish(code, details)
            return
    try:
        code = _now(call.code())
        details = _now(call.details())
    except Exception:
        code, details = grpc.StatusCode.CANCELLED, None
    record.finish(code, details)
