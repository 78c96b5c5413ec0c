"""The probe and deadlines: gRPC's interop deadline and cancellation cases, and the waits the probe
cuts short when the client is gone."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import grpc
import pytest

from pytest_grpc_deadlines import GrpcTestServer
from pytest_grpc_deadlines.probe import PROBE_SERVICE_NAME, ProbeRequest, ProbeStub
from tests.rpc import rpc_error as _error
from tests.timing import REACHES_SERVER

UNARY = f"{PROBE_SERVICE_NAME}/Unary"


# --- gRPC's interop cases -------------------------------------------------------------------------


def test_server_stream_interval_cut_by_deadline_gives_three_messages(stub: ProbeStub) -> None:
    """10 responses every 300 ms with a 1.05 s deadline: messages at 0.3, 0.6, 0.9 s, then
    DEADLINE_EXCEEDED. # margin: 150 ms on each side of the deadline: the intervals' lateness
    adds up (up to ~40 ms each with the CPUs oversubscribed); 50 ms failed under a loaded tox run."""
    received = []
    with pytest.raises(grpc.RpcError) as info:
        for response in stub.ServerStream(ProbeRequest(responses=10, interval_seconds=0.3), timeout=1.05):
            received.append(response.index)
    assert info.value.code() is grpc.StatusCode.DEADLINE_EXCEEDED
    assert received == [0, 1, 2]


def _blocked_requests(first: list[object], stop: threading.Event) -> Iterator[object]:
    yield from first
    stop.wait(10)


def test_timeout_on_sleeping_server(stub: ProbeStub) -> None:
    """Interop timeout_on_sleeping_server: a full-duplex call with a 27182-byte payload, 1 ms
    deadline, stream kept open."""
    stop = threading.Event()
    try:
        call = stub.Bidi(_blocked_requests([ProbeRequest(payload=b"0" * 27182)], stop), timeout=0.001)
        with pytest.raises(grpc.RpcError) as info:
            list(call)
        assert info.value.code() is grpc.StatusCode.DEADLINE_EXCEEDED
    finally:
        stop.set()


def test_cancel_after_begin(grpc_test_server: GrpcTestServer, stub: ProbeStub) -> None:
    """Interop cancel_after_begin: a client stream cancelled before sending anything."""
    stop = threading.Event()
    try:
        future = stub.ClientStream.future(_blocked_requests([], stop), timeout=5)
        future.cancel()
        with pytest.raises(grpc.FutureCancelledError):
            future.result()
        assert future.code() is grpc.StatusCode.CANCELLED
    finally:
        stop.set()


def test_cancel_after_first_response(stub: ProbeStub) -> None:
    """Interop cancel_after_first_response: cancel a full-duplex call after its first response."""
    stop = threading.Event()
    try:
        call = stub.Bidi(_blocked_requests([ProbeRequest(payload=b"0" * 27182)], stop), timeout=5)
        first = next(call)
        assert first.index == 0
        call.cancel()
        with pytest.raises(grpc.RpcError) as info:
            next(call)
        assert info.value.code() is grpc.StatusCode.CANCELLED
    finally:
        stop.set()


# --- waits end with the call ----------------------------------------------------------------------


def test_delay_seconds_past_the_deadline_fails_and_the_servicer_stops_waiting(
    grpc_test_server: GrpcTestServer, stub: ProbeStub
) -> None:
    with pytest.raises(grpc.RpcError) as info:
        stub.Unary(ProbeRequest(delay_seconds=30), timeout=REACHES_SERVER)
    assert info.value.code() is grpc.StatusCode.DEADLINE_EXCEEDED
    [call] = grpc_test_server.calls
    assert call.wait(5), "the probe servicer slept past the cancellation"
    assert call.cancelled


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
