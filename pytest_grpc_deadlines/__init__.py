"""pytest-grpc-deadlines: test how gRPC code behaves around deadlines.

The plugin itself is registered through the ``pytest11`` entry point; this package exports the
cascade model and its checks, the test servers and the conformance helper. The servers (and
grpc) and hypothesis are imported on first use.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from .cascade import (
    DAGSTER,
    Binding,
    Cascade,
    CascadeError,
    Flag,
    Max,
    Ref,
    Resolved,
    Setting,
    Text,
    ValueRule,
    WholeNumber,
)
from .errors import GrpcDeadlinesWarning
from .invariants import Violation, check

if TYPE_CHECKING:
    from .aio_server import AioGate, AioGrpcTestServer
    from .behaviour import MethodError, jitter
    from .client import ClientCall
    from .conformance import assert_cascade_conforms
    from .fake import FakeRpc, FakeServer
    from .records import ServerCall
    from .server import Gate, GrpcTestServer
    from .verdicts import CallLog, Pair

__version__ = "0.1.0"

__all__ = [
    "DAGSTER",
    "AioGate",
    "AioGrpcTestServer",
    "Binding",
    "CallLog",
    "Cascade",
    "CascadeError",
    "ClientCall",
    "FakeRpc",
    "FakeServer",
    "Flag",
    "Gate",
    "GrpcDeadlinesWarning",
    "GrpcTestServer",
    "Max",
    "MethodError",
    "Pair",
    "Ref",
    "Resolved",
    "ServerCall",
    "Setting",
    "Text",
    "ValueRule",
    "Violation",
    "WholeNumber",
    "__version__",
    "assert_cascade_conforms",
    "check",
    "jitter",
]

# Imported on first use, so that loading the plugin stays light.
_LAZY = {
    "AioGate": "aio_server",
    "AioGrpcTestServer": "aio_server",
    "CallLog": "verdicts",
    "ClientCall": "client",
    "FakeRpc": "fake",
    "FakeServer": "fake",
    "Pair": "verdicts",
    "Gate": "server",
    "GrpcTestServer": "server",
    "MethodError": "behaviour",
    "ServerCall": "records",
    "assert_cascade_conforms": "conformance",
    "jitter": "behaviour",
}


def __getattr__(name: str) -> object:
    module = _LAZY.get(name)
    if module is not None:
        return getattr(importlib.import_module(f".{module}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
