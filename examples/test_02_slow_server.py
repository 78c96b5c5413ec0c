"""A slow server, on demand: ``grpc_test_server`` hosts the Inventory service (see conftest.py) and
delays a method; the client's deadline decides what happens."""

from __future__ import annotations

import grpc
import inventory_client
import pytest
from inventory_service import GET_ITEM

from pytest_grpc_deadlines import GrpcTestServer


def test_a_fast_server_answers(grpc_test_server: GrpcTestServer) -> None:
    item = inventory_client.fetch_item_fixed(grpc_test_server.channel(), "apple", timeout=5)
    assert (item.name, item.quantity) == ("Apple", 3)
    [call] = grpc_test_server.calls  # what the server saw
    assert (call.method, call.request.sku, call.outcome) == (GET_ITEM, "apple", "ok")
    assert call.deadline is not None
    # margin: grpc rounds a timeout up on the wire (three significant figures): up to 1% more.
    assert 4 < call.deadline <= 5.05


@pytest.mark.grpc_timeouts(sensor=1)
def test_a_slow_server_fails_the_sensor_deadline(grpc_test_server: GrpcTestServer) -> None:
    grpc_test_server.delay(GET_ITEM, 30)  # wakes as soon as the client's deadline passes
    with pytest.raises(grpc.RpcError) as info:
        inventory_client.fetch_item_fixed(grpc_test_server.channel(), "apple")  # sensor timeout: 1 s
    assert info.value.code() is grpc.StatusCode.DEADLINE_EXCEEDED
    [call] = grpc_test_server.calls
    assert call.deadline is not None
    assert call.deadline <= 1.01  # margin: the wire rounds up, by up to 1%
    assert call.wait(5)
    # The delay gave up when the client did, so the servicer never ran.
    assert (call.outcome, call.cancelled) == ("abandoned", True)


def test_a_server_that_does_not_check_works_on(grpc_test_server: GrpcTestServer) -> None:
    # honor_cancellation=False models a server that never looks at its deadline: the "after"
    # delay holds the response back after the servicer ran, and nothing cuts it short.
    grpc_test_server.delay(GET_ITEM, 0.5, when="after", honor_cancellation=False)
    with pytest.raises(grpc.RpcError) as info:
        # margin: 0.25 s reaches the server under load (tests/timing.py); 0.5 s outlasts it.
        inventory_client.fetch_item_fixed(grpc_test_server.channel(), "apple", timeout=0.25)
    assert info.value.code() is grpc.StatusCode.DEADLINE_EXCEEDED
    [call] = grpc_test_server.calls
    assert call.wait(5)
    assert (call.outcome, call.cancelled) == ("ok", True)  # done, for a client long gone
