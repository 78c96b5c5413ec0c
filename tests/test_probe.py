"""The probe service against a real server: its fields, and gRPC's interop deadline cases."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import grpc
import pytest
from google.protobuf import descriptor_pb2

from pytest_grpc_deadlines.probe import (
    PROBE_SERVICE,
    PROBE_SERVICE_NAME,
    ProbeRequest,
    ProbeResponse,
    ProbeStub,
)
from pytest_grpc_deadlines.servers._sync import GrpcTestServer
from tests.timing import REACHES_SERVER

UNARY = f"{PROBE_SERVICE_NAME}/Unary"


@pytest.fixture
def stub(grpc_test_server: GrpcTestServer) -> ProbeStub:
    return grpc_test_server.probe()


def test_messages_are_built_from_descriptors_with_the_documented_fields() -> None:
    request_fields = [f.name for f in ProbeRequest.DESCRIPTOR.fields]
    assert request_fields == [
        "delay_seconds",
        "responses",
        "interval_seconds",
        "response_bytes",
        "status_code",
        "status_details",
        "payload",
    ]
    assert [f.name for f in ProbeResponse.DESCRIPTOR.fields] == ["index", "payload", "deadline_seconds"]
    assert [m.name for m in PROBE_SERVICE.methods] == ["Unary", "ServerStream", "ClientStream", "Bidi"]
    proto = descriptor_pb2.FileDescriptorProto()
    PROBE_SERVICE.file.CopyToProto(proto)
    assert proto.package == "pytest_grpc_deadlines.probe.v1"


def test_messages_round_trip_through_bytes() -> None:
    request = ProbeRequest(delay_seconds=0.5, responses=3, payload=b"abc", status_details="é")
    assert ProbeRequest.FromString(request.SerializeToString()) == request


def test_unary_reports_the_deadline_the_server_saw(stub: ProbeStub) -> None:
    response = stub.Unary(ProbeRequest(), timeout=5)
    assert 0 < response.deadline_seconds <= 5.1  # the grpc-timeout header rounds up a little


def test_unary_without_deadline_reports_zero(stub: ProbeStub) -> None:
    assert stub.Unary(ProbeRequest()).deadline_seconds == 0.0


def test_response_bytes_sets_the_payload_size(stub: ProbeStub) -> None:
    assert len(stub.Unary(ProbeRequest(response_bytes=1000), timeout=5).payload) == 1000


def test_status_code_and_message(stub: ProbeStub) -> None:
    """Interop status_code_and_message: code 2 with 'test status message'."""
    with pytest.raises(grpc.RpcError) as info:
        stub.Unary(ProbeRequest(status_code=2, status_details="test status message"), timeout=5)
    assert info.value.code() is grpc.StatusCode.UNKNOWN
    assert info.value.details() == "test status message"


def test_special_status_message_is_byte_exact(stub: ProbeStub) -> None:
    message = "\t\ntest with whitespace\r\nand Unicode BMP ☺ and non-BMP 😈\t\n"
    with pytest.raises(grpc.RpcError) as info:
        stub.Unary(ProbeRequest(status_code=2, status_details=message), timeout=5)
    assert info.value.details() == message


def test_server_stream_sends_the_requested_responses(stub: ProbeStub) -> None:
    responses = list(stub.ServerStream(ProbeRequest(responses=4, response_bytes=3), timeout=5))
    assert [r.index for r in responses] == [0, 1, 2, 3]
    assert all(r.payload == b"xxx" for r in responses)


def test_server_stream_interval_cut_by_deadline_gives_three_messages(stub: ProbeStub) -> None:
    """10 responses every 200 ms with a 0.7 s deadline: messages at 0.2, 0.4, 0.6 s, then
    DEADLINE_EXCEEDED. # margin: 100 ms on each side of the deadline, over twice grpc's
    lateness with the CPUs oversubscribed (41 ms); 50 ms was not enough under a loaded tox run."""
    received = []
    with pytest.raises(grpc.RpcError) as info:
        for response in stub.ServerStream(ProbeRequest(responses=10, interval_seconds=0.2), timeout=0.7):
            received.append(response.index)
    assert info.value.code() is grpc.StatusCode.DEADLINE_EXCEEDED
    assert received == [0, 1, 2]


def test_client_stream_counts_requests(stub: ProbeStub) -> None:
    response = stub.ClientStream(iter([ProbeRequest(), ProbeRequest(), ProbeRequest()]), timeout=5)
    assert response.index == 3


def test_bidi_answers_each_request(stub: ProbeStub) -> None:
    responses = stub.Bidi(iter([ProbeRequest(response_bytes=1), ProbeRequest(response_bytes=2)]), timeout=5)
    assert [len(r.payload) for r in responses] == [1, 2]


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


def test_delay_seconds_past_the_deadline_fails_and_the_servicer_stops_waiting(
    grpc_test_server: GrpcTestServer, stub: ProbeStub
) -> None:
    with pytest.raises(grpc.RpcError) as info:
        stub.Unary(ProbeRequest(delay_seconds=30), timeout=REACHES_SERVER)
    assert info.value.code() is grpc.StatusCode.DEADLINE_EXCEEDED
    [call] = grpc_test_server.calls
    assert call.wait(5), "the probe servicer slept past the cancellation"
    assert call.cancelled
