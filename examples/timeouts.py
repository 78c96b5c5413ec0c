"""A small client library that reads Dagster-style timeouts the way Dagster 1.13 does."""

from __future__ import annotations

import os


def sensor_timeout() -> int:
    """Seconds a sensor evaluation may take: DAGSTER_SENSOR_GRPC_TIMEOUT_SECONDS, else default."""
    value = os.getenv("DAGSTER_SENSOR_GRPC_TIMEOUT_SECONDS")
    if value:
        return int(value)
    return default_timeout()


def default_timeout() -> int:
    value = os.getenv("DAGSTER_GRPC_TIMEOUT_SECONDS")
    if value:
        return int(value)
    return 60


def shutdown_grace() -> int:
    """A buggy grace rule: forgets the sensor timeout, unlike Dagster's max(default, schedule, sensor)."""
    value = os.getenv("DAGSTER_GRPC_SHUTDOWN_GRACE_PERIOD")
    if value:
        return int(value)
    return default_timeout()
