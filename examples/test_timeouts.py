"""The plugin at work: per-test timeouts, their sources, and a resolver checked against the model."""

from __future__ import annotations

import os

import pytest
import timeouts

from pytest_grpc_deadlines import DAGSTER, Resolved, assert_cascade_conforms, check


@pytest.mark.grpc_timeouts(sensor=1)
def test_sensor_timeout_reaches_the_code(grpc_timeouts: Resolved) -> None:
    assert timeouts.sensor_timeout() == 1
    assert grpc_timeouts.sensor == 1
    assert grpc_timeouts.source("sensor") == (
        "DAGSTER_SENSOR_GRPC_TIMEOUT_SECONDS='1' (marker on test_sensor_timeout_reaches_the_code)"
    )


@pytest.mark.grpc_timeouts(default=240)
def test_repository_follows_default_above_180(grpc_timeouts: Resolved) -> None:
    assert grpc_timeouts.repository == 240
    assert grpc_timeouts.source("repository") == "derived: max(180, default=240)"
    assert "DAGSTER_REPOSITORY_GRPC_TIMEOUT_SECONDS" not in os.environ


@pytest.mark.grpc_timeouts(grace=5, sensor=400)
def test_grace_below_sensor_is_flagged(grpc_timeouts: Resolved) -> None:
    [violation] = check(grpc_timeouts)
    assert violation.settings == ("grace", "default", "schedule", "sensor")
    assert violation.message.startswith("grace 5 < sensor 400: in-flight sensor calls")
    assert "cut at shutdown" in violation.message


@pytest.mark.grpc_timeouts(sensor="abc")
def test_bad_env_value_reaches_the_code_as_dagster_would_see_it() -> None:
    with pytest.raises(ValueError, match="invalid literal for int"):
        timeouts.sensor_timeout()


def test_sensor_resolver_conforms_to_dagster() -> None:
    assert_cascade_conforms(
        DAGSTER,
        {"default": timeouts.default_timeout, "sensor": timeouts.sensor_timeout},
        max_examples=100,
    )


def test_buggy_grace_resolver_is_caught() -> None:
    with pytest.raises(AssertionError, match="grace: resolver gave value"):
        assert_cascade_conforms(DAGSTER, {"grace": timeouts.shutdown_grace}, max_examples=200)
