"""What breaks in production for a resolved cascade: errors and warnings, each in words."""

from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass
from typing import Literal

from ._cascade import INT32_MAX, Max, Resolved, Setting

__all__ = ["INT32_MAX", "Violation", "check"]

#: grpc fails a call at once when its timeout is this large or infinite (grpc#26236).
UNREPRESENTABLE_TIMEOUT = 1e10
#: grpc turns a timeout into a wall-clock deadline in int64 nanoseconds since the epoch: one that
#: lands past 2**63 ns (about 7.4e9 s from now, in 2026) fails the call at once too.
_LAST_DEADLINE = 2**63 / 1e9


def representable(timeout: float, now: float | None = None) -> bool:
    """Whether grpc can represent a call's ``timeout`` started at ``now`` (epoch seconds)."""
    if not math.isfinite(timeout) or timeout >= UNREPRESENTABLE_TIMEOUT:
        return False
    return (time.time() if now is None else now) + timeout < _LAST_DEADLINE


Severity = Literal["error", "warning"]


@dataclass(frozen=True)
class Violation:
    """One broken invariant: ``error`` (a value the reader would refuse) or ``warning``."""

    severity: Severity
    settings: tuple[str, ...]
    message: str

    def __str__(self) -> str:
        return f"{self.severity}: {self.message}"


def check(resolved: Resolved) -> list[Violation]:
    """Every error and warning for ``resolved``, in cascade order."""
    out: list[Violation] = []
    for setting in resolved.cascade.settings:
        if setting.name in resolved.errors:
            out.append(Violation("error", (setting.name,), str(resolved.errors[setting.name])))
            continue
        value = resolved[setting.name]
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            continue
        if setting.kind in ("seconds", "grace") and isinstance(value, float) and math.isnan(value):
            out.append(Violation("warning", (setting.name,), f"{setting.name} nan: not a number of seconds"))
            continue
        if setting.kind == "seconds":
            out.extend(_timeout(setting, value))
        elif setting.kind == "grace":
            out.extend(_grace(setting, value))
        elif setting.kind == "bytes" and isinstance(value, int):
            out.extend(_byte_limit(setting, value))
        if isinstance(setting.default, Max) and resolved.is_explicit(setting.name):
            out.extend(_floor(resolved, setting, setting.default, value))
    for cascade_check in resolved.cascade.checks:
        out.extend(
            Violation(severity, settings, message) for severity, settings, message in cascade_check(resolved)
        )
    return out


def _number(value: float) -> str:
    """An int as it is, a float the short way (1e+11, 0.5, inf)."""
    return str(value) if isinstance(value, int) else f"{value:g}"


def _timeout(setting: Setting, value: float) -> list[Violation]:
    name = setting.name
    if value < 0:
        text = (
            f"{name} {_number(value)} < 0: every call with this timeout fails at once with DEADLINE_EXCEEDED"
        )
    elif value == 0:
        text = (
            f"{name} 0: every call with this timeout fails with DEADLINE_EXCEEDED unless it "
            "returns instantly (grpcio lets those through)"
        )
    elif not representable(value):
        text = (
            f"{name} {_number(value)}: grpc cannot represent a deadline that far (1e10 s and more, or past "
            "2**63 ns since the epoch: about 7.4e9 s from now) and fails every call with this "
            "timeout at once with DEADLINE_EXCEEDED"
        )
    else:
        return []
    return [Violation("warning", (name,), text)]


def _grace(setting: Setting, value: float) -> list[Violation]:
    """A shutdown grace period: how long a stopping server lets in-flight calls finish."""
    name = setting.name
    if value > threading.TIMEOUT_MAX:
        return [
            Violation(
                "error",
                (name,),
                f"{name} {_number(value)} is longer than Python can wait ({threading.TIMEOUT_MAX:g} s): "
                "grpc's shutdown thread dies with OverflowError and the server does not stop",
            )
        ]
    if value <= 0:
        text = (
            f"{name} {_number(value)}: a stopping server does not wait: calls in flight are cancelled at "
            "once (the client gets UNAVAILABLE)"
        )
        return [Violation("warning", (name,), text)]
    return []


def _byte_limit(setting: Setting, value: int) -> list[Violation]:
    name = setting.name
    if value > INT32_MAX or value < -INT32_MAX - 1:
        return [
            Violation(
                "error",
                (name,),
                f"{name} {value} is outside grpc's 32-bit range (-2147483648 to {INT32_MAX}): "
                "grpc raises OverflowError when the server or channel is created",
            )
        ]
    if value == 0:
        text = f"{name} 0: every message is rejected with RESOURCE_EXHAUSTED ('(4 vs. 0)')"
    elif value < -1:
        text = (
            f"{name} {value} < -1: version-dependent (grpcio 1.44 ignores it and keeps the "
            "4 MiB default; 1.85 treats it as unlimited); use -1 for unlimited"
        )
    else:
        return []
    return [Violation("warning", (name,), text)]


def _floor(resolved: Resolved, setting: Setting, rule: Max, value: float) -> list[Violation]:
    """One warning when an explicit value is below a term of its own default rule.

    Terms that cannot be read (an invalid setting, already reported as an error) are left out.
    """
    terms: list[tuple[int | str, int]] = []
    for rule_term in rule.terms:
        if isinstance(rule_term, str) and rule_term in resolved.errors:
            continue
        read = resolved[rule_term] if isinstance(rule_term, str) else rule_term
        if isinstance(read, int) and not isinstance(read, bool):
            terms.append((rule_term, read))
    above = [(t, v) for t, v in terms if v > value]
    if not above:
        return []
    term, term_value = max(above, key=lambda tv: tv[1])

    def label(t: int | str, v: int) -> str:
        return f"{t} {v}" if isinstance(t, str) else str(v)

    text = f"{setting.name} {value} < {label(term, term_value)}"
    if setting.floor_consequence:
        text += ": " + setting.floor_consequence.format(
            name=setting.name, value=value, term=term, term_value=term_value
        )
    others = [label(t, v) for t, v in above if t != term]
    if others:
        text += f" (also below {', '.join(others)})"
    names = (setting.name, *tuple(t for t, _ in above if isinstance(t, str)))
    return [Violation("warning", names, text)]
