"""pytest-grpc-deadlines: test how gRPC code behaves around deadlines.

The plugin itself is registered through the ``pytest11`` entry point; this package exports the
cascade model, its checks and the conformance helper. Nothing here imports hypothesis until
``assert_cascade_conforms`` is used.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .cascade import (
    DAGSTER,
    Binding,
    Cascade,
    CascadeError,
    Max,
    Ref,
    Resolved,
    Setting,
    ValueRule,
    WholeNumber,
)
from .errors import GrpcDeadlinesWarning
from .invariants import Violation, check

if TYPE_CHECKING:
    from .conformance import assert_cascade_conforms

__version__ = "0.1.0"

__all__ = [
    "DAGSTER",
    "Binding",
    "Cascade",
    "CascadeError",
    "GrpcDeadlinesWarning",
    "Max",
    "Ref",
    "Resolved",
    "Setting",
    "ValueRule",
    "Violation",
    "WholeNumber",
    "__version__",
    "assert_cascade_conforms",
    "check",
]


def __getattr__(name: str) -> object:
    if name == "assert_cascade_conforms":
        from .conformance import assert_cascade_conforms

        return assert_cascade_conforms
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
