"""The probe's messages: built from descriptors with the documented fields, and their bytes."""

from __future__ import annotations

from google.protobuf import descriptor_pb2

from pytest_grpc_deadlines.probe import PROBE_SERVICE, ProbeRequest, ProbeResponse


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
