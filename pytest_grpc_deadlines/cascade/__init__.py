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
from ._rules import Flag, Max, Milliseconds, OrDefault, Ref, Rule, Seconds, Text, ValueRule, WholeNumber

if TYPE_CHECKING:
    from ._builtins import GRPC_SIMPLE_STUBS, OTEL_OTLP
    from ._invariants import Violation, check

__all__ = [
    "DAGSTER",
    "GRPC_SIMPLE_STUBS",
    "OTEL_OTLP",
    "Binding",
    "Cascade",
    "CascadeError",
    "Check",
    "Finding",
    "Flag",
    "Max",
    "Milliseconds",
    "OrDefault",
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
    # the checks and the other built-in cascades load on first use: the plugin starts without
    if name in ("Violation", "check"):
        from . import _invariants

        return getattr(_invariants, name)
    if name in ("GRPC_SIMPLE_STUBS", "OTEL_OTLP"):
        from . import _builtins

        return getattr(_builtins, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
