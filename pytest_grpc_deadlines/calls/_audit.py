"""The deadline audit: which of a test's calls had no deadline, or one too long to be useful.

Pure logic; the plugin applies it after each test.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ._client import ClientCall

import fnmatch
import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Literal, NamedTuple

from .._checks import shown
from .._errors import OverrideError

__all__ = [
    "AuditPolicy",
    "audit",
    "exempt_method",
    "finding",
    "parse_ini_policy",
    "parse_marker_policy",
    "report",
]

Mode = Literal["off", "fail", "warn"]


class AuditPolicy(NamedTuple):
    """What the deadline audit fails or warns: its mode, the longest deadline, exempt methods.

    (A named tuple, not a dataclass: it is made when the plugin loads, and cheaper to define.)
    """

    mode: Mode = "off"
    max_seconds: float | None = None
    exempt: tuple[str, ...] = ()


def _seconds(value: object, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise OverrideError(f"{where}: {shown(value)} is not a number of seconds (e.g. 30)")
    try:
        seconds = float(value)
    except ValueError:
        raise OverrideError(f"{where}: {shown(value)} is not a number of seconds (e.g. 30)") from None
    except OverflowError:  # an int beyond float's range
        seconds = math.inf
    if not math.isfinite(seconds) or seconds <= 0:
        raise OverrideError(f"{where}: {shown(value)} must be a finite number of seconds above 0")
    return seconds


def parse_ini_policy(mode: str, max_deadline: str, exempt: Iterable[str]) -> AuditPolicy:
    """From ini ``grpc_require_deadlines``, ``grpc_max_deadline``, ``grpc_deadline_exempt_methods``."""
    text = mode.strip().lower()
    modes: Mapping[str, Mode] = {"true": "fail", "false": "off", "warn": "warn", "": "off"}
    if text not in modes:
        raise OverrideError(f"ini grpc_require_deadlines: {mode!r} is not accepted; use true, warn or false")
    seconds = _seconds(max_deadline.strip(), "ini grpc_max_deadline") if max_deadline.strip() else None
    return AuditPolicy(modes[text], seconds, tuple(p.strip() for p in exempt if p.strip()))


def parse_marker_policy(
    base: AuditPolicy, args: Sequence[object], kwargs: Mapping[str, object], where: str
) -> AuditPolicy:
    """Apply ``@pytest.mark.grpc_require_deadlines(enabled=True, /, *, max_seconds=None)``."""
    prefix = f"@pytest.mark.grpc_require_deadlines {where}"
    if len(args) > 1:
        raise OverrideError(f"{prefix}: takes at most one positional argument (enabled), got {len(args)}")
    unknown = sorted(set(kwargs) - {"max_seconds"})
    if unknown:
        raise OverrideError(
            f"{prefix}: unknown keyword {unknown[0]!r}; accepted: enabled (positional), max_seconds"
        )
    enabled = args[0] if args else True
    if not isinstance(enabled, bool):
        raise OverrideError(f"{prefix}: enabled={shown(enabled)} is not accepted; use True or False")
    if not enabled:
        return base._replace(mode="off")
    max_seconds = base.max_seconds
    if kwargs.get("max_seconds") is not None:
        max_seconds = _seconds(kwargs["max_seconds"], f"{prefix}: max_seconds")
    return base._replace(mode="fail", max_seconds=max_seconds)


def exempt_method(call: ClientCall, policy: AuditPolicy) -> bool:
    """Whether ``call``'s method is one ini grpc_deadline_exempt_methods exempts."""
    return any(fnmatch.fnmatchcase(call.method, pattern.lstrip("/")) for pattern in policy.exempt)


def finding(call: ClientCall, policy: AuditPolicy) -> str | None:
    """Why ``call`` breaks ``policy`` (None when it does not)."""
    if call.internal or exempt_method(call, policy):
        return None
    if call.timeout is None:
        problem = "no deadline"
    elif not _representable(call.timeout):
        problem = f"a deadline grpc cannot represent ({call.timeout:g} s: the call fails at once)"
    elif policy.max_seconds is not None and call.timeout > policy.max_seconds:
        problem = f"a {call.timeout:g} s deadline, above the {policy.max_seconds:g} s maximum"
    else:
        return None
    via = f" (via {call.library_site})" if call.library_site and call.library_site != call.site else ""
    return f"{call.method} to {call.target} with {problem}, at {call.site}{via}"


def audit(calls: Iterable[ClientCall], policy: AuditPolicy, test: str) -> tuple[str, str] | None:
    """The audit's message for a test and the site of its first flagged call (None when every
    call passes)."""
    if policy.mode == "off":
        return None
    flagged = [(call, found) for call in calls if (found := finding(call, policy)) is not None]
    if not flagged:
        return None
    lines = "\n".join(f"  {found}" for _, found in flagged)
    limit = policy.max_seconds
    if limit is not None and all(c.timeout is not None and c.timeout > limit for c, _ in flagged):
        message = (
            f"grpc_require_deadlines: {test} made {len(flagged)} RPC(s) with a deadline above "
            f"{limit:g} s:\n{lines}\nPass a timeout of at most {limit:g} s "
            "on each call (or exempt the method with ini grpc_deadline_exempt_methods)."
        )
    else:
        message = (
            f"grpc_require_deadlines: {test} made {len(flagged)} RPC(s) without a usable deadline:\n"
            f"{lines}\nPass timeout= on each call (or exempt the method with ini "
            "grpc_deadline_exempt_methods)."
        )
    return message, flagged[0][0].site


def report(calls: Iterable[ClientCall], policy: AuditPolicy, test: str) -> str | None:
    """The audit's message for a test (None when every call passes)."""
    found = audit(calls, policy, test)
    return None if found is None else found[0]


def _representable(seconds: float) -> bool:
    from ..cascade._invariants import representable

    return representable(seconds)
