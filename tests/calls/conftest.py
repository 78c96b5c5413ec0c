"""Fixtures shared by the client-call tests: channels and servers the plugin did not make."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent import futures

import grpc
import pytest

from pytest_grpc_deadlines import GrpcTestServer
from pytest_grpc_deadlines.calls import _recording as recording
from pytest_grpc_deadlines.probe import ProbeServicer, add_ProbeServicer_to_server


@pytest.fixture
def channel(grpc_test_server: GrpcTestServer) -> Iterator[grpc.Channel]:
    """A channel the test creates itself, as code under test would."""
    with grpc.insecure_channel(grpc_test_server.target) as channel:
        yield channel


@pytest.fixture
def raw(grpc_test_server: GrpcTestServer) -> Iterator[grpc.Channel]:
    """A channel whose calls are not recorded: grpc's behaviour without the plugin."""
    channel = recording.raw_insecure_channel(grpc_test_server.target)
    try:
        yield channel
    finally:
        channel.close()


@pytest.fixture
def local_server() -> Iterator[str]:
    """A plain grpc server with local (loopback) credentials: TLS-free secure channels."""
    executor = futures.ThreadPoolExecutor(2)
    server = grpc.server(executor)
    add_ProbeServicer_to_server(ProbeServicer(), server)
    credentials = grpc.local_server_credentials(grpc.LocalConnectionType.LOCAL_TCP)
    port = server.add_secure_port("127.0.0.1:0", credentials)
    server.start()
    try:
        yield f"127.0.0.1:{port}"
    finally:
        server.stop(None)
        executor.shutdown(wait=False)
