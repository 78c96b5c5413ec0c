"""The DAGSTER cascade binds every copy Dagster makes of a timeout at import (``tox -e dagster``).

A guard scans the installed Dagster's source: a module that computes a timeout at import, or
imports one of those constants, must be bound, so a Dagster release that adds a copy fails here
instead of letting a marker pass falsely. Then a marker is checked to reach every copy: the
constants, and the default arguments of ``DagsterGrpcClient``, ``DagsterProxyApiServicer`` and
the sensor snapshot API.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import pathlib

import pytest

from pytest_grpc_deadlines import DAGSTER

utils = pytest.importorskip("dagster._grpc.utils")
client = importlib.import_module("dagster._grpc.client")
proxy_server = importlib.import_module("dagster._grpc.proxy_server")
snapshot_sensor = importlib.import_module("dagster._api.snapshot_sensor")

#: Dagster's resolver functions, by the setting each resolves.
RESOLVERS = {
    "default_grpc_timeout": "default",
    "default_repository_grpc_timeout": "repository",
    "default_schedule_grpc_timeout": "schedule",
    "default_sensor_grpc_timeout": "sensor",
}


def _copies() -> dict[tuple[str, str], str]:
    """Every module attribute Dagster sets at import from a timeout: ``(module, attribute)`` ->
    what it copies (a resolver call, or an import of another module's copy)."""
    package = pathlib.Path(importlib.import_module("dagster").__file__ or "").parent
    computed: dict[tuple[str, str], str] = {}
    imports: list[tuple[str, str, str, str]] = []
    for path in sorted(package.rglob("*.py")):
        module = ".".join(("dagster", *path.relative_to(package).with_suffix("").parts))
        module = module.removesuffix(".__init__")
        try:
            tree = ast.parse(path.read_text(encoding="utf-8"))
        except (SyntaxError, UnicodeDecodeError):
            continue
        for node in tree.body:
            if isinstance(node, ast.Assign) and isinstance(node.value, ast.Call):
                func = node.value.func
                name = func.id if isinstance(func, ast.Name) else getattr(func, "attr", "")
                if name in RESOLVERS:
                    for target in node.targets:
                        if isinstance(target, ast.Name):
                            computed[(module, target.id)] = f"{name}()"
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                for alias in node.names:
                    imports.append((module, alias.asname or alias.name, node.module, alias.name))
    copies = dict(computed)
    for module, attribute, source, name in imports:
        if (source, name) in computed:
            copies[(module, attribute)] = f"from {source} import {name}"
    return copies


def test_every_module_that_copies_a_timeout_at_import_is_bound() -> None:
    bound = {(binding.module, binding.attribute) for binding in DAGSTER.bindings}
    copies = _copies()
    assert copies, "found no copies at all: the scan no longer fits Dagster's source"
    unbound = {f"{module}.{attribute} ({how})" for (module, attribute), how in copies.items()} - {
        f"{module}.{attribute} ({copies[(module, attribute)]})" for module, attribute in bound
    }
    assert unbound == set(), f"Dagster copies timeouts the DAGSTER cascade does not bind: {sorted(unbound)}"
    stale = sorted(f"{module}.{attribute}" for module, attribute in bound - set(copies))
    assert stale == [], f"DAGSTER binds attributes Dagster no longer sets: {stale}"


def _default(function: object, parameter: str) -> object:
    return inspect.signature(inspect.unwrap(function)).parameters[parameter].default  # type: ignore[arg-type]


def _every_copy() -> dict[str, object]:
    grpc_client = client.DagsterGrpcClient
    return {
        "client.DEFAULT_GRPC_TIMEOUT": client.DEFAULT_GRPC_TIMEOUT,
        "client.DEFAULT_SCHEDULE_GRPC_TIMEOUT": client.DEFAULT_SCHEDULE_GRPC_TIMEOUT,
        "client.DEFAULT_SENSOR_GRPC_TIMEOUT": client.DEFAULT_SENSOR_GRPC_TIMEOUT,
        "client.DEFAULT_REPOSITORY_GRPC_TIMEOUT": client.DEFAULT_REPOSITORY_GRPC_TIMEOUT,
        "DagsterGrpcClient._query(timeout)": _default(grpc_client._query, "timeout"),
        "DagsterGrpcClient.external_job(timeout)": _default(grpc_client.external_job, "timeout"),
        "DagsterGrpcClient.external_repository(timeout)": _default(
            grpc_client.external_repository, "timeout"
        ),
        "proxy_server.DEFAULT_GRPC_TIMEOUT": proxy_server.DEFAULT_GRPC_TIMEOUT,
        "proxy_server.DEFAULT_SENSOR_GRPC_TIMEOUT": proxy_server.DEFAULT_SENSOR_GRPC_TIMEOUT,
        "proxy_server.DEFAULT_REPOSITORY_GRPC_TIMEOUT": proxy_server.DEFAULT_REPOSITORY_GRPC_TIMEOUT,
        "DagsterProxyApiServicer._query(timeout)": _default(
            proxy_server.DagsterProxyApiServicer._query, "timeout"
        ),
        "DagsterProxyApiServicer._streaming_query(timeout)": _default(
            proxy_server.DagsterProxyApiServicer._streaming_query, "timeout"
        ),
        "snapshot_sensor.DEFAULT_GRPC_TIMEOUT": snapshot_sensor.DEFAULT_GRPC_TIMEOUT,
        "sync_get_external_sensor_execution_data_ephemeral_grpc(timeout)": _default(
            snapshot_sensor.sync_get_external_sensor_execution_data_ephemeral_grpc, "timeout"
        ),
    }


def _expected(default: int, schedule: int, sensor: int, repository: int) -> dict[str, object]:
    by_setting = {"default": default, "schedule": schedule, "sensor": sensor, "repository": repository}
    expected: dict[str, object] = {}
    for name in _every_copy():
        if "REPOSITORY" in name or "repository" in name:
            expected[name] = by_setting["repository"]
        elif "SCHEDULE" in name:
            expected[name] = by_setting["schedule"]
        elif "SENSOR" in name:
            expected[name] = by_setting["sensor"]
        else:
            expected[name] = by_setting["default"]
    return expected


# Outside values first (checked again after the marked test, in file order).
AMBIENT = _every_copy()


@pytest.mark.grpc_timeouts(default=2, schedule=10, sensor=3, repository=200)
def test_a_marker_reaches_every_copy_dagster_made_at_import() -> None:
    assert _every_copy() == _expected(default=2, schedule=10, sensor=3, repository=200)


def test_after_the_marked_test_every_copy_has_its_outside_value() -> None:
    assert _every_copy() == AMBIENT


def test_a_first_import_inside_a_marked_test_does_not_leak(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """In a process of its own: ``import dagster`` does not import the client, so the first
    import happens in the marked test."""
    for env_var in DAGSTER.env_vars:
        monkeypatch.delenv(env_var, raising=False)
    pytester.makepyfile(
        test_mod="""
        import importlib
        import sys

        import pytest

        def test_not_yet():
            import dagster  # noqa: F401

            assert "dagster._grpc.client" not in sys.modules

        @pytest.mark.grpc_timeouts(sensor=1, default=2)
        def test_first_import():
            client = importlib.import_module("dagster._grpc.client")
            assert (client.DEFAULT_SENSOR_GRPC_TIMEOUT, client.DEFAULT_GRPC_TIMEOUT) == (1, 2)

        def test_after():
            import inspect

            client = importlib.import_module("dagster._grpc.client")
            query = inspect.signature(client.DagsterGrpcClient._query).parameters["timeout"].default
            assert (client.DEFAULT_SENSOR_GRPC_TIMEOUT, client.DEFAULT_GRPC_TIMEOUT, query) == (60, 60, 60)
        """
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=3)
