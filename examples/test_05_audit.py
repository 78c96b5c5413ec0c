"""The audit: ``grpc_require_deadlines`` fails a test whose code made an RPC with no deadline,
naming the method and the line that made it."""

from __future__ import annotations

import inspect

import grpc
import inventory_client
import pytest
from inventory_service import GET_ITEM

from pytest_grpc_deadlines import CallLog, GrpcTestServer

# Every test in this module is audited ...
pytestmark = pytest.mark.grpc_require_deadlines


def test_the_fixed_client_passes_the_audit(grpc_test_server: GrpcTestServer) -> None:
    assert inventory_client.fetch_item_fixed(grpc_test_server.channel(), "banana").quantity == 5


@pytest.mark.grpc_timeouts(sensor=30)
@pytest.mark.grpc_require_deadlines(max_seconds=60)  # a deadline above 60 s would fail it too
def test_the_sensor_deadline_is_short_enough(grpc_test_server: GrpcTestServer) -> None:
    inventory_client.fetch_item_fixed(grpc_test_server.channel(), "banana")


# The audit fails the test after its call phase, with:
#   grpc_require_deadlines: ...::test_the_buggy_client_fails_the_audit made 1 RPC(s) without a
#   usable deadline:
#     example.inventory.v1.Inventory/GetItem to 127.0.0.1:PORT with no deadline, at
#     examples/inventory/inventory_client.py:LINE
# Here that failure is expected (strict: the test fails if the audit lets the call through).
@pytest.mark.xfail(raises=pytest.fail.Exception, reason="fetch_item sets no deadline", strict=True)
def test_the_buggy_client_fails_the_audit(grpc_test_server: GrpcTestServer) -> None:
    assert inventory_client.fetch_item(grpc_test_server.channel(), "banana").quantity == 5


@pytest.mark.grpc_require_deadlines(False)  # ... except this one, which looks at the bad call itself
def test_the_call_records_show_where_the_deadline_is_missing(
    grpc_test_server: GrpcTestServer, grpc_calls: CallLog
) -> None:
    inventory_client.fetch_item(grpc_test_server.channel(), "banana")
    [call] = grpc_calls
    assert (call.method, call.target, call.code) == (GET_ITEM, grpc_test_server.target, grpc.StatusCode.OK)
    assert call.timeout is None
    path, _, line = call.site.rpartition(":")  # the caller's file:line, inside fetch_item
    source, first = inspect.getsourcelines(inventory_client.fetch_item)
    assert path.endswith("inventory_client.py")
    assert first <= int(line) < first + len(source)
