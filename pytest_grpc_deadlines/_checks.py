"""Argument validation shared by every layer: each check raises
:class:`~pytest_grpc_deadlines._errors.ArgumentError` with a message naming the argument, the
value given and what is accepted."""

from __future__ import annotations

import ipaddress
import math
import os
from collections.abc import Iterable, Iterator, Mapping, MutableMapping
from contextlib import contextmanager

from ._errors import ArgumentError

__all__ = [
    "check_flag",
    "check_optional_positive_int",
    "check_seconds",
    "check_wait",
    "is_loopback",
    "scoped_environ",
    "shown",
    "write_environ",
]


def check_flag(value: object, what: str) -> bool:
    """``value`` if it is True or False."""
    if not isinstance(value, bool):
        raise ArgumentError(f"{what}={value!r} must be True or False")
    return value


def check_seconds(value: object, what: str, *, negative: bool = False) -> float:
    """A finite number of seconds (not a bool); >= 0 unless ``negative``."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ArgumentError(f"{what}={value!r} must be a finite number of seconds")
    if value < 0 and not negative:
        raise ArgumentError(f"{what}={value!r} must not be negative")
    return float(value)


def check_wait(value: object, what: str) -> float:
    """Seconds to wait: a number >= 0, not NaN; ``inf`` and anything past what the platform can
    wait (an int too large for a float included) mean "until the call ends"."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ArgumentError(f"{what}={value!r} must be a number of seconds >= 0")
    try:
        seconds = float(value)
    except OverflowError:  # an int beyond float's range
        return math.inf
    if math.isnan(seconds):
        raise ArgumentError(f"{what}={value!r} is not a number of seconds; give a number >= 0")
    if seconds < 0:
        raise ArgumentError(f"{what}={value!r} must not be negative")
    return seconds


def check_optional_positive_int(value: object, what: str) -> int | None:
    """None, or a positive int (not a bool)."""
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
        raise ArgumentError(f"{what}={value!r} must be None or a positive int")
    return value


@contextmanager
def scoped_environ(names: Iterable[str], values: Mapping[str, str]) -> Iterator[None]:
    """Remove ``names`` from ``os.environ``, set ``values``, and put every variable back as it
    was on exit."""
    saved = {name: os.environ.get(name) for name in (*names, *values)}
    try:
        for name in names:
            os.environ.pop(name, None)
        os.environ.update(values)
        yield
    finally:
        write_environ(os.environ, saved)


def write_environ(environ: MutableMapping[str, str], texts: Mapping[str, str | None]) -> None:
    """Set each variable of ``texts`` in ``environ``: to its text, or absent where it is None."""
    for name, text in texts.items():
        if text is None:
            environ.pop(name, None)
        else:
            environ[name] = text


#: Longer reprs are clipped in messages, keeping both ends and saying how long the whole is.
_SHOWN_MAX = 80


def shown(value: object) -> str:
    """``repr(value)`` for an error message, clipped when long, also for a value whose repr
    fails (an int of more than 4300 digits raises ValueError there)."""
    try:
        text = repr(value)
    except Exception:
        if isinstance(value, tuple):
            return f"({', '.join(map(shown, value))}{',' if len(value) == 1 else ''})"
        if isinstance(value, int):
            return f"<an int of {value.bit_length()} bits>"
        return f"<a {type(value).__name__} whose repr fails>"
    if len(text) <= _SHOWN_MAX:
        return text
    return f"{text[:40]}...{text[-20:]} ({len(text)} characters)"


def is_loopback(host: str) -> bool:
    """Whether ``host`` (``localhost`` or an IP address) is a loopback address."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
