"""A client call's record: what the code under test asked grpc for, and how it ended."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, Protocol

if TYPE_CHECKING:
    from ..servers._records import ServerCall

__all__ = ["ClientCall", "TimeoutSource"]


class _Attempts(Protocol):
    """Where a call's server records are kept (the recorder)."""

    def attempts(self, call_id: str | None) -> tuple[ServerCall, ...]: ...


#: Who set the deadline grpc sent: ``"call"`` (the call carried it when it reached grpc: given by
#: the caller, or by an interceptor that ran before the recording one), ``"interceptor"`` (an
#: interceptor is known to have set or changed it), ``"service config"`` (the channel's service
#: config ``methodConfig.timeout`` is shorter than the call's deadline, or the call has none).
TimeoutSource = Literal["call", "interceptor", "service config"]


@dataclass(eq=False, slots=True)
class ClientCall:
    """One RPC as the client made it. ``timeout`` is the deadline grpc sent, in seconds (None:
    no deadline) and ``timeout_source`` who set it; ``code`` is None while the call runs;
    ``site`` is the user's ``file:line`` and ``library_site`` the frame in installed code that
    made the call, when it differs; ``test`` the node id it belongs to (None for a background
    call, whose ``thread`` names the thread that made it)."""

    # The recorder makes one per call with positional arguments up to ``started``: keep these
    # fields in this order.
    method: str
    target: str
    timeout: float | None
    site: str
    test: str | None
    aio: bool = False
    call_id: str | None = None
    internal: bool = False
    timeout_source: TimeoutSource | None = None
    library_site: str | None = None
    thread: str = ""
    background: bool = False
    started: float = field(default_factory=time.monotonic)
    code: Any = None  # grpc.StatusCode, once the call ended
    details: str | None = None
    elapsed: float | None = None
    #: the server call whose handler made this call (a hop), and the seconds left on its
    #: deadline when this call started (None: it had none)
    parent: ServerCall | None = field(default=None, repr=False)
    parent_time_left: float | None = None
    _settle: Callable[[], None] | None = field(default=None, repr=False)
    _recorder: _Attempts | None = field(default=None, repr=False)

    @property
    def wire_faults(self) -> tuple[str, ...]:
        """The faults a wire proxy in front of this call's target had in force while it ran
        (``"latency down 0.2 s"``, ``"hold down"``, ...); () without a proxy there."""
        from ..wire import faults_during

        end = None if self.elapsed is None else self.started + self.elapsed
        return faults_during(self.target, self.started, end)

    @property
    def attempts(self) -> tuple[ServerCall, ...]:
        """The test server's record of each attempt of this call (grpc's retry policy makes
        more than one), in arrival order; empty for a call no plugin server saw."""
        return () if self._recorder is None else self._recorder.attempts(self.call_id)

    def finish(self, code: Any, details: str | None) -> None:
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
