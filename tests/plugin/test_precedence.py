"""The plugin's precedence and hermeticity rules, checked from the outside with pytester.

Lowest first: the ambient environment (only with ``inherit=True``), ini ``grpc_timeouts``,
``--grpc-timeout``, module marker, class marker, function marker. Each inner test asserts on
``os.environ`` and on the ``grpc_timeouts`` fixture; ambient values are set with ``monkeypatch``
so the outer process gets its environment back whatever the inner run does.
"""

from __future__ import annotations

import os
import textwrap
from collections.abc import Mapping

import pytest

from pytest_grpc_deadlines import DAGSTER

DEFAULT = "DAGSTER_GRPC_TIMEOUT_SECONDS"
SCHEDULE = "DAGSTER_SCHEDULE_GRPC_TIMEOUT_SECONDS"
SENSOR = "DAGSTER_SENSOR_GRPC_TIMEOUT_SECONDS"
MAX_RX = "DAGSTER_GRPC_MAX_RX_BYTES"

#: Plugins the inner runs do not need: they only slow the run down and add config warnings.
QUIET = ("-p", "no:asyncio", "-p", "no:hypothesispytest", "-p", "no:cacheprovider")

#: Put at the top of every inner test file.
PRELUDE = """\
import os
import pytest
from pytest_grpc_deadlines import DAGSTER

def cascade_env():
    return {name: os.environ[name] for name in DAGSTER.env_vars if name in os.environ}

"""


@pytest.fixture(autouse=True)
def no_ambient_cascade(monkeypatch: pytest.MonkeyPatch) -> None:
    """Start every test without DAGSTER_* cascade variables, whatever the machine has."""
    for env_var in DAGSTER.env_vars:
        monkeypatch.delenv(env_var, raising=False)


def ambient(monkeypatch: pytest.MonkeyPatch, values: Mapping[str, str]) -> None:
    for env_var, text in values.items():
        monkeypatch.setenv(env_var, text)


def cascade_env() -> dict[str, str]:
    return {name: os.environ[name] for name in DAGSTER.env_vars if name in os.environ}


def write_tests(pytester: pytest.Pytester, source: str, name: str = "test_mod") -> None:
    pytester.makepyfile(**{name: PRELUDE + textwrap.dedent(source)})


def run(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    return pytester.runpytest(*QUIET, *args)


def test_untouched_test_keeps_ambient_environment(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    ambient(monkeypatch, {SENSOR: "5", DEFAULT: "61"})
    write_tests(
        pytester,
        f"""
        def test_untouched(grpc_timeouts):
            assert cascade_env() == {{"{SENSOR}": "5", "{DEFAULT}": "61"}}
            assert grpc_timeouts.sensor == 5
            assert grpc_timeouts.default == 61
            assert grpc_timeouts.source("sensor") == "{SENSOR}='5' (environment)"
        """,
    )
    run(pytester).assert_outcomes(passed=1)


def test_marked_test_starts_from_clean_cascade(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    ambient(monkeypatch, {SENSOR: "5", DEFAULT: "61"})
    monkeypatch.setenv("DAGSTER_HOME", "/srv/dagster")
    monkeypatch.setenv("PGD_UNRELATED", "kept")
    write_tests(
        pytester,
        f"""
        @pytest.mark.grpc_timeouts(schedule=9)
        def test_marked(grpc_timeouts):
            assert cascade_env() == {{"{SCHEDULE}": "9"}}
            assert os.environ["DAGSTER_HOME"] == "/srv/dagster"
            assert os.environ["PGD_UNRELATED"] == "kept"
            assert grpc_timeouts.default == 60
            assert grpc_timeouts.sensor == 60
            assert grpc_timeouts.schedule == 9
        """,
    )
    run(pytester).assert_outcomes(passed=1)


def test_test_touched_only_by_ini_is_hermetic(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    ambient(monkeypatch, {SENSOR: "5", DEFAULT: "61"})
    pytester.makeini("[pytest]\ngrpc_timeouts =\n    schedule=7\n")
    write_tests(
        pytester,
        f"""
        def test_unmarked(grpc_timeouts):
            assert cascade_env() == {{"{SCHEDULE}": "7"}}
            assert grpc_timeouts.default == 60
            assert grpc_timeouts.schedule == 7
        """,
    )
    run(pytester).assert_outcomes(passed=1)


def test_test_touched_only_by_cli_is_hermetic(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    ambient(monkeypatch, {SENSOR: "5", DEFAULT: "61"})
    write_tests(
        pytester,
        f"""
        def test_unmarked(grpc_timeouts):
            assert cascade_env() == {{"{SCHEDULE}": "7"}}
            assert grpc_timeouts.default == 60
            assert grpc_timeouts.schedule == 7
        """,
    )
    run(pytester, "--grpc-timeout", "schedule=7").assert_outcomes(passed=1)


def test_inherit_true_keeps_ambient_values(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    ambient(monkeypatch, {SENSOR: "5", DEFAULT: "61"})
    write_tests(
        pytester,
        f"""
        @pytest.mark.grpc_timeouts(schedule=9, inherit=True)
        def test_marked(grpc_timeouts):
            assert cascade_env() == {{"{SENSOR}": "5", "{DEFAULT}": "61", "{SCHEDULE}": "9"}}
            assert grpc_timeouts.sensor == 5
            assert grpc_timeouts.source("default") == "{DEFAULT}='61' (environment)"
            assert grpc_timeouts.source("schedule") == "{SCHEDULE}='9' (marker on test_marked)"
        """,
    )
    run(pytester).assert_outcomes(passed=1)


def test_marker_none_removes_variable_under_inherit(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    ambient(monkeypatch, {SENSOR: "5", DEFAULT: "61"})
    write_tests(
        pytester,
        f"""
        @pytest.mark.grpc_timeouts(sensor=None, inherit=True)
        def test_marked(grpc_timeouts):
            assert cascade_env() == {{"{DEFAULT}": "61"}}
            assert grpc_timeouts.sensor == 61
            assert grpc_timeouts.source("sensor") == "derived: default=61"
        """,
    )
    run(pytester).assert_outcomes(passed=1)


def test_marker_none_overrides_ini_and_cli_values(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\ngrpc_timeouts =\n    sensor=7\n")
    write_tests(
        pytester,
        f"""
        @pytest.mark.grpc_timeouts(sensor=None, schedule=None)
        def test_marked(grpc_timeouts):
            assert cascade_env() == {{"{DEFAULT}": "3"}}
            assert grpc_timeouts.sensor == 3
            assert grpc_timeouts.schedule == 3
        """,
    )
    run(pytester, "--grpc-timeout", "schedule=8", "--grpc-timeout", "default=3").assert_outcomes(passed=1)


def test_class_marker_overrides_module_marker(pytester: pytest.Pytester) -> None:
    write_tests(
        pytester,
        f"""
        pytestmark = pytest.mark.grpc_timeouts(sensor=1, schedule=1)

        @pytest.mark.grpc_timeouts(sensor=2)
        class TestX:
            def test_in_class(self):
                assert cascade_env() == {{"{SENSOR}": "2", "{SCHEDULE}": "1"}}
        """,
    )
    run(pytester).assert_outcomes(passed=1)


def test_function_marker_overrides_class_marker(pytester: pytest.Pytester) -> None:
    write_tests(
        pytester,
        f"""
        @pytest.mark.grpc_timeouts(sensor=2, schedule=2)
        class TestX:
            @pytest.mark.grpc_timeouts(sensor=3)
            def test_in_class(self):
                assert cascade_env() == {{"{SENSOR}": "3", "{SCHEDULE}": "2"}}
        """,
    )
    run(pytester).assert_outcomes(passed=1)


def test_ini_overrides_ambient_under_inherit(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    ambient(monkeypatch, {SENSOR: "5", DEFAULT: "61"})
    pytester.makeini("[pytest]\ngrpc_timeouts =\n    sensor=7\n")
    write_tests(
        pytester,
        f"""
        @pytest.mark.grpc_timeouts(inherit=True)
        def test_marked(grpc_timeouts):
            assert cascade_env() == {{"{SENSOR}": "7", "{DEFAULT}": "61"}}
            assert grpc_timeouts.source("sensor") == "{SENSOR}='7' (ini grpc_timeouts)"
        """,
    )
    run(pytester).assert_outcomes(passed=1)


def test_cli_overrides_ini(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\ngrpc_timeouts =\n    sensor=7\n    schedule=7\n")
    write_tests(
        pytester,
        f"""
        def test_unmarked():
            assert cascade_env() == {{"{SENSOR}": "8", "{SCHEDULE}": "7"}}
        """,
    )
    run(pytester, "--grpc-timeout", "sensor=8").assert_outcomes(passed=1)


def test_cli_option_is_repeatable(pytester: pytest.Pytester) -> None:
    write_tests(
        pytester,
        f"""
        def test_unmarked():
            assert cascade_env() == {{"{SENSOR}": "8", "{SCHEDULE}": "9"}}
        """,
    )
    run(pytester, "--grpc-timeout", "sensor=8", "--grpc-timeout=schedule=9").assert_outcomes(passed=1)


def test_empty_cli_value_removes_ini_value(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\ngrpc_timeouts =\n    sensor=7\n    schedule=7\n")
    write_tests(
        pytester,
        f"""
        def test_unmarked(grpc_timeouts):
            assert cascade_env() == {{"{SCHEDULE}": "7"}}
            assert grpc_timeouts.source("sensor") == "derived: default=60"
        """,
    )
    run(pytester, "--grpc-timeout", "sensor=").assert_outcomes(passed=1)


def test_ini_grpc_timeouts_read_from_pyproject_toml(pytester: pytest.Pytester) -> None:
    pytester.makepyprojecttoml('[tool.pytest.ini_options]\ngrpc_timeouts = ["sensor=7", "schedule=8"]\n')
    write_tests(
        pytester,
        f"""
        def test_unmarked():
            assert cascade_env() == {{"{SENSOR}": "7", "{SCHEDULE}": "8"}}
        """,
    )
    run(pytester).assert_outcomes(passed=1)


def test_markers_override_cli(pytester: pytest.Pytester) -> None:
    write_tests(
        pytester,
        f"""
        pytestmark = pytest.mark.grpc_timeouts(sensor=1)

        def test_module_marked():
            assert cascade_env() == {{"{SENSOR}": "1", "{SCHEDULE}": "8"}}
        """,
    )
    run(pytester, "--grpc-timeout", "sensor=8", "--grpc-timeout", "schedule=8").assert_outcomes(passed=1)


def test_module_inherit_applies_to_function_marker(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    ambient(monkeypatch, {DEFAULT: "61"})
    write_tests(
        pytester,
        f"""
        pytestmark = pytest.mark.grpc_timeouts(inherit=True)

        @pytest.mark.grpc_timeouts(sensor=3)
        def test_marked():
            assert cascade_env() == {{"{DEFAULT}": "61", "{SENSOR}": "3"}}
        """,
    )
    run(pytester).assert_outcomes(passed=1)


def test_function_inherit_false_overrides_module_inherit(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    ambient(monkeypatch, {DEFAULT: "61"})
    write_tests(
        pytester,
        f"""
        pytestmark = pytest.mark.grpc_timeouts(inherit=True)

        @pytest.mark.grpc_timeouts(sensor=3, inherit=False)
        def test_marked():
            assert cascade_env() == {{"{SENSOR}": "3"}}
        """,
    )
    run(pytester).assert_outcomes(passed=1)


def test_string_values_are_written_verbatim(pytester: pytest.Pytester) -> None:
    write_tests(
        pytester,
        f"""
        from pytest_grpc_deadlines import CascadeError

        @pytest.mark.grpc_timeouts(sensor=" 7 ")
        def test_padded(grpc_timeouts):
            assert cascade_env() == {{"{SENSOR}": " 7 "}}
            assert grpc_timeouts.sensor == 7

        @pytest.mark.grpc_timeouts(sensor="abc")
        def test_unparsable(grpc_timeouts):
            assert cascade_env() == {{"{SENSOR}": "abc"}}
            assert "sensor" in grpc_timeouts.errors
            with pytest.raises(CascadeError, match="Dagster itself raises ValueError"):
                grpc_timeouts.sensor
        """,
    )
    run(pytester).assert_outcomes(passed=2)


def test_whole_float_is_written_as_int(pytester: pytest.Pytester) -> None:
    write_tests(
        pytester,
        f"""
        @pytest.mark.grpc_timeouts(sensor=2.0)
        def test_marked(grpc_timeouts):
            assert cascade_env() == {{"{SENSOR}": "2"}}
            assert grpc_timeouts.sensor == 2
        """,
    )
    run(pytester).assert_outcomes(passed=1)


def test_source_names_function_marker(pytester: pytest.Pytester) -> None:
    write_tests(
        pytester,
        f"""
        @pytest.mark.grpc_timeouts(sensor=5)
        def test_x(grpc_timeouts):
            assert grpc_timeouts.source("sensor") == "{SENSOR}='5' (marker on test_x)"
        """,
    )
    run(pytester).assert_outcomes(passed=1)


def test_source_names_class_marker(pytester: pytest.Pytester) -> None:
    write_tests(
        pytester,
        f"""
        @pytest.mark.grpc_timeouts(sensor=5)
        class TestX:
            def test_x(self, grpc_timeouts):
                assert grpc_timeouts.source("sensor") == "{SENSOR}='5' (marker on class TestX)"
        """,
    )
    run(pytester).assert_outcomes(passed=1)


def test_source_names_module_marker(pytester: pytest.Pytester) -> None:
    write_tests(
        pytester,
        f"""
        pytestmark = pytest.mark.grpc_timeouts(sensor=5)

        def test_x(grpc_timeouts):
            assert grpc_timeouts.source("sensor") == "{SENSOR}='5' (marker on module test_mod.py)"
        """,
    )
    run(pytester).assert_outcomes(passed=1)


def test_source_names_cli_option(pytester: pytest.Pytester) -> None:
    write_tests(
        pytester,
        f"""
        def test_x(grpc_timeouts):
            assert grpc_timeouts.source("sensor") == "{SENSOR}='5' (--grpc-timeout)"
        """,
    )
    run(pytester, "--grpc-timeout", "sensor=5").assert_outcomes(passed=1)


def test_source_names_ini_key(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\ngrpc_timeouts = sensor=5\n")
    write_tests(
        pytester,
        f"""
        def test_x(grpc_timeouts):
            assert grpc_timeouts.source("sensor") == "{SENSOR}='5' (ini grpc_timeouts)"
        """,
    )
    run(pytester).assert_outcomes(passed=1)


def test_source_of_derived_value_shows_its_rule(pytester: pytest.Pytester) -> None:
    write_tests(
        pytester,
        """
        @pytest.mark.grpc_timeouts(sensor=5)
        def test_x(grpc_timeouts):
            assert grpc_timeouts.repository == 180
            assert grpc_timeouts.source("repository") == "derived: max(180, default=60)"
            assert grpc_timeouts.source("grace") == "derived: max(default=60, schedule=60, sensor=5)"
            assert grpc_timeouts.source("default") == "default: 60"
        """,
    )
    run(pytester).assert_outcomes(passed=1)


#: case -> (the marked test and its fixtures, inner outcomes, text of the failure it raises)
RESTORATION_CASES: dict[str, tuple[str, dict[str, int], str]] = {
    "passing": (
        f"""
        @pytest.mark.grpc_timeouts(sensor=7)
        def test_marked():
            assert cascade_env() == {{"{SENSOR}": "7"}}
        """,
        {"passed": 2},
        "",
    ),
    "failing": (
        f"""
        @pytest.mark.grpc_timeouts(sensor=7)
        def test_marked():
            assert cascade_env() == {{"{SENSOR}": "7"}}
            pytest.fail("fails on purpose")
        """,
        {"passed": 1, "failed": 1},
        "Failed: fails on purpose",
    ),
    "fixture-setup-error": (
        f"""
        @pytest.fixture
        def broken():
            assert cascade_env() == {{"{SENSOR}": "7"}}
            raise RuntimeError("setup breaks on purpose")

        @pytest.mark.grpc_timeouts(sensor=7)
        def test_marked(broken):
            pass
        """,
        {"passed": 1, "errors": 1},
        "RuntimeError: setup breaks on purpose",
    ),
    "fixture-teardown-error": (
        f"""
        @pytest.fixture
        def broken():
            yield
            assert cascade_env() == {{"{SENSOR}": "7"}}
            raise RuntimeError("teardown breaks on purpose")

        @pytest.mark.grpc_timeouts(sensor=7)
        def test_marked(broken):
            assert cascade_env() == {{"{SENSOR}": "7"}}
        """,
        {"passed": 2, "errors": 1},
        "RuntimeError: teardown breaks on purpose",
    ),
}


@pytest.mark.parametrize("case", list(RESTORATION_CASES))
def test_cascade_restored_after_marked_test(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, case: str
) -> None:
    before = {SENSOR: "5", DEFAULT: "61"}
    ambient(monkeypatch, before)
    marked, outcomes, failure = RESTORATION_CASES[case]
    write_tests(
        pytester,
        marked
        + f"""
        def test_after():
            assert cascade_env() == {before!r}
        """,
    )
    result = run(pytester)
    result.assert_outcomes(**outcomes)
    # The failure is the one the case raises, so the marked values were in force until then.
    assert failure in result.stdout.str()
    assert cascade_env() == before


def test_variable_set_by_marked_test_is_removed_afterwards(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    ambient(monkeypatch, {SENSOR: "5"})
    write_tests(
        pytester,
        f"""
        @pytest.mark.grpc_timeouts(sensor=7)
        def test_marked():
            os.environ["{MAX_RX}"] = "1"
            os.environ["{SENSOR}"] = "99"

        def test_after():
            assert cascade_env() == {{"{SENSOR}": "5"}}
        """,
    )
    run(pytester).assert_outcomes(passed=2)
    assert cascade_env() == {SENSOR: "5"}


def test_restoration_leaves_other_variables_to_the_test(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PGD_UNRELATED", "before")
    write_tests(
        pytester,
        """
        @pytest.mark.grpc_timeouts(sensor=7)
        def test_marked():
            os.environ["PGD_UNRELATED"] = "changed by the test"

        def test_after():
            assert os.environ["PGD_UNRELATED"] == "changed by the test"
        """,
    )
    run(pytester).assert_outcomes(passed=2)


def test_hermetic_under_xdist(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    ambient(monkeypatch, {SENSOR: "5", DEFAULT: "61"})
    write_tests(
        pytester,
        f"""
        @pytest.mark.parametrize("n", range(4))
        @pytest.mark.grpc_timeouts(schedule=9)
        def test_marked(n, grpc_timeouts):
            assert cascade_env() == {{"{SCHEDULE}": "9", "{SENSOR}": "8"}}
            origin = f"marker on test_marked[{{n}}]"
            assert grpc_timeouts.source("schedule") == f"{SCHEDULE}='9' ({{origin}})"

        @pytest.mark.parametrize("n", range(4))
        def test_unmarked(n):
            assert cascade_env() == {{"{SENSOR}": "8"}}
        """,
    )
    result = run(pytester, "-n", "2", "--grpc-timeout", "sensor=8")
    result.assert_outcomes(passed=8)
    assert cascade_env() == {SENSOR: "5", DEFAULT: "61"}
