"""A slow, stuck or failing code server, on demand, against a real in-process grpc server."""

from __future__ import annotations

import grpc
import pytest
import sensor_client

from pytest_grpc_deadlines.server import GrpcTestServer

UNARY = "pytest_grpc_deadlines.probe.v1.Probe/Unary"


@pytest.mark.grpc_timeouts(sensor=1)
def test_slow_sensor_times_out(grpc_server: GrpcTestServer) -> None:
    grpc_server.delay(UNARY, 30)  # wakes as soon as the client's 1 s deadline passes
    assert sensor_client.evaluate_sensor(grpc_server.channel()) == "timed out"
    [call] = grpc_server.calls
    assert call.deadline is not None
    assert call.deadline <= 1.1
    assert call.wait(5)
    assert call.outcome == "abandoned"


@pytest.mark.grpc_timeouts(sensor=1)
def test_server_finishes_the_work_the_client_gave_up_on(grpc_server: GrpcTestServer) -> None:
    gate = grpc_server.hold(UNARY)
    assert sensor_client.evaluate_sensor(grpc_server.channel()) == "timed out"
    assert gate.wait_cancelled(5)  # the server saw the deadline pass ...
    gate.release()  # ... and the handler finishes anyway
    [call] = grpc_server.calls
    assert call.wait(5)
    assert (call.outcome, call.cancelled) == ("ok", True)


def test_unavailable_server_is_not_a_timeout(grpc_server: GrpcTestServer) -> None:
    grpc_server.fail(UNARY, grpc.StatusCode.UNAVAILABLE, "code server restarting")
    with pytest.raises(grpc.RpcError) as info:
        sensor_client.evaluate_sensor(grpc_server.channel())
    assert info.value.code() is grpc.StatusCode.UNAVAILABLE
