"""The timeout cascade model: settings, the rules that read them, resolution and its checks.

Layer contract: pure Python. Imports only the standard library and ``pytest_grpc_deadlines._errors``;
never grpc, protobuf, hypothesis or pytest. Everything above (servers, calls, the pytest plugin,
the strategies) may import it.

The names below are public through :mod:`pytest_grpc_deadlines`; the modules are private.
"""

from __future__ import annotations

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
from ._invariants import Violation, check
from ._rules import Flag, Max, Ref, Rule, Seconds, Text, ValueRule, WholeNumber

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
