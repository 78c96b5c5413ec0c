"""The Dagster harness fixtures; registered by the plugin at configure time when Dagster is
installed (the ``dagster`` extra). Dagster is imported when a fixture first makes a server."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

from ._state import configured_cascade

if TYPE_CHECKING:  # grpc loads when a fixture first needs it
    from ..dagster import DagsterCodeServer, DagsterProxy

__all__ = ["grpc_dagster_code_server", "grpc_dagster_definitions", "grpc_dagster_proxy"]


@pytest.fixture
def grpc_dagster_definitions() -> str:
    """The module whose ``Definitions`` the code server loads (as ``dagster api grpc -m``).
    Override it, in a conftest or test module, to name your own."""
    raise pytest.fail.Exception(
        "grpc_dagster_code_server needs the definitions it loads: override the "
        "grpc_dagster_definitions fixture to return a module name, e.g. "
        "'@pytest.fixture\\ndef grpc_dagster_definitions(): return \"myproject.definitions\"'",
        pytrace=False,
    )


@pytest.fixture
def grpc_dagster_code_server(
    grpc_dagster_definitions: str, pytestconfig: pytest.Config
) -> Iterator[DagsterCodeServer]:
    """Dagster's own ``DagsterApiServer`` for ``grpc_dagster_definitions``, in-process on a test
    server (records, delays, gates and faults apply to Dagster's methods), started for the test
    with its settings in force and stopped after it."""
    from ..dagster import DagsterCodeServer

    server = DagsterCodeServer(grpc_dagster_definitions, cascade=configured_cascade(pytestconfig))
    try:
        yield server.start()
    finally:
        server.close()


@pytest.fixture
def grpc_dagster_proxy(grpc_dagster_code_server: DagsterCodeServer) -> Iterator[DagsterProxy]:
    """Dagster's own ``DagsterProxyApiServicer`` (``dagster code-server start``) in front of
    ``grpc_dagster_code_server``, in-process."""
    from ..dagster import DagsterProxy

    proxy = DagsterProxy(grpc_dagster_code_server)
    try:
        yield proxy.start()
    finally:
        proxy.close()
