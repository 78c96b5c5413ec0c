"""Fixtures shared by the server tests."""

from __future__ import annotations

import pytest

from pytest_grpc_deadlines.servers._pool import ServerFactory
from pytest_grpc_deadlines.servers._sync import GrpcTestServer


@pytest.fixture(params=["tcp", "unix"])
def server(request: pytest.FixtureRequest, grpc_test_server_factory: ServerFactory) -> GrpcTestServer:
    return grpc_test_server_factory(transport=request.param)
