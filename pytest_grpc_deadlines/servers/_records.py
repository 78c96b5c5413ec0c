"""What a test server saw of each call."""

from __future__ import annotations

import asyncio
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Literal

import grpc

from .._errors import ServerStateError

__all__ = ["Outcome", "ServerCall"]

#: "running"; "ok" (the handler returned); "abandoned" (a cancellation-aware wait or the
#: cancellation itself stopped the handler); "aborted" (it ended with a non-OK status);
#: "raised" (it raised).
Outcome = Literal["running", "ok", "abandoned", "aborted", "raised"]


@dataclass(eq=False)
class ServerCall:
    """One call as the server saw it; ``method`` is ``"pkg.Service/Method"``.

    ``deadline`` is the time the client left at handler start, in seconds (None when the client
    set none: the sync server's 9.22e18 and asyncio's None both mean "none"). ``cancelled`` is
    True when the client cancelled or its deadline passed before the handler ended.
    """

    method: str
    metadata: tuple[tuple[str, str | bytes], ...]
    deadline: float | None
    started: float = field(default_factory=time.monotonic)
    request: Any = None
    ended: float | None = None
    cancelled: bool = False
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
    _done: threading.Event = field(default_factory=threading.Event, repr=False)
    _waiters: list[tuple[asyncio.AbstractEventLoop, asyncio.Future[None]]] = field(
        default_factory=list, repr=False
    )
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    #: the event loop an asyncio server's handler runs on (None for the sync server)
    _loop: asyncio.AbstractEventLoop | None = field(default=None, repr=False, compare=False)

    @property
    def duration(self) -> float | None:
        """Seconds from handler start to end (None while running)."""
        return None if self.ended is None else self.ended - self.started

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
            waiters, self._waiters = self._waiters, []
        self._done.set()
        for loop, future in waiters:
            loop.call_soon_threadsafe(_resolve, future)

    def mark_cancelled(self) -> None:
        """The client went away; counts only while the handler runs."""
        with self._lock:
            if self.outcome == "running":
                self.cancelled = True

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the handler ends; False on timeout. On the event loop an asyncio server
        runs on, use ``await wait_async(timeout)``: blocking it would keep the handler from
        ending, so this raises."""
        if (timeout is None or timeout > 0) and not self._done.is_set() and self.on_own_loop():
            raise ServerStateError(
                "ServerCall.wait() would block the running event loop, which the asyncio server's "
                "handler needs to end; use `await call.wait_async(timeout)` instead"
            )
        return self._done.wait(timeout)

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
            f"cancelled={self.cancelled}, deadline={deadline})"
        )


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)
