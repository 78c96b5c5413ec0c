"""Timeouts per test: the cascade's environment variables set by a marker, hermetically, and
what the client library makes of them."""

from __future__ import annotations

import os
import subprocess
import sys

import inventory_client
import pytest

from pytest_grpc_deadlines import Resolved, check


@pytest.mark.grpc_timeouts(sensor=5)
def test_the_sensor_timeout_reaches_the_client(grpc_timeouts: Resolved) -> None:
    assert inventory_client.sensor_timeout() == 5
    assert grpc_timeouts.sensor == 5
    assert grpc_timeouts.source("sensor") == (
        "DAGSTER_SENSOR_GRPC_TIMEOUT_SECONDS='5' (marker on test_the_sensor_timeout_reaches_the_client)"
    )
    # Hermetic: whatever the machine running the tests has set, the other variables are gone.
    assert "DAGSTER_GRPC_TIMEOUT_SECONDS" not in os.environ
    assert inventory_client.default_timeout() == grpc_timeouts.default == 60


@pytest.mark.grpc_timeouts(default=20, sensor=5)  # a class marker applies to each test ...
class TestPrecedence:
    def test_the_class_marker_applies(self, grpc_timeouts: Resolved) -> None:
        assert (grpc_timeouts.default, grpc_timeouts.sensor) == (20, 5)

    @pytest.mark.grpc_timeouts(sensor=None)  # ... and the function marker wins, key by key
    def test_the_function_marker_wins(self, grpc_timeouts: Resolved) -> None:
        assert inventory_client.sensor_timeout() == 20  # no sensor variable: the default applies
        assert grpc_timeouts.source("sensor") == "derived: default=20"


@pytest.mark.grpc_timeouts(sensor="abc")
def test_a_bad_value_reaches_the_client_as_dagster_would_see_it() -> None:
    with pytest.raises(ValueError, match="invalid literal for int"):
        inventory_client.sensor_timeout()


@pytest.mark.grpc_timeouts(grace=5, sensor=400)
def test_a_grace_below_the_sensor_timeout_is_flagged(grpc_timeouts: Resolved) -> None:
    [violation] = check(grpc_timeouts)
    assert violation.severity == "warning"
    assert violation.message.startswith("grace 5 < sensor 400")

    # The same check from the command line, on the environment the test sees.
    explain = subprocess.run(
        [sys.executable, "-m", "pytest_grpc_deadlines", "explain"],
        env=grpc_timeouts.environ(os.environ),
        capture_output=True,
        text=True,
        check=False,
    )
    assert explain.returncode == 1  # 0 all well, 1 warnings, 2 errors
    assert "grace 5 < sensor 400" in explain.stdout
