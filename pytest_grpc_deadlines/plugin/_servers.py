"""The sync server fixtures; registered by the plugin at configure time."""

from __future__ import annotations

import sys
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:  # grpc and the probe's descriptors load when a fixture first needs them
    from ..servers._options import ServicerPair
    from ..servers._pool import ServerFactory, ServerPool
    from ..servers._sync import GrpcTestServer

__all__ = ["grpc_test_server", "grpc_test_server_factory", "grpc_test_servicers"]


@pytest.fixture(scope="module")
def grpc_test_servicers() -> Sequence[ServicerPair]:
    """The ``(add_FooServicer_to_server, FooServicer())`` pairs the server fixtures host.
    Override it (module scope) to host your own; the default is the built-in probe service."""
    from ..probe import ProbeServicer, add_ProbeServicer_to_server

    return [(add_ProbeServicer_to_server, ProbeServicer())]


@pytest.fixture(scope="module")
def _grpc_test_server_pool(
    grpc_test_servicers: Sequence[ServicerPair], pytestconfig: pytest.Config
) -> Iterator[ServerPool]:
    from ..servers._pool import ServerPool
    from ._state import configured_cascade

    pool = ServerPool(grpc_test_servicers, configured_cascade(pytestconfig))
    try:
        yield pool
    finally:
        # Not while the interpreter shuts down (a teardown pytest-rerunfailures dropped, run by
        # the garbage collector): grpc's threads are gone and stopping would hang; the pool's
        # exit hook closed it already.
        if not sys.is_finalizing():
            pool.close()


@pytest.fixture
def grpc_test_server(_grpc_test_server_pool: ServerPool) -> Iterator[GrpcTestServer]:
    """A sync grpc server hosting ``grpc_test_servicers``, reused across a module and reset for each
    test: delays, gates, faults and records start empty, and nothing a previous test left
    running can reach this one. Channels from ``grpc_test_server.channel()`` close after the test."""
    server = _grpc_test_server_pool.get()
    server.reset()
    try:
        yield server
    finally:
        server.reset()
        server.close_channels()


@pytest.fixture
def grpc_test_server_factory(
    grpc_test_servicers: Sequence[ServicerPair], pytestconfig: pytest.Config
) -> Iterator[ServerFactory]:
    """``grpc_test_server_factory(*servicer_pairs, transport="tcp" | "unix", host=..., options=...,
    max_workers=...)`` starts fresh sync servers (hosting ``grpc_test_servicers`` when no pairs are
    given); each is stopped at once after the test."""
    from ..servers._pool import ServerFactory
    from ._state import configured_cascade

    factory = ServerFactory(grpc_test_servicers, configured_cascade(pytestconfig))
    try:
        yield factory
    finally:
        factory.close()
