"""Whether what some tests need beyond the plugin's required dependencies is there (see conftest)."""

from __future__ import annotations

import importlib

#: Why a test that needs grpcio-testing skips, or None when it can run.
GRPC_TESTING_MISSING: str | None
try:
    importlib.import_module("grpc_testing")
except ImportError as exc:
    GRPC_TESTING_MISSING = f"needs grpcio-testing, the fake-time extra ({exc})"
else:
    GRPC_TESTING_MISSING = None

ASYNCIO_MISSING = "needs pytest-asyncio, which is not installed (or -p no:asyncio)"
