"""What the suite needs beyond the plugin's required dependencies, and the tests that skip without it.

The ``test`` extra installs all of it. Without grpcio-testing (the ``fake-time`` extra) the tests
marked ``needs_grpc_testing`` skip; without pytest-asyncio the asyncio tests skip (and its ini
key in pyproject.toml stays accepted under ``--strict-config``); without Dagster the conformance
tests skip (``tests/dagster_conformance``, ``importorskip``).
"""

from __future__ import annotations

import inspect

import pytest

from tests.needs import ASYNCIO_MISSING, GRPC_TESTING_MISSING


def pytest_addoption(parser: pytest.Parser, pluginmanager: pytest.PytestPluginManager) -> None:
    if not pluginmanager.has_plugin("asyncio"):
        parser.addini("asyncio_default_fixture_loop_scope", "pytest-asyncio's; it is not installed")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "needs_grpc_testing: skips without grpcio-testing")
    if not config.pluginmanager.has_plugin("asyncio"):
        config.addinivalue_line("markers", f"asyncio: {ASYNCIO_MISSING}: skipped")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    asyncio_missing = not config.pluginmanager.has_plugin("asyncio")
    for item in items:
        if GRPC_TESTING_MISSING and item.get_closest_marker("needs_grpc_testing"):
            item.add_marker(pytest.mark.skip(reason=GRPC_TESTING_MISSING))
        function = getattr(item, "function", None)
        if asyncio_missing and (item.get_closest_marker("asyncio") or inspect.iscoroutinefunction(function)):
            item.add_marker(pytest.mark.skip(reason=ASYNCIO_MISSING))
