"""Hops: a call that a handler of one of the plugin's servers made while serving another, judged
on whether it passed the deadline on.

Python's grpc does not propagate deadlines: a handler that calls another service must give the
call a timeout itself, no later than its own deadline (``context.time_remaining()``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from .._checks import shown
from .._errors import CascadeError, OverrideError

if TYPE_CHECKING:
    from ..cascade._cascade import Cascade, Resolved
    from ..servers._records import ServerCall
    from ._client import ClientCall

__all__ = [
    "HOP_SHARE",
    "HOP_SLACK",
    "PROBLEMS",
    "Hop",
    "HopVerdict",
    "cascade_finding",
    "hop_verdict",
    "hops_of",
    "parse_propagation_ini",
    "parse_propagation_marker",
    "propagation_audit",
]

#: "propagated": the child's deadline is no later than the parent's; "no deadline": the parent
#: had one and the child has none; "over budget": the child's deadline ends after the parent's;
#: "parent had none": nothing to pass on (reported, never a failure).
HopVerdict = Literal["propagated", "no deadline", "over budget", "parent had none"]
#: the verdicts that fail a test under ``grpc_require_propagation``
PROBLEMS: frozenset[str] = frozenset({"no deadline", "over budget"})
#: "off", "fail" or "warn", as ini ``grpc_require_propagation`` and its marker set it
Mode = Literal["off", "fail", "warn"]

#: A child deadline past the parent's by at most this many seconds, or this share of the time
#: the parent had left (whichever is larger), still counts as passed on: the handler reads
#: ``time_remaining()`` a moment before the child call starts, and the server's view of its own
#: deadline already includes grpc's rounding of the header (up to about 1%).
HOP_SLACK = 0.01
HOP_SHARE = 0.01


@dataclass(frozen=True)
class Hop:
    """``child``, a call made by the handler of ``parent``; ``time_left`` is the time the
    parent's deadline had left when the child started (None: the parent had none)."""

    child: ClientCall
    parent: ServerCall
    verdict: HopVerdict

    @property
    def time_left(self) -> float | None:
        return self.child.parent_time_left

    def __repr__(self) -> str:
        left = "none" if self.time_left is None else f"{self.time_left:.3f}s"
        timeout = "none" if self.child.timeout is None else f"{self.child.timeout:g}s"
        return (
            f"Hop({self.parent.method} -> {self.child.method}, {self.verdict!r}, "
            f"parent had {left} left, child timeout {timeout}, at {self.child.site})"
        )


def hop_verdict(child: ClientCall) -> HopVerdict | None:
    """The verdict on a call a handler made (None: not made by a handler of the plugin's)."""
    if child.parent is None:
        return None
    left = child.parent_time_left
    if left is None:
        return "parent had none"
    if child.timeout is None:
        return "no deadline"
    if child.timeout > left + _tolerance(left):
        return "over budget"
    return "propagated"


def hops_of(calls: Iterable[ClientCall]) -> list[Hop]:
    """The hops among ``calls``, in call order."""
    out: list[Hop] = []
    for call in calls:
        verdict = hop_verdict(call)
        if verdict is not None and call.parent is not None:
            out.append(Hop(call, call.parent, verdict))
    return out


def parse_propagation_ini(text: str) -> Mode:
    """From ini ``grpc_require_propagation``: true, warn or false."""
    modes: Mapping[str, Mode] = {"true": "fail", "false": "off", "warn": "warn", "": "off"}
    mode = modes.get(text.strip().lower())
    if mode is None:
        raise OverrideError(
            f"ini grpc_require_propagation: {text!r} is not accepted; use true, warn or false"
        )
    return mode


def parse_propagation_marker(
    base: Mode, args: Sequence[object], kwargs: Mapping[str, object], where: str
) -> Mode:
    """Apply ``@pytest.mark.grpc_require_propagation(enabled=True, /)``."""
    prefix = f"@pytest.mark.grpc_require_propagation {where}"
    if kwargs:
        raise OverrideError(
            f"{prefix}: unknown keyword {sorted(kwargs)[0]!r}; accepted: enabled (positional)"
        )
    if len(args) > 1:
        raise OverrideError(f"{prefix}: takes at most one positional argument (enabled), got {len(args)}")
    enabled = args[0] if args else True
    if not isinstance(enabled, bool):
        raise OverrideError(f"{prefix}: enabled={shown(enabled)} is not accepted; use True or False")
    return "fail" if enabled else "off"


def _problem(hop: Hop) -> str:
    left = hop.time_left if hop.time_left is not None else 0.0
    if hop.child.timeout is None:
        sent = "no deadline"
    else:
        sent = f"a {hop.child.timeout:g} s deadline, {hop.child.timeout - left:.3f} s past the parent's"
    return (
        f"{hop.child.method} to {hop.child.target}, made while serving {hop.parent.method} with "
        f"{left:.3f} s left, sent {sent}, at {hop.child.site}"
    )


def _tolerance(seconds: float) -> float:
    return max(HOP_SLACK, HOP_SHARE * max(seconds, 0.0))


def cascade_finding(call: ClientCall, cascade: Cascade, resolved: Resolved) -> str | None:
    """Why ``call``'s timeout does not follow ``cascade`` (None when it does, or when no setting
    governs its method): it must carry its setting's value or, made while serving a call with
    less time left, that time; within 10 ms or 1%, whichever is larger."""
    setting = cascade.setting_for(call.method)
    if setting is None or call.internal:
        return None
    try:
        value = resolved[setting]
    except CascadeError:  # a bad value: the test that resolves it reports it
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    expected = float(value)
    left = call.parent_time_left
    sent = call.timeout
    target = expected if left is None else min(expected, max(left, 0.0))
    if sent is not None and abs(sent - target) <= _tolerance(target):
        return None
    if target < expected:
        wanted = (
            f"{target:.3f} s (what the served call had left; the {setting} setting is "
            f"{expected:g} s: {resolved.source(setting)})"
        )
    else:
        wanted = f"{expected:g} s (the {setting} setting: {resolved.source(setting)})"
    shown_sent = "no deadline" if sent is None else f"{sent:g} s"
    return f"{call.method} to {call.target} sent {shown_sent}, expected {wanted}, at {call.site}"


def propagation_audit(
    calls: Iterable[ClientCall],
    test: str,
    cascade: Cascade | None = None,
    resolved: Resolved | None = None,
) -> tuple[str, str] | None:
    """The message for a test whose servers' handlers did not pass a deadline on, or whose calls'
    timeouts do not follow ``cascade`` (resolved as ``resolved``), and the site of the first
    such call (None when there is none)."""
    calls = list(calls)
    bad = [hop for hop in hops_of(calls) if hop.verdict in PROBLEMS]
    off: list[tuple[ClientCall, str]] = []
    if cascade is not None and resolved is not None and cascade.method_settings:
        off = [(call, found) for call in calls if (found := cascade_finding(call, cascade, resolved))]
    if not bad and not off:
        return None
    parts: list[str] = []
    if bad:
        lines = "\n".join(f"  {_problem(hop)}" for hop in bad)
        parts.append(
            f"grpc_require_propagation: {test} made {len(bad)} call(s) while serving a call without "
            f"passing its deadline on:\n{lines}\nGive each call a timeout of at most the handler's "
            "context.time_remaining()."
        )
    if off and cascade is not None:
        lines = "\n".join(f"  {found}" for _, found in off)
        parts.append(
            f"grpc_require_propagation: {test} made {len(off)} call(s) whose timeout does not follow "
            f"the {cascade.name} cascade:\n{lines}\nGive each call its setting's timeout, or what is "
            "left of the served call's deadline when that is less."
        )
    first = bad[0].child.site if bad else off[0][0].site
    return "\n".join(parts), first
