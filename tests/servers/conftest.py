"""Fixtures shared by the server tests."""

from __future__ import annotations

import pytest

from pytest_grpc_deadlines import GrpcTestServer
from pytest_grpc_deadlines.servers._pool import ServerFactory


@pytest.fixture(params=["tcp", "unix"])
def server(request: pytest.FixtureRequest, grpc_test_server_factory: ServerFactory) -> GrpcTestServer:
    return grpc_test_server_factory(transport=request.param)
