"""The pytest plugin: the only layer that imports pytest.

Layer contract: may import every other layer (``cascade``, ``servers``, ``calls``, ``probe``);
nothing else in the package imports it. Registered through the ``pytest11`` entry point
``grpc_deadlines = "pytest_grpc_deadlines.plugin"``; disable it with ``-p no:grpc_deadlines``.

Modules: ``_config`` (options, ini keys, configure), ``_state`` (what configure settles),
``_markers`` (the ``grpc_timeouts`` marker and fixture), ``_calls`` (call records, audit, summary,
``grpc_calls``), ``_servers`` / ``_aio_servers`` / ``_fake`` (server fixtures, registered at
configure time).
"""

from __future__ import annotations

from ._calls import grpc_calls
from ._config import pytest_addoption, pytest_configure, pytest_unconfigure
from ._markers import _grpc_deadlines_settings, grpc_timeouts, pytest_runtest_call

__all__ = [
    "_grpc_deadlines_settings",
    "grpc_calls",
    "grpc_timeouts",
    "pytest_addoption",
    "pytest_configure",
    "pytest_runtest_call",
    "pytest_unconfigure",
]
