"""What wider-scoped fixtures put in the environment is the ambient environment of a marked test:
removed for it unless ``inherit=True``, and there again after it. A marker added from a fixture
after the settings were put in force is refused, with what to do instead."""

from __future__ import annotations

import pytest

from pytest_grpc_deadlines import DAGSTER

QUIET = ("-p", "no:asyncio", "-p", "no:hypothesispytest", "-p", "no:cacheprovider")

CONFTEST = """
import os
import pytest

@pytest.fixture(scope="{scope}", autouse=True)
def ambient_timeout():
    os.environ["DAGSTER_GRPC_TIMEOUT_SECONDS"] = "45"
    yield
    del os.environ["DAGSTER_GRPC_TIMEOUT_SECONDS"]
"""


@pytest.fixture(autouse=True)
def no_ambient_cascade(monkeypatch: pytest.MonkeyPatch) -> None:
    for env_var in DAGSTER.env_vars:
        monkeypatch.delenv(env_var, raising=False)


@pytest.mark.parametrize("scope", ["session", "package", "module", "class"])
def test_what_a_wider_fixture_sets_is_the_ambient_environment(pytester: pytest.Pytester, scope: str) -> None:
    pytester.makeconftest(CONFTEST.format(scope=scope))
    pytester.makepyfile(
        test_mod="""
        import os
        import pytest

        class TestAll:
            def test_before(self):
                assert os.environ["DAGSTER_GRPC_TIMEOUT_SECONDS"] == "45"

            @pytest.mark.grpc_timeouts(sensor=5)
            def test_touched(self, grpc_timeouts):
                assert "DAGSTER_GRPC_TIMEOUT_SECONDS" not in os.environ
                assert (grpc_timeouts.default, grpc_timeouts.sensor) == (60, 5)

            @pytest.mark.grpc_timeouts(sensor=5, inherit=True)
            def test_inherits(self, grpc_timeouts):
                assert os.environ["DAGSTER_GRPC_TIMEOUT_SECONDS"] == "45"
                assert (grpc_timeouts.default, grpc_timeouts.sensor) == (45, 5)

            def test_after(self):
                assert os.environ["DAGSTER_GRPC_TIMEOUT_SECONDS"] == "45"
        """
    )
    pytester.runpytest(*QUIET).assert_outcomes(passed=4)


def test_a_marker_a_fixture_applies_too_late_is_refused_with_what_to_do(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_mod="""
        import pytest

        @pytest.fixture
        def fast_sensor(request):
            request.applymarker(pytest.mark.grpc_timeouts(sensor=1))

        def test_late(fast_sensor):
            pass

        def test_next():
            pass
        """
    )
    result = pytester.runpytest(*QUIET)
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(
        [
            "*@pytest.mark.grpc_timeouts on test_late: the marker was added while the test's "
            "fixtures were set up (request.applymarker), after the plugin had put the test's "
            "settings in force, so it cannot take effect. Put the marker on the test, its class "
            "or its module (pytestmark), or add it in a pytest_collection_modifyitems hook.*"
        ]
    )


def test_a_marker_added_at_collection_is_honoured(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(
        """
        import pytest

        def pytest_collection_modifyitems(items):
            for item in items:
                item.add_marker(pytest.mark.grpc_timeouts(sensor=1))
        """
    )
    pytester.makepyfile(
        test_mod="""
        def test_marked(grpc_timeouts):
            assert grpc_timeouts.sensor == 1
        """
    )
    pytester.runpytest(*QUIET).assert_outcomes(passed=1)


def test_a_marker_a_wider_fixture_adds_before_the_settings_is_honoured(pytester: pytest.Pytester) -> None:
    """A module-scoped fixture runs before the plugin's function-scoped one: the marker it adds
    to the module (``request.applymarker``) is in force for the module's tests."""
    pytester.makepyfile(
        test_mod="""
        import pytest

        @pytest.fixture(scope="module", autouse=True)
        def fast_sensor(request):
            request.applymarker(pytest.mark.grpc_timeouts(sensor=2))

        def test_first(grpc_timeouts):
            assert grpc_timeouts.sensor == 2
            assert grpc_timeouts.source("sensor").endswith("(marker on module test_mod.py)")

        def test_second(grpc_timeouts):
            assert grpc_timeouts.sensor == 2
        """
    )
    pytester.runpytest(*QUIET, "-p", "no:randomly").assert_outcomes(passed=2)


INNER = """
import pytest

@pytest.mark.grpc_timeouts(sensor=7)
def test_stops():
    pytest.exit("stop here")
"""


def test_an_inner_session_stopped_by_pytest_exit_leaves_the_outer_tests_settings_alone(
    pytester: pytest.Pytester,
) -> None:
    """A wider fixture runs a pytest session whose test calls ``pytest.exit``: that test's
    teardown never runs, and the outer test still gets its own settings, not the inner one's."""
    pytester.makepyfile(inner_source=f"INNER = {INNER!r}\n")
    pytester.makepyfile(
        test_outer="""
        import pytest

        from inner_source import INNER

        @pytest.fixture(scope="module")
        def inner_run(tmp_path_factory):
            folder = tmp_path_factory.mktemp("inner")
            (folder / "test_inner.py").write_text(INNER)
            code = pytest.main([str(folder), "-q", "-p", "no:cacheprovider", "-p", "no:randomly"])
            assert code == pytest.ExitCode.INTERRUPTED

        @pytest.mark.grpc_timeouts(sensor=3)
        def test_outer(inner_run, grpc_timeouts):
            assert grpc_timeouts.sensor == 3

        def test_next(grpc_timeouts):
            assert "test_stops" not in grpc_timeouts.source("sensor")
        """
    )
    pytester.syspathinsert()
    pytester.runpytest(*QUIET, "-p", "no:randomly").assert_outcomes(passed=2)
