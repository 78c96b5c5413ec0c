"""A proxy hop that drops the deadline, caught by the deadline the inner server saw.

The client calls a gateway; the gateway forwards to the inner Inventory server. Both are test
servers from ``grpc_test_server_factory``, so each records the deadline it was given. In production
the gateway runs in another process, where no client-side record reaches: the inner server's
record is what tells.
"""

from __future__ import annotations

from collections.abc import Callable

import grpc
import inventory_client
import pytest
from inventory_gateway import Gateway, GatewayFixed, GatewayNaive
from inventory_service import GET_ITEM, add_InventoryServicer_to_server

from pytest_grpc_deadlines import GrpcTestServer

ServerFactory = Callable[..., GrpcTestServer]


def gateway_in_front(factory: ServerFactory, gateway: type[Gateway]) -> tuple[GrpcTestServer, GrpcTestServer]:
    """The inner server (the sample stock) and a gateway server forwarding to it."""
    inner = factory()  # hosts grpc_test_servicers: the Inventory service
    outer = factory((add_InventoryServicer_to_server, gateway(inner.channel())))
    return outer, inner


def test_the_buggy_gateway_drops_the_deadline(grpc_test_server_factory: ServerFactory) -> None:
    outer, inner = gateway_in_front(grpc_test_server_factory, Gateway)
    item = inventory_client.fetch_item_fixed(outer.channel(), "apple", timeout=5)
    assert item.quantity == 3
    [outer_call], [inner_call] = outer.calls, inner.calls
    assert outer_call.deadline is not None  # the gateway got the client's 5 s ...
    assert inner_call.deadline is None  # ... and the inner server got no deadline at all


def test_the_fixed_gateway_passes_on_what_is_left(grpc_test_server_factory: ServerFactory) -> None:
    outer, inner = gateway_in_front(grpc_test_server_factory, GatewayFixed)
    inventory_client.fetch_item_fixed(outer.channel(), "apple", timeout=5)
    [outer_call], [inner_call] = outer.calls, inner.calls
    assert (outer_call.method, inner_call.method) == (GET_ITEM, GET_ITEM)
    assert outer_call.deadline is not None
    assert inner_call.deadline is not None
    # What was left of the client's 5 s. margin: grpc rounds a timeout up to three significant
    # figures on the wire, so each hop may add up to 1%: 5 s can arrive as 5.01 s, then 5.02 s.
    assert 4 < inner_call.deadline <= 5 * 1.01 * 1.01


def test_a_naive_gateway_fails_callers_without_a_deadline(grpc_test_server_factory: ServerFactory) -> None:
    # A sync server reports "no deadline" as 9.22e18 s left. Passed on as a timeout, grpc fails
    # the inner call at once, before it leaves the gateway.
    outer, inner = gateway_in_front(grpc_test_server_factory, GatewayNaive)
    with pytest.raises(grpc.RpcError) as info:
        inventory_client.fetch_item(outer.channel(), "apple")
    assert info.value.code() is grpc.StatusCode.DEADLINE_EXCEEDED
    assert inner.calls == []


def test_the_fixed_gateway_passes_on_no_deadline_as_none(grpc_test_server_factory: ServerFactory) -> None:
    outer, inner = gateway_in_front(grpc_test_server_factory, GatewayFixed)
    assert inventory_client.fetch_item(outer.channel(), "apple").quantity == 3
    assert (outer.calls[0].deadline, inner.calls[0].deadline) == (None, None)
