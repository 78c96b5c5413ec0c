"""The timeout cascade model: settings, the rules that read them, resolution and its checks.

Layer contract: pure Python. Imports only the standard library and ``pytest_grpc_deadlines._errors``;
never grpc, protobuf, hypothesis or pytest. Everything above (servers, calls, the pytest plugin,
the strategies) may import it.

The names below are public through :mod:`pytest_grpc_deadlines`; the modules are private.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._errors import CascadeError
from ._cascade import (
    DAGSTER,
    Binding,
    Cascade,
    Check,
    Finding,
    Process,
    Resolved,
    Setting,
)
from ._rules import Flag, Max, Ref, Rule, Seconds, Text, ValueRule, WholeNumber

if TYPE_CHECKING:
    from ._invariants import Violation, check

__all__ = [
    "DAGSTER",
    "Binding",
    "Cascade",
    "CascadeError",
    "Check",
    "Finding",
    "Flag",
    "Max",
    "Process",
    "Ref",
    "Resolved",
    "Rule",
    "Seconds",
    "Setting",
    "Text",
    "ValueRule",
    "Violation",
    "WholeNumber",
    "check",
]


def __getattr__(name: str) -> object:
    # the checks load on first use: the plugin does not need them to start
    if name in ("Violation", "check"):
        from . import _invariants

        return getattr(_invariants, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
