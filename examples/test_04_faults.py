"""A failing server, on demand: UNAVAILABLE a given number of times, or partway through a
stream, and what the client's retries do with their deadline."""

from __future__ import annotations

import grpc
import inventory_client
import pytest
from inventory_service import GET_ITEM, LIST_ITEMS

from pytest_grpc_deadlines import CallLog, GrpcTestServer


def test_fixed_retries_share_one_deadline(grpc_test_server: GrpcTestServer, grpc_calls: CallLog) -> None:
    grpc_test_server.fail(GET_ITEM, grpc.StatusCode.UNAVAILABLE, "restarting", times=2)
    item = inventory_client.fetch_with_retries_fixed(grpc_test_server.channel(), "apple", timeout=5)
    assert item.quantity == 3
    assert [call.outcome for call in grpc_test_server.calls] == ["aborted", "aborted", "ok"]
    timeouts = [call.timeout for call in grpc_calls if call.timeout is not None]
    assert len(timeouts) == 3  # every attempt had a deadline ...
    assert 5 >= timeouts[0] > timeouts[1] > timeouts[2]  # ... what was left of one 5 s budget


def test_buggy_retries_each_take_the_whole_timeout(
    grpc_test_server: GrpcTestServer, grpc_calls: CallLog
) -> None:
    grpc_test_server.fail(GET_ITEM, grpc.StatusCode.UNAVAILABLE, "restarting", times=2)
    inventory_client.fetch_with_retries(grpc_test_server.channel(), "apple", timeout=5)
    # Three attempts of 5 s each: a stuck server would hold the caller 15 s, not the 5 it allowed.
    assert [call.timeout for call in grpc_calls] == [5, 5, 5]


def test_unavailable_is_not_retried_forever(grpc_test_server: GrpcTestServer) -> None:
    grpc_test_server.fail(GET_ITEM, grpc.StatusCode.UNAVAILABLE, "down for maintenance")
    with pytest.raises(grpc.RpcError) as info:
        inventory_client.fetch_with_retries_fixed(grpc_test_server.channel(), "apple", timeout=5, attempts=3)
    assert (info.value.code(), info.value.details()) == (grpc.StatusCode.UNAVAILABLE, "down for maintenance")
    assert len(grpc_test_server.calls) == 3


def test_a_stream_that_fails_partway(grpc_test_server: GrpcTestServer) -> None:
    grpc_test_server.fail(LIST_ITEMS, grpc.StatusCode.UNAVAILABLE, "connection reset", after_messages=2)
    stream = inventory_client.iter_items(grpc_test_server.channel(), timeout=5)
    assert [next(stream).sku, next(stream).sku] == ["apple", "apricot"]
    with pytest.raises(grpc.RpcError) as info:
        next(stream)
    assert info.value.code() is grpc.StatusCode.UNAVAILABLE
    [call] = grpc_test_server.calls
    assert call.wait(5)
    assert (call.outcome, call.code) == ("aborted", grpc.StatusCode.UNAVAILABLE)
