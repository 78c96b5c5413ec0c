"""What a test server saw of each call."""

from __future__ import annotations

import asyncio
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Literal

import grpc

from .._errors import ServerStateError

__all__ = [
    "DEADLINE_SHARE",
    "DEADLINE_SLACK",
    "SERVER_CANCELLED_DETAILS",
    "CancelledBy",
    "Outcome",
    "ServerCall",
]

#: "running"; "ok" (the handler returned); "abandoned" (the cancellation stopped the handler: a
#: cancellation-aware wait woke, grpc closed its response stream or cancelled its task, or the
#: handler saw it and returned); "aborted" (it ended with a non-OK status, or the server
#: cancelled the call itself); "raised" (it raised).
Outcome = Literal["running", "ok", "abandoned", "aborted", "raised"]

#: Who ended the RPC under a running handler: the client cancelled, its deadline passed, or the
#: server's own code cancelled it (``context.cancel()``).
CancelledBy = Literal["client", "deadline", "server"]

#: A cancellation within this many seconds, plus :data:`DEADLINE_SHARE` of the deadline, before
#: the deadline the server saw is put down to the deadline: grpc rounds the deadline it sends up
#: (by up to about 1%: 0.1 s at 30 s) and the client's timer fires a few milliseconds late.
DEADLINE_SLACK = 0.01
DEADLINE_SHARE = 0.011

#: The details of a call the server cancelled itself (the client sees CANCELLED).
SERVER_CANCELLED_DETAILS = "the servicer cancelled the call (context.cancel())"


@dataclass(eq=False)
class ServerCall:
    """One call as the server saw it; ``method`` is ``"pkg.Service/Method"``.

    ``deadline`` is the time the client left at handler start, in seconds (None when the client
    set none: the sync server's 9.22e18 and asyncio's None both mean "none"). ``cancelled`` is
    True when the RPC ended under the running handler; ``cancelled_by`` says who ended it,
    ``cancelled_at`` when the server learnt of it and ``noticed_at`` when the handler's code (or
    the plugin's cancellation-aware wait) saw it; times are ``time.monotonic()`` seconds.
    """

    method: str
    metadata: tuple[tuple[str, str | bytes], ...]
    deadline: float | None
    started: float = field(default_factory=time.monotonic)
    request: Any = None
    ended: float | None = None
    cancelled: bool = False
    cancelled_by: CancelledBy | None = None
    cancelled_at: float | None = None
    noticed_at: float | None = None
    outcome: Outcome = "running"
    code: grpc.StatusCode | None = None
    details: str | None = None
    exception: BaseException | None = field(default=None, repr=False)
    #: The pairing header's value when the call came through a recorded client channel.
    client_call_id: str | None = None
    #: The test made this call outlive its client on purpose: it met a gate (``hold``), a delay
    #: after the servicer, or a delay that ignores cancellation. A disagreement on such a call
    #: is expected, and the suite report counts it apart from surprises.
    provoked: bool = False
    #: the servicer called ``context.cancel()``
    _cancel_called: bool = field(default=False, repr=False)
    #: made by the first ``wait()`` while the call runs (most calls are never waited for)
    _done: threading.Event | None = field(default=None, repr=False)
    _waiters: list[tuple[asyncio.AbstractEventLoop, asyncio.Future[None]]] | None = field(
        default=None, repr=False
    )
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    #: the event loop an asyncio server's handler runs on (None for the sync server)
    _loop: asyncio.AbstractEventLoop | None = field(default=None, repr=False, compare=False)

    @property
    def duration(self) -> float | None:
        """Seconds from handler start to end (None while running)."""
        return None if self.ended is None else self.ended - self.started

    @property
    def time_to_notice(self) -> float | None:
        """Seconds from the cancellation to the handler seeing it (None: not cancelled, or the
        handler never looked)."""
        if self.cancelled_at is None or self.noticed_at is None:
            return None
        return max(0.0, self.noticed_at - self.cancelled_at)

    @property
    def time_to_stop(self) -> float | None:
        """Seconds from the cancellation to the handler's end (None: not cancelled, or running)."""
        if self.cancelled_at is None or self.ended is None:
            return None
        return max(0.0, self.ended - self.cancelled_at)

    def finish(
        self,
        outcome: Outcome,
        code: grpc.StatusCode | None = None,
        details: str | None = None,
        exception: BaseException | None = None,
    ) -> None:
        with self._lock:
            if self.outcome != "running":
                return
            self.outcome = outcome
            self.code = code
            self.details = details
            self.exception = exception
            self.ended = time.monotonic()
            waiters, self._waiters = self._waiters, None
            done = self._done
        if done is not None:
            done.set()
        for loop, future in waiters or ():
            loop.call_soon_threadsafe(_resolve, future)

    def mark_cancelled(self, by: CancelledBy | None = None) -> None:
        """The RPC ended under the handler (``by`` the server itself, or else the client or its
        deadline, told apart by the time); counts only while the handler runs, and the first
        word on who cancelled stays."""
        now = time.monotonic()
        with self._lock:
            if self.outcome != "running" or self.cancelled:
                return
            self.cancelled = True
            self.cancelled_at = now
            if by is None:
                passed = (
                    self.deadline is not None
                    and now >= self.started + self.deadline * (1 - DEADLINE_SHARE) - DEADLINE_SLACK
                )
                by = "deadline" if passed else "client"
            self.cancelled_by = by

    def cancel_called(self) -> None:
        """The servicer cancelled the call itself (``context.cancel()``)."""
        self._cancel_called = True
        self.mark_cancelled("server")
        self.notice()

    def notice(self) -> None:
        """The handler (or a cancellation-aware wait) saw the RPC end under it."""
        now = time.monotonic()
        with self._lock:
            if self.outcome == "running" and self.noticed_at is None:
                self.noticed_at = now

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the handler ends; False on timeout. On the event loop an asyncio server
        runs on, use ``await wait_async(timeout)``: blocking it would keep the handler from
        ending, so this raises."""
        with self._lock:
            if self.outcome != "running":
                return True
            if self._done is None:
                self._done = threading.Event()
            done = self._done
        if (timeout is None or timeout > 0) and self.on_own_loop():
            raise ServerStateError(
                "ServerCall.wait() would block the running event loop, which the asyncio server's "
                "handler needs to end; use `await call.wait_async(timeout)` instead"
            )
        return done.wait(timeout)

    def on_own_loop(self) -> bool:
        """Whether this code runs on the event loop the call's asyncio handler runs on, where a
        blocking wait would keep the handler from ending."""
        return self._loop is not None and _running_loop() is self._loop

    async def wait_async(self, timeout: float | None = None) -> bool:
        """Await the handler's end; False on timeout."""
        loop = asyncio.get_running_loop()
        with self._lock:
            if self.outcome != "running":
                return True
            future: asyncio.Future[None] = loop.create_future()
            if self._waiters is None:
                self._waiters = []
            self._waiters.append((loop, future))
        try:
            await asyncio.wait_for(asyncio.shield(future), timeout)
        except asyncio.TimeoutError:
            return False
        return True

    def __repr__(self) -> str:
        deadline = "none" if self.deadline is None else f"{self.deadline:.3f}s"
        code = self.code.name if self.code is not None else None
        return (
            f"ServerCall({self.method}, outcome={self.outcome!r}, code={code}, "
            f"cancelled={self.cancelled_by or False}, deadline={deadline})"
        )


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)
