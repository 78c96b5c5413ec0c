"""Client and server judge success independently: a reservation the server made after the
client gave up. A gate holds the call, so the race is decided by the test, not by timing."""

from __future__ import annotations

from collections.abc import Callable

import grpc
import inventory_client
import pytest
from inventory_service import RESERVE_ITEM, InventoryServicer, add_InventoryServicer_to_server

from pytest_grpc_deadlines import CallLog, GrpcTestServer

#: margin: long enough to reach the server on a loaded machine (tests/timing.py); the gate
#: holds the call well past it.
TIMEOUT = 0.25


def test_the_server_reserves_what_the_client_gave_up_on(
    grpc_test_server_factory: Callable[..., GrpcTestServer], grpc_calls: CallLog
) -> None:
    inventory = InventoryServicer()  # our own stock, to see what the servicer did
    server = grpc_test_server_factory((add_InventoryServicer_to_server, inventory))
    gate = server.hold(RESERVE_ITEM)

    with pytest.raises(grpc.RpcError) as info:
        inventory_client.reserve(server.channel(), "apple", 1, timeout=TIMEOUT)
    assert info.value.code() is grpc.StatusCode.DEADLINE_EXCEEDED

    assert gate.wait_cancelled(5)  # the server saw the deadline pass ...
    gate.release()  # ... and reserves anyway: a held call ignores its client by default

    [(client, served, verdict)] = grpc_calls.pairs(timeout=5)  # waits for the handler to end
    assert verdict == "disagreement"
    assert served is not None
    assert (client.code, served.outcome) == (grpc.StatusCode.DEADLINE_EXCEEDED, "ok")
    assert inventory.stock.quantity("apple") == 2  # one apple gone, and the sensor never knew
    grpc_calls.assert_no_violations()  # the other way round (client OK, server not) never happens


def test_a_server_that_checks_cancellation_does_no_work(
    grpc_test_server_factory: Callable[..., GrpcTestServer], grpc_calls: CallLog
) -> None:
    inventory = InventoryServicer()
    server = grpc_test_server_factory((add_InventoryServicer_to_server, inventory))
    server.hold(RESERVE_ITEM, honor_cancellation=True)  # lets go when the client leaves

    with pytest.raises(grpc.RpcError):
        inventory_client.reserve(server.channel(), "apple", 1, timeout=TIMEOUT)

    [call] = server.calls
    assert call.wait(5)
    assert call.outcome == "abandoned"  # the servicer never ran
    [(_, _, verdict)] = grpc_calls.pairs()
    assert verdict == "agreed-failure"
    assert inventory.stock.quantity("apple") == 3
