"""The probe service against a real server: what each method answers, and the statuses it is
asked to end with."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import grpc
import pytest

from pytest_grpc_deadlines import AioGrpcTestServer, GrpcTestServer
from pytest_grpc_deadlines.probe import ProbeRequest, ProbeStub
from tests.rpc import rpc_error as _error

# --- answers --------------------------------------------------------------------------------------


def test_unary_reports_the_deadline_the_server_saw(stub: ProbeStub) -> None:
    response = stub.Unary(ProbeRequest(), timeout=5)
    assert 0 < response.deadline_seconds <= 5.1  # the grpc-timeout header rounds up a little


def test_unary_without_deadline_reports_zero(stub: ProbeStub) -> None:
    assert stub.Unary(ProbeRequest()).deadline_seconds == 0.0


def test_response_bytes_sets_the_payload_size(stub: ProbeStub) -> None:
    assert len(stub.Unary(ProbeRequest(response_bytes=1000), timeout=5).payload) == 1000


def test_server_stream_sends_the_requested_responses(stub: ProbeStub) -> None:
    responses = list(stub.ServerStream(ProbeRequest(responses=4, response_bytes=3), timeout=5))
    assert [r.index for r in responses] == [0, 1, 2, 3]
    assert all(r.payload == b"xxx" for r in responses)


def test_client_stream_counts_requests(stub: ProbeStub) -> None:
    response = stub.ClientStream(iter([ProbeRequest(), ProbeRequest(), ProbeRequest()]), timeout=5)
    assert response.index == 3


def test_bidi_answers_each_request(stub: ProbeStub) -> None:
    responses = stub.Bidi(iter([ProbeRequest(response_bytes=1), ProbeRequest(response_bytes=2)]), timeout=5)
    assert [len(r.payload) for r in responses] == [1, 2]


# --- statuses -------------------------------------------------------------------------------------


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


# --- importing ------------------------------------------------------------------------------------


def test_a_first_use_under_filterwarnings_error_is_not_failed_by_protobufs_own_warnings(
    pytester: pytest.Pytester,
) -> None:
    # On Python 3.12+, protobuf before 5.27 (and 3.x) warns DeprecationWarning at its first
    # import: when the plugin's fixture is what imports it, a project's test must not fail for it.
    pytester.makeini("[pytest]\nfilterwarnings = error\n")
    pytester.makepyfile(
        """
        import sys

        PROTOBUF_BEFORE = "google.protobuf" in sys.modules

        def test_first_use(grpc_test_server):
            assert not PROTOBUF_BEFORE, "something else imported protobuf first: nothing checked"
            assert "google.protobuf" in sys.modules
        """
    )
    result = pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", "-p", "no:asyncio", "-p", "no:hypothesispytest"
    )
    result.assert_outcomes(passed=1)
