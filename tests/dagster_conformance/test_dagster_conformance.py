"""The DAGSTER cascade against Dagster's own resolver functions (run by ``tox -e dagster``).

Skipped where Dagster is not installed. The import names ``dagster._grpc.utils`` rather than
``dagster``: with ``tests/`` on ``sys.path`` this very folder would import as a namespace package
called ``dagster`` and the skip would not happen.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable

import pytest

from pytest_grpc_deadlines import DAGSTER, assert_cascade_conforms

utils = pytest.importorskip("dagster._grpc.utils")


def test_dagster_cascade_conforms_to_dagsters_own_resolvers() -> None:
    resolvers: dict[str, Callable[[], object]] = {
        "default": utils.default_grpc_timeout,
        "repository": utils.default_repository_grpc_timeout,
        "schedule": utils.default_schedule_grpc_timeout,
        "sensor": utils.default_sensor_grpc_timeout,
        "grace": utils.default_grpc_server_shutdown_grace_period,
        "max_rx_bytes": utils.max_rx_bytes,
        "max_send_bytes": utils.max_send_bytes,
    }
    assert_cascade_conforms(DAGSTER, resolvers, max_examples=300)


def test_dagster_client_has_the_constants_the_cascade_binds() -> None:
    assert len(DAGSTER.bindings) == 4
    for binding in DAGSTER.bindings:
        module = importlib.import_module(binding.module)
        assert isinstance(getattr(module, binding.attribute, None), int), str(binding)
