"""A copy of Dagster 1.13.29's resolver functions for the DAGSTER cascade.

The timeouts and byte limits come from ``dagster/_grpc/utils.py``, the restart interval from
``dagster/_cli/proxy_server_manager.py`` (the one ``dagster code-server start`` uses) and the
exception-logging switch from ``dagster/_grpc/server.py``.

Used to test the conformance helper against the real rules without installing Dagster; the
``dagster`` tox environment checks the same model against Dagster's own functions
(``tests/dagster_conformance/test_dagster_conformance.py``). The function bodies and constants are Dagster's,
verbatim but for line wrapping; only the return annotations of the grace function and of
``_maybe_log_exception``, which Dagster omits, are added. ``code_server_logs_exceptions`` is
not Dagster's: it turns ``_maybe_log_exception`` into a resolver.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable

__all__ = ["RESOLVERS"]

_DEFAULT_GRPC_TIMEOUT_IF_NO_ENV_VAR_SET = 60
_DEFAULT_REPOSITORY_TIMEOUT_IF_NO_ENV_VAR_SET = 180


def max_rx_bytes() -> int:
    env_set = os.getenv("DAGSTER_GRPC_MAX_RX_BYTES")
    if env_set:
        return int(env_set)

    # default 100 MB
    return 100 * (10**6)


def max_send_bytes() -> int:
    env_set = os.getenv("DAGSTER_GRPC_MAX_SEND_BYTES")
    if env_set:
        return int(env_set)

    # default 100 MB
    return 100 * (10**6)


def default_grpc_timeout() -> int:
    env_set = os.getenv("DAGSTER_GRPC_TIMEOUT_SECONDS")
    if env_set:
        return int(env_set)

    return _DEFAULT_GRPC_TIMEOUT_IF_NO_ENV_VAR_SET


def default_repository_grpc_timeout() -> int:
    env_set = os.getenv("DAGSTER_REPOSITORY_GRPC_TIMEOUT_SECONDS")
    if env_set:
        return int(env_set)

    return max(_DEFAULT_REPOSITORY_TIMEOUT_IF_NO_ENV_VAR_SET, default_grpc_timeout())


def default_schedule_grpc_timeout() -> int:
    env_set = os.getenv("DAGSTER_SCHEDULE_GRPC_TIMEOUT_SECONDS")
    if env_set:
        return int(env_set)

    return default_grpc_timeout()


def default_sensor_grpc_timeout() -> int:
    env_set = os.getenv("DAGSTER_SENSOR_GRPC_TIMEOUT_SECONDS")
    if env_set:
        return int(env_set)

    return default_grpc_timeout()


def default_grpc_server_shutdown_grace_period() -> int:
    # Time to wait for calls to finish before shutting down the server
    # Defaults to the same as default_grpc_timeout() unless
    # DAGSTER_GRPC_SHUTDOWN_GRACE_PERIOD is set
    # default_repository_grpc_timeout(0) is omitted since that call is only
    # made during startup and is unlikely to need to be cleanly completed
    # in order to avoid downtime

    env_set = os.getenv("DAGSTER_GRPC_SHUTDOWN_GRACE_PERIOD")
    if env_set:
        return int(env_set)

    return max(default_grpc_timeout(), default_schedule_grpc_timeout(), default_sensor_grpc_timeout())


# dagster/_cli/proxy_server_manager.py


def get_auto_restart_code_server_interval() -> int:
    return int(os.getenv("DAGSTER_CODE_SERVER_AUTO_RESTART_INTERVAL", "5"))


# dagster/_grpc/server.py


def _maybe_log_exception(logger: logging.Logger, call_name: str) -> None:
    if not os.getenv("DAGSTER_CODE_SERVER_LOG_EXCEPTIONS"):
        return

    logger.exception(f"Exception during {call_name} code server call")


class RecordingHandler(logging.Handler):
    """Keeps the records it is given."""

    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def logs_exceptions(maybe_log_exception: Callable[[logging.Logger, str], None]) -> bool:
    """Whether ``maybe_log_exception`` logs, given a logger of its own that records."""
    handler = RecordingHandler()
    logger = logging.Logger("pytest_grpc_deadlines.calls._recording")  # not registered: no parents
    logger.addHandler(handler)
    maybe_log_exception(logger, "Ping")
    return bool(handler.records)


def code_server_logs_exceptions() -> bool:
    return logs_exceptions(_maybe_log_exception)


#: Setting name of ``pytest_grpc_deadlines.DAGSTER`` -> the Dagster function that resolves it.
RESOLVERS: dict[str, Callable[[], object]] = {
    "default": default_grpc_timeout,
    "repository": default_repository_grpc_timeout,
    "schedule": default_schedule_grpc_timeout,
    "sensor": default_sensor_grpc_timeout,
    "grace": default_grpc_server_shutdown_grace_period,
    "max_rx_bytes": max_rx_bytes,
    "max_send_bytes": max_send_bytes,
    "restart_interval": get_auto_restart_code_server_interval,
    "log_exceptions": code_server_logs_exceptions,
}
