"""grpc options and the cascade's message-size limits, on the test servers and their channels."""

from __future__ import annotations

from typing import Any

import grpc
import grpc.aio
import pytest

from pytest_grpc_deadlines import AioGrpcTestServer, GrpcTestServer
from pytest_grpc_deadlines.probe import ProbeRequest
from pytest_grpc_deadlines.servers._pool import ServerFactory
from tests.rpc import rpc_error as _error
from tests.rpc import status_code as _code

# --- options --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "options",
    [{"grpc.max_receive_message_length": 1024}, [("grpc.max_receive_message_length", 1024)]],
    ids=["mapping", "sequence"],
)
def test_server_options_reach_grpc_and_override_the_cascade_limits(
    grpc_test_server_factory: ServerFactory, options: Any
) -> None:
    """The cascade's 100 MB receive limit is set too; the caller's own option wins over it."""
    server = grpc_test_server_factory(options=options)
    stub = server.probe()
    assert stub.Unary(ProbeRequest(payload=b"x" * 512), timeout=5).index == 0
    error = _error(lambda: stub.Unary(ProbeRequest(payload=b"x" * 2048), timeout=5))
    assert error.code() is grpc.StatusCode.RESOURCE_EXHAUSTED
    assert ("grpc.max_receive_message_length", 1024) in server.limits_key()


@pytest.mark.parametrize("options", [5, [("only-a-name",)], ["ab c"], [("a", 1, 2)]])
def test_options_that_are_not_name_value_pairs_are_refused(options: Any) -> None:
    with pytest.raises(ValueError, match=r"must be a mapping or a sequence of \(name, value\) pairs"):
        GrpcTestServer(options=options)


# --- byte limits from the marker ------------------------------------------------------------------


@pytest.mark.grpc_timeouts(max_rx_bytes=1024)
def test_marker_byte_limit_applies_to_the_server(grpc_test_server: GrpcTestServer) -> None:
    stub = grpc_test_server.probe(max_send_message_length=-1)
    assert _code(lambda: stub.Unary(ProbeRequest(payload=b"x" * 2048), timeout=5)) is (
        grpc.StatusCode.RESOURCE_EXHAUSTED
    )
    assert stub.Unary(ProbeRequest(payload=b"x" * 100), timeout=5).index == 0


@pytest.mark.grpc_timeouts(max_rx_bytes=1024)
def test_marker_byte_limit_applies_to_the_channel(grpc_test_server: GrpcTestServer) -> None:
    stub = grpc_test_server.probe()
    assert _code(lambda: stub.Unary(ProbeRequest(response_bytes=2048), timeout=5)) is (
        grpc.StatusCode.RESOURCE_EXHAUSTED
    )


@pytest.mark.grpc_timeouts(max_send_bytes=1024)
def test_marker_send_limit_applies_to_the_channel(grpc_test_server: GrpcTestServer) -> None:
    stub = grpc_test_server.probe()
    assert _code(lambda: stub.Unary(ProbeRequest(payload=b"x" * 2048), timeout=5)) is (
        grpc.StatusCode.RESOURCE_EXHAUSTED
    )


@pytest.mark.grpc_timeouts(max_rx_bytes=1024)
@pytest.mark.asyncio
async def test_marker_byte_limit_applies(grpc_aio_test_server: AioGrpcTestServer) -> None:
    stub = grpc_aio_test_server.probe(max_send_message_length=-1)
    assert await _code(stub.Unary(ProbeRequest(payload=b"x" * 2048), timeout=5)) is (
        grpc.StatusCode.RESOURCE_EXHAUSTED
    )


@pytest.mark.grpc_timeouts(max_rx_bytes=3_000_000_000)
def test_byte_limit_grpc_cannot_hold_is_a_clear_error(grpc_test_server_factory: ServerFactory) -> None:
    with pytest.raises(ValueError, match=r"max_rx_bytes=3000000000 .* must fit in 32 bits"):
        grpc_test_server_factory()


@pytest.mark.grpc_timeouts(max_rx_bytes="abc")
def test_byte_limit_that_does_not_parse_is_a_clear_error(grpc_test_server_factory: ServerFactory) -> None:
    with pytest.raises(ValueError, match="DAGSTER_GRPC_MAX_RX_BYTES='abc'"):
        grpc_test_server_factory()
