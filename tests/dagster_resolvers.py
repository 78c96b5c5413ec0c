"""A copy of Dagster 1.13.29's timeout resolver functions (``dagster/_grpc/utils.py``).

Used to test the conformance helper against the real rules without installing Dagster; the
``dagster`` tox environment checks the same model against Dagster's own functions
(``tests/dagster_conformance/test_dagster_conformance.py``). The function bodies and constants are Dagster's,
verbatim but for line wrapping; only the grace function's return annotation, which Dagster
omits, is added.
"""

from __future__ import annotations

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


#: Setting name of ``pytest_grpc_deadlines.DAGSTER`` -> the Dagster function that resolves it.
RESOLVERS: dict[str, Callable[[], object]] = {
    "default": default_grpc_timeout,
    "repository": default_repository_grpc_timeout,
    "schedule": default_schedule_grpc_timeout,
    "sensor": default_sensor_grpc_timeout,
    "grace": default_grpc_server_shutdown_grace_period,
    "max_rx_bytes": max_rx_bytes,
    "max_send_bytes": max_send_bytes,
}
