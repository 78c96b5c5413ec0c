"""The asyncio fixtures' names when pytest-asyncio is not installed or not enabled: each fails the
test saying what to do, instead of pytest's bare "fixture not found"."""

from __future__ import annotations

import pytest

__all__ = ["grpc_aio_test_server", "grpc_aio_test_server_factory"]


def _missing(name: str) -> BaseException:
    return pytest.fail.Exception(
        f"{name} needs pytest-asyncio, which is not installed or not enabled (-p no:asyncio): "
        "install it (python -m pip install pytest-asyncio) and mark the test "
        "@pytest.mark.asyncio (or set asyncio_mode = auto); a sync test uses grpc_test_server "
        "instead",
        pytrace=False,
    )


@pytest.fixture
def grpc_aio_test_server() -> None:
    """Needs pytest-asyncio (see the asyncio fixtures)."""
    raise _missing("grpc_aio_test_server")


@pytest.fixture
def grpc_aio_test_server_factory() -> None:
    """Needs pytest-asyncio (see the asyncio fixtures)."""
    raise _missing("grpc_aio_test_server_factory")
