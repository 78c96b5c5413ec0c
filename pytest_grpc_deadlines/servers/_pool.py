"""Reused servers for the ``grpc_test_server`` fixture, and the per-test ``grpc_test_server_factory``."""

from __future__ import annotations

import atexit
import weakref
from collections.abc import Sequence
from typing import Any

from .._errors import ArgumentError
from ..cascade._cascade import Cascade
from ._options import OptionsArg, ServicerPair, Transport
from ._sync import GrpcTestServer

__all__ = ["ServerFactory", "ServerPool"]


class ServerPool:
    """Sync servers hosting one set of servicers, one per set of creation-time options.

    grpc fixes a server's options (the byte limits) when it is created, so a test whose cascade
    limits differ from those of the running server gets a server started with its own.
    """

    def __init__(self, servicers: Sequence[ServicerPair], cascade: Cascade) -> None:
        self._servicers = tuple(servicers)
        self._cascade = cascade
        self._servers: dict[tuple[tuple[str, Any], ...], GrpcTestServer] = {}
        #: never started: it reads the environment's limits for choosing a server
        self._template = GrpcTestServer(*self._servicers, cascade=cascade)
        _open.add(self)

    def get(self) -> GrpcTestServer:
        key = self._template.limits_key()
        server = self._servers.get(key)
        if server is None:
            server = GrpcTestServer(*self._servicers, cascade=self._cascade, reuse_channels=True)
            self._servers[key] = server.start()
        elif not server.is_running:  # a previous test stopped it: serve again, same address
            server.start()
        return server

    def close(self) -> None:
        _open.discard(self)
        servers, self._servers = list(self._servers.values()), {}
        for server in servers:
            server.close()


#: Pools not closed yet. pytest-rerunfailures drops the setup state on a rerun, and with it the
#: module fixture's teardown: such a pool is closed at exit, while grpc's threads still run
#: (stopping a grpc server from a generator collected during interpreter shutdown hangs).
_open: weakref.WeakSet[ServerPool] = weakref.WeakSet()


@atexit.register
def _close_left_open() -> None:
    for pool in list(_open):
        pool.close()


class ServerFactory:
    """``grpc_test_server_factory(*servicer_pairs, transport=..., ...)``: fresh sync servers, each
    stopped at once at the end of the test."""

    def __init__(self, default_servicers: Sequence[ServicerPair], cascade: Cascade) -> None:
        self._default = tuple(default_servicers)
        self._cascade = cascade
        self._servers: list[GrpcTestServer] = []

    def __call__(
        self,
        *servicers: ServicerPair,
        aio: bool = False,
        transport: Transport = "tcp",
        host: str = "127.0.0.1",
        options: OptionsArg = None,
        max_workers: int | None = None,
    ) -> GrpcTestServer:
        if aio:
            raise ArgumentError(
                "grpc_test_server_factory(aio=True): an asyncio server must run on the test's own "
                "event loop; in an async test use the grpc_aio_test_server_factory fixture "
                "(server = await grpc_aio_test_server_factory(...)) or grpc_aio_test_server"
            )
        server = GrpcTestServer(
            *(servicers or self._default),
            transport=transport,
            host=host,
            options=options,
            max_workers=max_workers,
            cascade=self._cascade,
        )
        self._servers.append(server)
        return server.start()

    def close(self) -> None:
        servers, self._servers = self._servers, []
        for server in servers:
            server.close()
