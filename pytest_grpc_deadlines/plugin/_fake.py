"""The fake-clock fixtures ``grpc_fake_servicers`` and ``grpc_fake_server``; registered by the
plugin at configure time. grpcio-testing is imported only when a fake server is made."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:  # grpc and the probe's descriptors load when a fixture first needs them
    from ..servers._fake import FakeServer, FakeServicerPair

__all__ = ["grpc_fake_server", "grpc_fake_servicers"]


@pytest.fixture(scope="module")
def grpc_fake_servicers() -> Sequence[FakeServicerPair]:
    """The ``(service_descriptor, servicer)`` pairs ``grpc_fake_server`` hosts. Override it
    (module scope) to host your own; the default is the built-in probe service."""
    from ..probe import PROBE_SERVICE, ProbeServicer

    return [(PROBE_SERVICE, ProbeServicer())]


@pytest.fixture
def grpc_fake_server(grpc_fake_servicers: Sequence[FakeServicerPair]) -> Iterator[FakeServer]:
    """A ``FakeServer`` hosting ``grpc_fake_servicers`` on a fake clock starting at 0.0, closed
    after the test. Needs the ``fake-time`` extra (grpcio-testing)."""
    from ..servers._fake import FakeServer, _grpc_testing

    try:
        _grpc_testing("the grpc_fake_server fixture")
    except ImportError as exc:
        raise pytest.fail.Exception(str(exc), pytrace=False) from None
    server = FakeServer(*grpc_fake_servicers)
    try:
        yield server
    finally:
        server.close()
