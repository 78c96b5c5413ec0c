"""The DAGSTER cascade against Dagster's own resolver functions (run by ``tox -e dagster``).

Skipped where Dagster is not installed. The import names ``dagster._grpc.utils`` rather than
``dagster``: with ``tests/`` on ``sys.path`` this very folder would import as a namespace package
called ``dagster`` and the skip would not happen.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Callable

import pytest

from pytest_grpc_deadlines import DAGSTER, assert_cascade_conforms

utils = pytest.importorskip("dagster._grpc.utils")
server = importlib.import_module("dagster._grpc.server")
proxy_server_manager = importlib.import_module("dagster._cli.proxy_server_manager")
api = importlib.import_module("dagster._cli.api")
click = importlib.import_module("click")  # Dagster's CLI is built on it

RESTART = "DAGSTER_CODE_SERVER_AUTO_RESTART_INTERVAL"


class _Recording(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def code_server_logs_exceptions() -> bool:
    """Whether Dagster's ``_maybe_log_exception`` logs, given a logger of its own that records."""
    handler = _Recording()
    logger = logging.Logger("pytest_grpc_deadlines.calls._recording")  # not registered: no parents
    logger.addHandler(handler)
    server._maybe_log_exception(logger, "Ping")
    return bool(handler.records)


def grpc_option(name: str) -> Callable[[], object]:
    """``dagster api grpc``'s own option ``name`` read from its environment variable by click.

    The option goes into a command of its own, so that another option's bad value (which makes
    click refuse the whole command line) does not hide this one's.
    """
    (option,) = [param for param in api.grpc_command.params if param.name == name]
    command = click.Command("grpc", params=[option])

    def resolve() -> object:
        return command.make_context("grpc", []).params[name]

    return resolve


def test_dagster_cascade_conforms_to_dagsters_own_resolvers() -> None:
    resolvers: dict[str, Callable[[], object]] = {
        "default": utils.default_grpc_timeout,
        "repository": utils.default_repository_grpc_timeout,
        "schedule": utils.default_schedule_grpc_timeout,
        "sensor": utils.default_sensor_grpc_timeout,
        "grace": utils.default_grpc_server_shutdown_grace_period,
        "max_rx_bytes": utils.max_rx_bytes,
        "max_send_bytes": utils.max_send_bytes,
        "restart_interval": proxy_server_manager.get_auto_restart_code_server_interval,
        "log_exceptions": code_server_logs_exceptions,
    }
    # 1000: a 300-example run misses LOG_EXCEPTIONS="0" about one time in thirteen.
    assert_cascade_conforms(DAGSTER, resolvers, max_examples=1000)


def test_dagster_cascade_conforms_to_dagster_api_grpc_options() -> None:
    resolvers = {name: grpc_option(name) for name in ("port", "socket", "host", "max_workers")}
    assert_cascade_conforms(DAGSTER, resolvers, max_examples=200)


def test_dagster_api_grpc_reads_the_cascade_variables() -> None:
    options = {param.name: param for param in api.grpc_command.params}
    for name in ("port", "socket", "host", "max_workers"):
        assert options[name].envvar == DAGSTER[name].env_var


def test_code_server_start_polls_with_the_proxy_server_managers_interval(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The monitoring loop names the function of its own module (default 5), not server.py's.
    monitor = proxy_server_manager.ProxyServerManager._process_monitoring_thread
    assert "get_auto_restart_code_server_interval" in monitor.__code__.co_names
    monkeypatch.delenv(RESTART, raising=False)
    assert (
        proxy_server_manager.get_auto_restart_code_server_interval() == DAGSTER.resolve({}).restart_interval
    )
    # The environment document's 30 is the default of server.py's uncalled copy.
    assert server.get_auto_restart_code_server_interval() == 30


def test_dagster_has_the_constants_the_cascade_binds() -> None:
    for binding in DAGSTER.bindings:
        module = importlib.import_module(binding.module)
        assert isinstance(getattr(module, binding.attribute, None), int), str(binding)


code_server_cli = importlib.import_module("dagster._cli.code_server")


def start_option(name: str) -> Callable[[], object]:
    """``dagster code-server start``'s own option ``name`` read from its environment variable."""
    (option,) = [param for param in code_server_cli.start_command.params if param.name == name]
    command = click.Command("start", params=[option])

    def resolve() -> object:
        return command.make_context("start", []).params[name]

    return resolve


def test_dagster_cascade_conforms_to_dagster_code_server_start_options() -> None:
    options = {
        "code_server_port": "port",
        "code_server_socket": "socket",
        "code_server_host": "host",
        "code_server_max_workers": "max_workers",
        "startup_timeout": "startup_timeout",
    }
    resolvers = {setting: start_option(option) for setting, option in options.items()}
    # The heartbeat defaults are int(os.getenv(X, "30")), evaluated when the module is imported.
    resolvers["heartbeat_ttl"] = code_server_cli.get_default_grpc_proxy_heartbeat_ttl
    resolvers["heartbeat_timeout"] = code_server_cli.get_default_proxy_server_heartbeat_timeout
    assert_cascade_conforms(DAGSTER, resolvers, max_examples=300)


def test_the_processes_read_what_dagster_reads() -> None:
    """Each process lists the variables its Dagster entry point reads: code-server start's own
    options are the cascade's, and `dagster dev` is the only reader of the restart interval."""
    start = {param.envvar for param in code_server_cli.start_command.params if param.envvar}
    by_name = {process.name: process for process in DAGSTER.processes}
    read = {DAGSTER[name].env_var for name in by_name["code-server-start"].settings}
    assert start & set(DAGSTER.env_vars) <= read
    assert [p.name for p in DAGSTER.processes if "restart_interval" in p.settings] == ["dev"]
