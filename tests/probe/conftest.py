"""Fixtures shared by the probe tests."""

from __future__ import annotations

import pytest

from pytest_grpc_deadlines import GrpcTestServer
from pytest_grpc_deadlines.probe import ProbeStub


@pytest.fixture
def stub(grpc_test_server: GrpcTestServer) -> ProbeStub:
    return grpc_test_server.probe()
