"""What the servers tell whoever records client calls: which targets they serve, which threads run
their handlers, and each server call that carries the pairing header.

The ``calls`` layer reads this and registers its listener; the servers never import that layer.
Light on purpose (no grpc), so the recorder can import it at start-up.
"""

from __future__ import annotations

import contextlib
import contextvars
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ._records import ServerCall

__all__ = [
    "CALL_ID_HEADER",
    "announce",
    "bind",
    "bound_targets",
    "is_serving",
    "on_call",
    "serve_in_task",
    "served_call",
    "serves",
    "serving",
    "unbind",
]

#: The request header that pairs a client call with the test server's record of it.
CALL_ID_HEADER = "x-grpc-deadlines-call"

_targets: set[str] = set()
_listeners: list[Callable[[ServerCall], None]] = []
_serving = threading.local()


def bind(target: str) -> None:
    """A server now serves ``target``."""
    _targets.add(target)


def unbind(target: str) -> None:
    """The server on ``target`` is gone."""
    _targets.discard(target)


#: ``serves(target)``: whether one of the plugin's servers is bound to ``target`` now. (The set's
#: own method: asked on every recorded call.)
serves: Callable[[str], bool] = _targets.__contains__


def bound_targets() -> frozenset[str]:
    """Every target the plugin's servers are bound to now."""
    return frozenset(_targets)


def on_call(listener: Callable[[ServerCall], None]) -> None:
    """Call ``listener`` with each server call that carries :data:`CALL_ID_HEADER`, as it starts."""
    _listeners.append(listener)


def announce(call: ServerCall) -> None:
    """Tell the listeners of a paired server call."""
    for listener in _listeners:
        listener(call)


#: The server call whose handler runs here: set on the sync server's worker thread and in the
#: asyncio handler's task, so that a call the handler's code makes is linked to it. A thread the
#: handler starts does not inherit it; ``contextvars.copy_context().run(...)`` carries it over.
_SERVED: contextvars.ContextVar[ServerCall | None] = contextvars.ContextVar(
    "pytest_grpc_deadlines_served", default=None
)


class serving:  # lower case: used as a function, ``with serving(call):``
    """Mark this thread as running a handler of one of the plugin's servers (``call``'s).

    A class, not a generator-based context manager: it is entered once per served call."""

    __slots__ = ("_call", "_depth", "_token")

    def __init__(self, call: ServerCall | None = None) -> None:
        self._call = call
        self._depth = 0
        self._token: contextvars.Token[ServerCall | None] | None = None

    def __enter__(self) -> None:
        self._depth = getattr(_serving, "depth", 0)
        _serving.depth = self._depth + 1
        if self._call is not None:
            self._token = _SERVED.set(self._call)

    def __exit__(self, *exc_info: object) -> None:
        _serving.depth = self._depth
        if self._token is not None:
            # a response stream closed from another context: nothing to undo there
            with contextlib.suppress(ValueError):
                _SERVED.reset(self._token)


#: ``served_call()``: the server call whose handler is running the code that asks, if any. (The
#: variable's own method: asked on every recorded call.)
served_call: Callable[[], ServerCall | None] = _SERVED.get


def serve_in_task(call: ServerCall) -> None:
    """Link the calls the running asyncio handler task makes to ``call`` (the task's context is
    its own, so nothing needs undoing)."""
    _SERVED.set(call)


def is_serving() -> bool:
    """Whether this thread is running a handler of one of the plugin's servers."""
    return bool(getattr(_serving, "depth", 0))
