"""The probe service at its edges: statuses it is asked to end with, and waits it cuts short
when the client is gone."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import grpc
import pytest

from pytest_grpc_deadlines.probe import PROBE_SERVICE_NAME, ProbeRequest, ProbeStub
from pytest_grpc_deadlines.servers._aio import AioGrpcTestServer
from pytest_grpc_deadlines.servers._sync import GrpcTestServer
from tests.timing import REACHES_SERVER

UNARY = f"{PROBE_SERVICE_NAME}/Unary"


@pytest.fixture
def stub(grpc_test_server: GrpcTestServer) -> ProbeStub:
    return grpc_test_server.probe()


def _error(call: Any) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as info:
        call()
    return info.value


# --- statuses ----------------------------------------------------------------------------------


def test_a_status_code_grpc_does_not_have_fails_the_call_with_a_clear_server_error(
    grpc_test_server: GrpcTestServer, stub: ProbeStub
) -> None:
    assert _error(lambda: stub.Unary(ProbeRequest(status_code=99), timeout=5)).code() is (
        grpc.StatusCode.UNKNOWN
    )
    [call] = grpc_test_server.calls
    assert call.wait(5)
    assert call.outcome == "raised"
    assert call.details == "ArgumentError: status_code=99 is not a grpc status code (0 to 16)"


def test_bidi_answers_each_request_and_ends_with_the_status_one_asks_for(stub: ProbeStub) -> None:
    requests = [ProbeRequest(), ProbeRequest(status_code=5, status_details="gone"), ProbeRequest()]
    received: list[int] = []
    error = _error(lambda: received.extend(r.index for r in stub.Bidi(iter(requests), timeout=5)))
    assert (received, error.code(), error.details()) == ([0, 1], grpc.StatusCode.NOT_FOUND, "gone")


@pytest.mark.asyncio
async def test_aio_bidi_answers_each_request_and_ends_with_the_status_one_asks_for(
    grpc_aio_test_server: AioGrpcTestServer,
) -> None:
    async def requests() -> AsyncIterator[Any]:
        yield ProbeRequest()
        yield ProbeRequest(status_code=5, status_details="gone")
        yield ProbeRequest()

    received: list[int] = []
    with pytest.raises(grpc.RpcError) as info:
        async for response in grpc_aio_test_server.probe().Bidi(requests(), timeout=5):
            received.append(response.index)
    assert (received, info.value.code(), info.value.details()) == ([0, 1], grpc.StatusCode.NOT_FOUND, "gone")


# --- waits end with the call -----------------------------------------------------------------


@pytest.mark.parametrize("method", ["ClientStream", "Bidi"])
def test_a_streaming_probe_stops_its_delay_when_the_deadline_passes(
    grpc_test_server: GrpcTestServer, stub: ProbeStub, method: str
) -> None:
    requests = iter([ProbeRequest(), ProbeRequest(delay_seconds=30)])

    def call() -> None:
        if method == "ClientStream":
            stub.ClientStream(requests, timeout=REACHES_SERVER)
        else:
            list(stub.Bidi(requests, timeout=REACHES_SERVER))

    assert _error(call).code() is grpc.StatusCode.DEADLINE_EXCEEDED
    [seen] = grpc_test_server.calls
    assert seen.wait(10), "the probe slept its 30 s delay after the client left"
    assert seen.cancelled


def test_the_probe_does_not_start_a_delay_for_a_client_that_already_left(
    grpc_test_server: GrpcTestServer, stub: ProbeStub
) -> None:
    """Held past the client's deadline, then released: the probe's own 30 s delay is skipped."""
    gate = grpc_test_server.hold(UNARY)
    error = _error(lambda: stub.Unary(ProbeRequest(delay_seconds=30), timeout=REACHES_SERVER))
    assert error.code() is grpc.StatusCode.DEADLINE_EXCEEDED
    assert gate.wait_cancelled(10)
    gate.release()
    [seen] = grpc_test_server.calls
    assert seen.wait(10), "the probe slept its 30 s delay after the client left"
    assert (seen.outcome, seen.cancelled) == ("ok", True)
