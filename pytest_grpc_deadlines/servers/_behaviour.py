"""What a test server does per method: delays, stream intervals, holds and faults.

Pure bookkeeping shared by the sync and asyncio servers; the waiting itself lives with each
server.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Literal

import grpc

from .._checks import check_flag, check_seconds, check_wait
from .._errors import ArgumentError, MethodError

__all__ = ["Chosen", "Fault", "Jitter", "MethodError", "choose", "jitter", "method_name"]

When = Literal["before", "after"]


def method_name(method: str, hosted: Iterable[str]) -> str:
    """Normalise ``"pkg.Service/Method"`` or ``"/pkg.Service/Method"`` to the wire form
    ``"/pkg.Service/Method"``, checking that the server hosts it."""
    if not isinstance(method, str):
        raise MethodError(f"method must be a str like 'pkg.Service/Method', not {method!r}")
    full = method if method.startswith("/") else f"/{method}"
    hosted = sorted(hosted)
    if full not in hosted:
        listing = ", ".join(h.lstrip("/") for h in hosted) or "(none)"
        raise MethodError(f"unknown method {method!r}; this server hosts: {listing}")
    return full


@dataclass(frozen=True)
class Jitter:
    """Delays drawn uniformly from ``[mean - spread, mean + spread]`` (floored at 0), seeded."""

    mean: float
    spread: float
    seed: int | None = None


def jitter(mean: float, spread: float, *, seed: int | None = None) -> Jitter:
    """A seeded jittered delay for ``server.delay(method, jitter(0.1, 0.05, seed=1))``."""
    return Jitter(check_seconds(mean, "jitter mean"), check_seconds(spread, "jitter spread"), seed)


class Chosen:
    """Which of a method's calls a behaviour applies to: after the first ``skip`` calls, the next
    ``times`` (None: every one). Each attempt of a call grpc retries is a call here."""

    def __init__(self, times: int | None = None, skip: int = 0) -> None:
        self.times = times
        self.skip = skip
        self._seen = 0
        self._lock = threading.Lock()

    def take(self) -> bool:
        """Whether the call arriving now is chosen (and count it)."""
        with self._lock:
            seen, self._seen = self._seen, self._seen + 1
        return seen >= self.skip and (self.times is None or seen < self.skip + self.times)

    def __repr__(self) -> str:
        return f"Chosen(times={self.times}, skip={self.skip})"


def choose(times: object, skip: object) -> Chosen:
    """The calls ``times=`` and ``skip=`` choose, checked."""
    if times is not None and (isinstance(times, bool) or not isinstance(times, int) or times < 1):
        raise ArgumentError(f"times={times!r} must be None (every call) or a positive int")
    if isinstance(skip, bool) or not isinstance(skip, int) or skip < 0:
        raise ArgumentError(f"skip={skip!r} must be an int >= 0 (the calls to let through first)")
    return Chosen(times, skip)


class Delay:
    """One method's delay: a number, a sequence (one per call, last repeats) or a Jitter."""

    def __init__(
        self,
        seconds: float | Sequence[float] | Jitter,
        when: When,
        honor_cancellation: bool,
        chosen: Chosen | None = None,
    ):
        if when not in ("before", "after"):
            raise ArgumentError(f"when={when!r} is not accepted; use 'before' or 'after'")
        check_flag(honor_cancellation, "honor_cancellation")
        self.when = when
        self.honor_cancellation = honor_cancellation
        self.chosen = chosen or Chosen()
        self._lock = threading.Lock()
        self._jitter: random.Random | None = None
        self._values: list[float] = []
        if isinstance(seconds, Jitter):
            self._spec: Jitter | None = seconds
            self._jitter = random.Random(seconds.seed)
        elif isinstance(seconds, (list, tuple)):
            if not seconds:
                raise ArgumentError("a delay sequence needs at least one value")
            self._spec = None
            self._values = [check_wait(v, "delay") for v in seconds]
        else:
            self._spec = None
            self._values = [check_wait(seconds, "delay")]

    def next(self) -> float:
        with self._lock:
            if self._jitter is not None and self._spec is not None:
                low = self._spec.mean - self._spec.spread
                return max(0.0, self._jitter.uniform(low, self._spec.mean + self._spec.spread))
            value = self._values[0]
            if len(self._values) > 1:
                self._values.pop(0)
            return value


@dataclass
class Fault:
    """Fail a method's chosen calls with ``code``."""

    code: grpc.StatusCode
    details: str = ""
    after_messages: int = 0
    chosen: Chosen = field(default_factory=Chosen)

    def take(self) -> bool:
        """Whether this call fails (and count it)."""
        return self.chosen.take()


def make_fault(code: object, details: str, times: int | None, after_messages: int, skip: int = 0) -> Fault:
    if not isinstance(code, grpc.StatusCode) or code is grpc.StatusCode.OK:
        accepted = ", ".join(c.name for c in grpc.StatusCode if c is not grpc.StatusCode.OK)
        raise ArgumentError(f"code={code!r} is not accepted; use a grpc.StatusCode other than OK: {accepted}")
    if not isinstance(details, str):
        raise ArgumentError(f"details={details!r} must be a str")
    chosen = choose(times, skip)
    if isinstance(after_messages, bool) or not isinstance(after_messages, int) or after_messages < 0:
        raise ArgumentError(f"after_messages={after_messages!r} must be an int >= 0")
    return Fault(code, details, after_messages, chosen)
