"""Properties, with Hypothesis: the client's resolvers against the cascade model, and the model
of a deadline race against a real server."""

from __future__ import annotations

import grpc
import inventory_client
import inventory_gateway
import pytest
from hypothesis import HealthCheck, given, settings
from inventory_service import GET_ITEM, GetItemRequest, InventoryStub

from pytest_grpc_deadlines import DAGSTER, CallLog, GrpcTestServer, assert_cascade_conforms
from pytest_grpc_deadlines.strategies import DeadlineScenario, deadline_scenarios


def test_the_client_reads_its_timeouts_as_dagster_does() -> None:
    # Environments Hypothesis draws, bad values included: the resolvers must give the model's
    # value, or fail where Dagster would.
    assert_cascade_conforms(
        DAGSTER,
        {
            "default": inventory_client.default_timeout,
            "sensor": inventory_client.sensor_timeout,
            "grace": inventory_gateway.shutdown_grace_fixed,
        },
        max_examples=100,
    )


def test_the_buggy_grace_resolver_is_caught() -> None:
    with pytest.raises(AssertionError, match="grace: resolver gave value"):
        assert_cascade_conforms(DAGSTER, {"grace": inventory_gateway.shutdown_grace}, max_examples=200)


@pytest.fixture
def stub(grpc_test_server: GrpcTestServer) -> InventoryStub:
    stub = InventoryStub(grpc_test_server.channel())
    stub.GetItem(GetItemRequest(sku="apple"), timeout=5)  # connect now, not inside a scenario's deadline
    return stub


# Each example costs up to max(delay, timeout) seconds of real time: 6 examples, about 2 s.
@settings(
    max_examples=6,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],  # the server is reset by hand
)
# margin: timeouts of 0.25 s or more reach the server on a loaded machine (tests/timing.py).
@given(scenario=deadline_scenarios(min_timeout=0.25, max_timeout=0.3, max_delay=0.45))
def test_a_slow_server_gets_the_verdict_the_model_predicts(
    scenario: DeadlineScenario, grpc_test_server: GrpcTestServer, stub: InventoryStub, grpc_calls: CallLog
) -> None:
    grpc_test_server.reset()
    grpc_test_server.delay(
        GET_ITEM, scenario.delay, when=scenario.when, honor_cancellation=scenario.honor_cancellation
    )
    call = stub.GetItem.future(GetItemRequest(sku="apple"), timeout=scenario.timeout)
    assert call.code() in (grpc.StatusCode.OK, grpc.StatusCode.DEADLINE_EXCEEDED)
    verdict = grpc_calls.pairs(timeout=5)[-1].verdict  # waits for the handler to end
    # Near the deadline either side may win the race; the scenario knows which verdicts it can get.
    assert verdict in scenario.accepted_verdicts
