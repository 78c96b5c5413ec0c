"""Several cascades in one run, through pytest: ini ``grpc_deadlines_cascade`` lists them, markers
and ``--grpc-timeout`` set any of their settings, and grpc's simple stubs follow a marker."""

from __future__ import annotations

import pytest

from pytest_grpc_deadlines import DAGSTER, GRPC_SIMPLE_STUBS, OTEL_OTLP

QUIET = ("-p", "no:asyncio", "-p", "no:hypothesispytest", "-p", "no:cacheprovider")


@pytest.fixture(autouse=True)
def no_ambient_cascades(monkeypatch: pytest.MonkeyPatch) -> None:
    for cascade in (DAGSTER, OTEL_OTLP, GRPC_SIMPLE_STUBS):
        for env_var in cascade.env_vars:
            monkeypatch.delenv(env_var, raising=False)


def test_markers_and_options_set_the_settings_of_every_listed_cascade(pytester: pytest.Pytester) -> None:
    pytester.makeini(
        "[pytest]\ngrpc_deadlines_cascade =\n    dagster\n    otel_otlp\n    grpc_simple_stubs\n"
        "grpc_timeouts = traces=2.5\n"
    )
    pytester.makepyfile(
        """
        import inspect
        import os

        import grpc._simple_stubs as stubs
        import pytest

        @pytest.mark.grpc_timeouts(sensor=30, metrics=0, default_timeout=7)
        def test_all_three(grpc_timeouts):
            assert os.environ["DAGSTER_SENSOR_GRPC_TIMEOUT_SECONDS"] == "30"
            assert os.environ["OTEL_EXPORTER_OTLP_TRACES_TIMEOUT"] == "2.5"
            assert (grpc_timeouts.sensor, grpc_timeouts.traces, grpc_timeouts.logs) == (30, 2.5, 4.0)
            # 0 falls through to the general timeout, as the exporter reads it
            assert grpc_timeouts.metrics == 4.0
            traces = "OTEL_EXPORTER_OTLP_TRACES_TIMEOUT='2.5' (ini grpc_timeouts)"
            assert grpc_timeouts.source("traces") == traces
            # grpc's simple stubs copied theirs at import: the copies follow the marker
            assert stubs._DEFAULT_TIMEOUT == 7.0
            assert 7.0 in inspect.unwrap(stubs.unary_unary).__defaults__

        def test_unmarked(grpc_timeouts):
            assert "DAGSTER_SENSOR_GRPC_TIMEOUT_SECONDS" not in os.environ
            assert grpc_timeouts.traces == 2.5
            assert stubs._DEFAULT_TIMEOUT == 60.0
        """
    )
    result = pytester.runpytest_subprocess(*QUIET, "--grpc-timeout", "timeout=4")
    result.assert_outcomes(passed=2)


def test_a_setting_two_cascades_share_is_named_by_its_cascade(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        mine="""
        from pytest_grpc_deadlines import Cascade, Seconds, Setting

        MINE = Cascade("mine", (Setting("timeout", "MINE_TIMEOUT", 5.0, rule=Seconds(), kind="seconds"),))
        """,
        test_shared="""
        import pytest

        @pytest.mark.grpc_timeouts(mine_timeout=1.5, otel_otlp_timeout=3)
        def test_both(grpc_timeouts):
            assert (grpc_timeouts.mine_timeout, grpc_timeouts.traces) == (1.5, 3.0)

        @pytest.mark.grpc_timeouts(timeout=1)
        def test_bare(grpc_timeouts):
            pass
        """,
    )
    pytester.makeini("[pytest]\npythonpath = .\ngrpc_deadlines_cascade = otel_otlp mine:MINE\n")
    result = pytester.runpytest_subprocess(*QUIET)
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(
        [
            "*@pytest.mark.grpc_timeouts on test_bare: unknown setting 'timeout' for the otel_otlp+mine "
            "cascade; accepted keywords: otel_otlp_timeout, traces, metrics, logs, mine_timeout, "
            "inherit; 'timeout' is a setting of several cascades here, so each has its cascade's "
            "name: otel_otlp_timeout, mine_timeout"
        ]
    )


def test_cascades_that_read_one_variable_are_a_usage_error(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        twin="""
        from pytest_grpc_deadlines import Cascade, Seconds, Setting

        TWIN = Cascade("twin", (Setting("t", "OTEL_EXPORTER_OTLP_TIMEOUT", 10.0, rule=Seconds()),))
        """,
        test_nothing="def test_nothing():\n    pass\n",
    )
    pytester.makeini("[pytest]\npythonpath = .\ngrpc_deadlines_cascade = otel_otlp, twin:TWIN\n")
    result = pytester.runpytest_subprocess(*QUIET)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        [
            "ERROR: ini grpc_deadlines_cascade: OTEL_EXPORTER_OTLP_TIMEOUT is read by both the "
            "otel_otlp and the twin cascades*"
        ]
    )
