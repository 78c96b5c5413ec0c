"""What every example shares: the inventory modules on ``sys.path``, and the servicers the
``grpc_test_server`` fixture hosts (the built-in probe service by default)."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).parent / "inventory"))

from inventory_service import InventoryServicer, add_InventoryServicer_to_server


@pytest.fixture(scope="module")
def grpc_test_servicers() -> list[tuple[Callable[[Any, Any], None], Any]]:
    """``grpc_test_server`` and ``grpc_test_server_factory()`` host the Inventory service, with the
    sample stock (a fresh one per test module)."""
    return [(add_InventoryServicer_to_server, InventoryServicer())]
