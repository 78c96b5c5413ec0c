"""asyncio: ``grpc_aio_test_server`` runs a ``grpc.aio`` server on the test's own event loop
(pytest-asyncio), with the same delays, gates, faults and records."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import grpc
import inventory_client
import pytest
from inventory_service import GET_ITEM, AioInventoryServicer, add_InventoryServicer_to_server

from pytest_grpc_deadlines import AioGrpcTestServer, CallLog

pytestmark = pytest.mark.asyncio


@pytest.fixture(scope="module")
def grpc_test_servicers() -> list[tuple[Callable[[Any, Any], None], Any]]:
    """This module's servers host the asyncio servicer (coroutine handlers)."""
    return [(add_InventoryServicer_to_server, AioInventoryServicer())]


@pytest.mark.grpc_timeouts(sensor=5)
async def test_the_async_client_sends_the_sensor_deadline(grpc_aio_test_server: AioGrpcTestServer) -> None:
    item = await inventory_client.fetch_item_async(grpc_aio_test_server.channel(), "banana")
    assert item.quantity == 5
    [call] = grpc_aio_test_server.calls
    assert call.deadline is not None
    assert 4 < call.deadline <= 5.05  # margin: the wire rounds a timeout up, by up to 1%


async def test_the_server_finishes_what_the_async_client_gave_up_on(
    grpc_aio_test_server: AioGrpcTestServer, grpc_calls: CallLog
) -> None:
    gate = grpc_aio_test_server.hold(GET_ITEM)
    with pytest.raises(grpc.RpcError) as info:
        # margin: 0.25 s reaches the server under load (tests/timing.py); the gate holds it.
        await inventory_client.fetch_item_async(grpc_aio_test_server.channel(), "banana", timeout=0.25)
    assert info.value.code() is grpc.StatusCode.DEADLINE_EXCEEDED
    assert await gate.wait_cancelled(5)  # awaitable on the asyncio server
    gate.release()
    [call] = grpc_aio_test_server.calls
    assert await call.wait_async(5)
    assert (call.outcome, call.cancelled) == ("ok", True)
    [(_, _, verdict)] = grpc_calls.pairs()
    assert verdict == "disagreement"
