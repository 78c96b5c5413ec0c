"""Fake time: the servicer's own deadline logic, tested without sleeping.

``GetItem(wait_for_stock=True)`` waits for a restock for as long as the call lives. On
``grpc_fake_server`` (grpcio-testing, extra ``[fake-time]``) a clock that moves only when the test
says so decides when its 30 s deadline passes.
"""

from __future__ import annotations

import time

import grpc
import pytest
from google.protobuf.descriptor import ServiceDescriptor
from inventory_service import GET_ITEM, INVENTORY_SERVICE, GetItemRequest, InventoryServicer

from pytest_grpc_deadlines import FakeServer

# Without grpcio-testing the module skips, saying what to install.
pytest.importorskip("grpc_testing", reason='pip install "pytest-grpc-deadlines[fake-time]"')


@pytest.fixture
def inventory() -> InventoryServicer:
    return InventoryServicer()  # cherries are out of stock


@pytest.fixture
def grpc_fake_servicers(inventory: InventoryServicer) -> list[tuple[ServiceDescriptor, InventoryServicer]]:
    # The fake server takes the service descriptor, not add_InventoryServicer_to_server.
    return [(INVENTORY_SERVICE, inventory)]


def test_waiting_for_stock_ends_at_the_deadline(grpc_fake_server: FakeServer) -> None:
    started = time.monotonic()
    rpc = grpc_fake_server.invoke_unary(
        GET_ITEM, GetItemRequest(sku="cherry", wait_for_stock=True), timeout=30
    )
    grpc_fake_server.advance(29)
    assert not rpc.wait_handler(wait=0)  # 1 s left: still waiting for cherries
    grpc_fake_server.advance(1)  # the deadline passes exactly when the clock reaches it
    response, code, _ = rpc.termination()
    assert (response, code) == (None, grpc.StatusCode.DEADLINE_EXCEEDED)
    assert rpc.wait_handler()  # the servicer noticed and returned: no thread left waiting
    # margin: about a millisecond of real time idle; a real 30 s wait could never pass this.
    assert time.monotonic() - started < 10


def test_a_restock_before_the_deadline_answers(
    grpc_fake_server: FakeServer, inventory: InventoryServicer
) -> None:
    # Schedule the restock on the fake clock, 10 s from now: it happens during advance().
    grpc_fake_server.time.call_in(lambda: inventory.stock.restock("cherry", 12), 10)
    rpc = grpc_fake_server.invoke_unary(
        GET_ITEM, GetItemRequest(sku="cherry", wait_for_stock=True), timeout=30
    )
    grpc_fake_server.advance(10)
    response, code, _ = rpc.termination()
    assert code is grpc.StatusCode.OK
    assert response.quantity == 12
