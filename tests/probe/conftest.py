"""Fixtures shared by the probe tests."""

from __future__ import annotations

import pytest

from pytest_grpc_deadlines.probe import ProbeStub
from pytest_grpc_deadlines.servers._sync import GrpcTestServer


@pytest.fixture
def stub(grpc_test_server: GrpcTestServer) -> ProbeStub:
    return grpc_test_server.probe()
