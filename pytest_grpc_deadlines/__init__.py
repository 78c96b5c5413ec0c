"""pytest-grpc-deadlines: test how gRPC code behaves around deadlines.

The plugin itself is registered through the ``pytest11`` entry point; this package exports the
cascade model and its checks, the test servers and the conformance helper. The servers (and
grpc) and hypothesis are imported on first use.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from ._errors import (
    ArgumentError,
    ArgumentTypeError,
    CascadeError,
    CheckError,
    GrpcDeadlinesError,
    GrpcDeadlinesWarning,
    MethodError,
    MissingExtraError,
    OverrideError,
    ServerStateError,
    WaitTimeoutError,
)

if TYPE_CHECKING:
    from .calls._client import ClientCall
    from .calls._verdicts import CallLog, Pair
    from .cascade import (
        DAGSTER,
        Binding,
        Cascade,
        Flag,
        Max,
        Milliseconds,
        OrDefault,
        Process,
        Ref,
        Resolved,
        Seconds,
        Setting,
        Text,
        ValueRule,
        WholeNumber,
    )
    from .cascade._builtins import GRPC_SIMPLE_STUBS, OTEL_OTLP
    from .cascade._invariants import Violation, check
    from .servers._aio import AioGate, AioGrpcTestServer
    from .servers._behaviour import jitter
    from .servers._fake import FakeRpc, FakeServer
    from .servers._records import ServerCall
    from .servers._sync import Gate, GrpcTestServer
    from .strategies import assert_cascade_conforms
    from .wire import WireGate, WireProxy

__version__ = "0.1.0"

__all__ = [
    "DAGSTER",
    "GRPC_SIMPLE_STUBS",
    "OTEL_OTLP",
    "AioGate",
    "AioGrpcTestServer",
    "ArgumentError",
    "ArgumentTypeError",
    "Binding",
    "CallLog",
    "Cascade",
    "CascadeError",
    "CheckError",
    "ClientCall",
    "FakeRpc",
    "FakeServer",
    "Flag",
    "Gate",
    "GrpcDeadlinesError",
    "GrpcDeadlinesWarning",
    "GrpcTestServer",
    "Max",
    "MethodError",
    "Milliseconds",
    "MissingExtraError",
    "OrDefault",
    "OverrideError",
    "Pair",
    "Process",
    "Ref",
    "Resolved",
    "Seconds",
    "ServerCall",
    "ServerStateError",
    "Setting",
    "Text",
    "ValueRule",
    "Violation",
    "WaitTimeoutError",
    "WholeNumber",
    "WireGate",
    "WireProxy",
    "__version__",
    "assert_cascade_conforms",
    "check",
    "jitter",
]

# Imported on first use, so that loading the plugin stays light.
_LAZY = {
    "DAGSTER": "cascade",
    "Binding": "cascade",
    "Cascade": "cascade",
    "Flag": "cascade",
    "Max": "cascade",
    "Milliseconds": "cascade",
    "OrDefault": "cascade",
    "Process": "cascade",
    "Ref": "cascade",
    "Resolved": "cascade",
    "Seconds": "cascade",
    "Setting": "cascade",
    "Text": "cascade",
    "ValueRule": "cascade",
    "WholeNumber": "cascade",
    "AioGate": "servers._aio",
    "AioGrpcTestServer": "servers._aio",
    "CallLog": "calls._verdicts",
    "ClientCall": "calls._client",
    "FakeRpc": "servers._fake",
    "FakeServer": "servers._fake",
    "GRPC_SIMPLE_STUBS": "cascade._builtins",
    "OTEL_OTLP": "cascade._builtins",
    "Pair": "calls._verdicts",
    "Gate": "servers._sync",
    "GrpcTestServer": "servers._sync",
    "ServerCall": "servers._records",
    "assert_cascade_conforms": "strategies",
    "check": "cascade._invariants",
    "Violation": "cascade._invariants",
    "jitter": "servers._behaviour",
    "WireProxy": "wire",
    "WireGate": "wire",
}


def __getattr__(name: str) -> object:
    module = _LAZY.get(name)
    if module is not None:
        return getattr(importlib.import_module(f".{module}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
