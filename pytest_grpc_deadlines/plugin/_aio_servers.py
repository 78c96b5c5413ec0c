"""Fixtures for asyncio tests; registered only when pytest-asyncio is installed."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import TYPE_CHECKING

import pytest
import pytest_asyncio

if TYPE_CHECKING:  # grpc loads when a fixture first needs it
    from ..servers._aio import AioGrpcTestServer
    from ..servers._options import OptionsArg, ServicerPair, Transport

__all__ = ["grpc_aio_test_server", "grpc_aio_test_server_factory"]

AioServerFactory = Callable[..., Awaitable["AioGrpcTestServer"]]


@pytest_asyncio.fixture
async def grpc_aio_test_server(
    grpc_test_servicers: Sequence[ServicerPair], request: pytest.FixtureRequest
) -> AsyncIterator[AioGrpcTestServer]:
    """A ``grpc.aio`` server on the test's event loop hosting ``grpc_test_servicers`` (aio handlers),
    started fresh for the test and stopped at once after it."""
    from ..servers._aio import AioGrpcTestServer
    from ._state import configured_cascade

    server = AioGrpcTestServer(*grpc_test_servicers, cascade=configured_cascade(request.config))
    await server.start()
    try:
        yield server
    finally:
        await server.close()


@pytest_asyncio.fixture
async def grpc_aio_test_server_factory(
    grpc_test_servicers: Sequence[ServicerPair], request: pytest.FixtureRequest
) -> AsyncIterator[AioServerFactory]:
    """``server = await grpc_aio_test_server_factory(*servicer_pairs, transport=..., ...)``: fresh
    ``grpc.aio`` servers on the test's loop, each stopped at once after the test."""
    from ..servers._aio import AioGrpcTestServer
    from ._state import configured_cascade

    cascade = configured_cascade(request.config)
    servers: list[AioGrpcTestServer] = []

    async def factory(
        *servicers: ServicerPair,
        transport: Transport = "tcp",
        host: str = "127.0.0.1",
        options: OptionsArg = None,
    ) -> AioGrpcTestServer:
        server = AioGrpcTestServer(
            *(servicers or tuple(grpc_test_servicers)),
            transport=transport,
            host=host,
            options=options,
            cascade=cascade,
        )
        servers.append(server)
        return await server.start()

    try:
        yield factory
    finally:
        for server in servers:
            await server.close()
