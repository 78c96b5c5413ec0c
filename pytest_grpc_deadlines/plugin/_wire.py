"""The wire proxy fixtures; registered by the plugin at configure time."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:  # loaded when a fixture first needs them
    from ..servers._sync import GrpcTestServer
    from ..wire import WireProxy

__all__ = ["grpc_wire_proxy", "grpc_wire_proxy_factory"]

WireProxyFactory = Callable[..., "WireProxy"]


@pytest.fixture
def grpc_wire_proxy_factory() -> Iterator[WireProxyFactory]:
    """``grpc_wire_proxy_factory(target, *, seed=None)`` starts a TCP proxy on loopback in front
    of ``target`` (a loopback ``host:port``: a test server's, or one the test started itself);
    its ``target`` is what clients dial. Every proxy is closed after the test: connections reset,
    held chunks released, threads joined."""
    from ..wire import WireProxy

    proxies: list[WireProxy] = []

    def factory(target: str, *, seed: int | None = None) -> WireProxy:
        proxy = WireProxy(target, seed=seed)
        proxies.append(proxy)
        return proxy.start()

    try:
        yield factory
    finally:
        for proxy in proxies:
            proxy.close()


@pytest.fixture
def grpc_wire_proxy(grpc_test_server: GrpcTestServer, grpc_wire_proxy_factory: WireProxyFactory) -> WireProxy:
    """A wire proxy in front of ``grpc_test_server``: dial ``grpc_wire_proxy.target`` (or
    ``grpc.insecure_channel(grpc_wire_proxy.target)``) to put faults between the client and the
    server."""
    return grpc_wire_proxy_factory(grpc_test_server.target)
