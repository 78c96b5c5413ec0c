"""Client-side call records, and which test each call belongs to.

:mod:`._recording` wraps grpc's own channel classes so that every RPC gets a :class:`ClientCall`:
method, target, the timeout grpc sends (and who set it), final status, elapsed time and the
caller's file:line. Calls to the plugin's own servers carry one extra request header,
:data:`CALL_ID_HEADER`, which pairs them with the server's records.

A call belongs to the running test only when its thread does: the test's own thread, a thread
started during the test, or a handler thread of one of the plugin's servers. A call from a
thread that was already running when the test started (one an earlier test left behind, say) is
a *background* call: recorded with the name of its thread, never counted against a test.
"""

from __future__ import annotations

import itertools
import os
import sys
import threading
from typing import TYPE_CHECKING

from ..servers._observers import CALL_ID_HEADER, is_serving, on_call, served_call, serves

if TYPE_CHECKING:
    from collections.abc import Callable

    from ..servers._records import ServerCall
    from ._client import ClientCall, TimeoutSource
    from ._hooks import ChannelInfo
    from ._sites import CallSite

__all__ = ["CALL_ID_HEADER", "RECORDER", "Recorder"]

_ids = itertools.count(1)
#: this process's id in pairing headers (a forked child gets its own)
_PID = [os.getpid()]
os.register_at_fork(after_in_child=lambda: _PID.__setitem__(0, os.getpid()))
#: the record class and the call-site finder, loaded with grpc rather than with the plugin
_CLIENT_CALL: type[ClientCall] | None = None
_CALL_SITE: Callable[[int, str | None], CallSite] | None = None


def _proxied(target: str) -> bool:
    """Whether ``target`` is a wire proxy in front of one of the plugin's servers (whose records
    then pair with the call, as for a direct one)."""
    wire = sys.modules.get("pytest_grpc_deadlines.wire._proxy")
    if wire is None:  # no proxy was ever made: nothing to look up
        return False
    upstream = wire.upstream_of(target)
    return upstream is not None and serves(upstream)


def _load() -> tuple[type[ClientCall], Callable[[int, str | None], CallSite]]:
    """The record class and the call-site finder, loaded on the first recorded call."""
    global _CLIENT_CALL, _CALL_SITE
    from ._client import ClientCall
    from ._sites import call_site

    _CLIENT_CALL, _CALL_SITE = ClientCall, call_site
    return ClientCall, call_site


class _Frame:
    """What one pytest session (a pytester run nests another) is recording. (A plain class:
    made when the plugin loads, where a dataclass costs its definition.)"""

    __slots__ = ("background", "base", "calls", "older", "server_calls", "test")

    def __init__(self, base: str | None = None) -> None:
        #: the directory call sites are relative to (None: the working directory at each call)
        self.base = base
        self.test: str | None = None
        self.calls: list[ClientCall] = []
        self.background: list[ClientCall] = []
        #: each pairing header's server calls: one per attempt, in arrival order
        self.server_calls: dict[str, list[ServerCall]] = {}
        #: threads running when the test started, other than the test's own
        self.older: frozenset[threading.Thread] = frozenset()


class Recorder:
    """Where calls go: the test running now in the innermost pytest session."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._frames: list[_Frame] = [_Frame()]

    def push(self, base: str | None = None) -> None:
        """A pytest session starts recording; its call sites are relative to ``base``."""
        with self._lock:
            self._frames.append(_Frame(base))

    def pop(self) -> None:
        with self._lock:
            if len(self._frames) > 1:
                self._frames.pop()

    def start_test(self, nodeid: str | None) -> None:
        """Begin recording for ``nodeid`` (None: between tests). Calls recorded so far are
        dropped: a rerun attempt starts afresh."""
        current = threading.current_thread()
        older = frozenset(t for t in threading.enumerate() if t is not current) if nodeid else frozenset()
        with self._lock:
            frame = self._frames[-1]
            frame.test = nodeid
            frame.calls = []
            frame.server_calls = {}
            frame.older = older

    @property
    def base(self) -> str | None:
        """The directory the running session's call sites are relative to."""
        return self._frames[-1].base

    def new_call(
        self,
        info: ChannelInfo,
        method: str,
        timeout: float | None,
        aio: bool,
        started: float,
        depth: int = 1,
        site: CallSite | None = None,
        set_by: TimeoutSource = "call",
    ) -> ClientCall:
        """Record a call to ``method`` on ``info``'s channel that this thread started at
        ``started`` (``time.monotonic()``) with deadline ``timeout`` (None: none), which
        ``set_by`` set: its record, already added. The call's site is ``site``, or found from the
        code ``depth`` frames above the caller.

        One function on purpose: it runs on every recorded call, between two waits in grpc, where
        each further function or object touched costs several times what it costs warm."""
        frame = self._frames[-1]
        if site is None:
            site = (_CALL_SITE or _load()[1])(depth + 1, frame.base)
        source: TimeoutSource | None = None if timeout is None else set_by
        if info.config:
            configured = info.config_timeout(method)
            if configured is not None and (timeout is None or configured < timeout):
                timeout, source = configured, "service config"
        thread = threading.current_thread()
        test, background = frame.test, False
        if test is not None and thread in frame.older and not is_serving():
            test, background = None, True
        target = info.target
        call_id = f"{_PID[0]}-{next(_ids)}" if serves(target) or _proxied(target) else None
        call = (_CLIENT_CALL or _load()[0])(
            method,
            target,
            timeout,
            site.site,
            test,
            aio,
            call_id,
            site.internal,
            source,
            site.library,
            thread.name,
            background,
            started,
            _recorder=self,
        )
        parent = served_call()
        if parent is not None:  # made while a handler of one of the plugin's servers runs
            call.parent = parent
            if parent.deadline is not None:
                call.parent_time_left = parent.started + parent.deadline - started
        with self._lock:
            frame = self._frames[-1]
            (frame.background if background else frame.calls).append(call)
        return call

    def add(self, call: ClientCall) -> None:
        with self._lock:
            frame = self._frames[-1]
            (frame.background if call.background else frame.calls).append(call)

    def add_server_call(self, call_id: str, server_call: ServerCall) -> None:
        """Keep a server call that carries a pairing header, for its client record to find;
        grpc's retries send the header again with each attempt."""
        with self._lock:
            self._frames[-1].server_calls.setdefault(call_id, []).append(server_call)

    def _paired(self, server_call: ServerCall) -> None:
        if server_call.client_call_id is not None:
            self.add_server_call(server_call.client_call_id, server_call)

    def server_call(self, call_id: str | None) -> ServerCall | None:
        """The server's record of the call's last attempt."""
        attempts = self.attempts(call_id)
        return attempts[-1] if attempts else None

    def attempts(self, call_id: str | None) -> tuple[ServerCall, ...]:
        """The server's record of each attempt of the call, in arrival order."""
        if call_id is None:
            return ()
        with self._lock:
            for frame in reversed(self._frames):
                if call_id in frame.server_calls:
                    return tuple(frame.server_calls[call_id])
        return ()

    def recorded(self) -> bool:
        """Whether any call was recorded since the test started (or between tests)."""
        return bool(self._frames[-1].calls)

    def calls_of(self, nodeid: str | None) -> list[ClientCall]:
        with self._lock:
            return [c for c in self._frames[-1].calls if c.test == nodeid]

    def all_calls(self) -> list[ClientCall]:
        with self._lock:
            return list(self._frames[-1].calls)

    def take_background(self) -> list[ClientCall]:
        """The background calls recorded since the last take."""
        with self._lock:
            frame = self._frames[-1]
            taken, frame.background = frame.background, []
        return taken


RECORDER = Recorder()
on_call(RECORDER._paired)
