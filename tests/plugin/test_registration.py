"""How the plugin presents itself (markers, help) and how a project plugs in its own cascade."""

from __future__ import annotations

import sys

import pytest

from pytest_grpc_deadlines import DAGSTER

QUIET = ("-p", "no:asyncio", "-p", "no:hypothesispytest", "-p", "no:cacheprovider")

#: A project's own two-setting cascade, importable as ``pgd_mycascade:CASCADE``.
MY_CASCADE = """
from pytest_grpc_deadlines import Cascade, Ref, Setting

CASCADE = Cascade(
    name="mine",
    settings=(
        Setting("connect", "PGD_CONNECT_TIMEOUT", 5),
        Setting("read", "PGD_READ_TIMEOUT", Ref("connect")),
    ),
)
"""

#: A cascade binding ``pgd_boundmod.TIMEOUT`` to its ``timeout`` setting.
BOUND_CASCADE = """
from pytest_grpc_deadlines import Binding, Cascade, Setting

CASCADE = Cascade(
    name="bound",
    settings=(Setting("timeout", "PGD_TIMEOUT", 5),),
    bindings=(Binding("pgd_boundmod", "TIMEOUT", "timeout"{captured_by}),),
)
"""


@pytest.fixture(autouse=True)
def no_ambient_cascade(monkeypatch: pytest.MonkeyPatch) -> None:
    for env_var in (*DAGSTER.env_vars, "PGD_CONNECT_TIMEOUT", "PGD_READ_TIMEOUT", "PGD_TIMEOUT"):
        monkeypatch.delenv(env_var, raising=False)


def run(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    return pytester.runpytest(*QUIET, *args)


def use_bound_cascade(pytester: pytest.Pytester, *, captured_by: str = "", imported: bool = True) -> None:
    """Write ``pgd_boundmod`` (TIMEOUT = 5) and its cascade; a conftest imports it if ``imported``."""
    extra = f", captured_by={captured_by!r}" if captured_by else ""
    pytester.makepyfile(
        pgd_bound_cascade=BOUND_CASCADE.format(captured_by=extra),
        pgd_boundmod="TIMEOUT = 5",
    )
    pytester.syspathinsert()
    pytester.makeini("[pytest]\ngrpc_deadlines_cascade = pgd_bound_cascade:CASCADE\n")
    if imported:
        pytester.makeconftest("import pgd_boundmod")


def test_markers_lists_grpc_timeouts_signature(pytester: pytest.Pytester) -> None:
    result = run(pytester, "--markers")
    assert result.ret == pytest.ExitCode.OK
    result.stdout.fnmatch_lines(
        [
            "@pytest.mark.grpc_timeouts(*, default=..., repository=..., schedule=..., sensor=..., "
            "grace=..., max_rx_bytes=..., max_send_bytes=..., restart_interval=..., log_exceptions=..., "
            "port=..., socket=..., host=..., max_workers=..., code_server_port=..., "
            "code_server_socket=..., code_server_host=..., code_server_max_workers=..., "
            "startup_timeout=..., heartbeat_ttl=..., heartbeat_timeout=..., inherit=False): "
            "set the dagster *"
        ]
    )


def test_markers_signature_follows_the_project_cascade(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(pgd_mycascade=MY_CASCADE)
    pytester.syspathinsert()
    pytester.makeini("[pytest]\ngrpc_deadlines_cascade = pgd_mycascade:CASCADE\n")
    result = run(pytester, "--markers")
    result.stdout.fnmatch_lines(
        ["@pytest.mark.grpc_timeouts(*, connect=..., read=..., inherit=False): set the mine cascade's *"]
    )


def test_marker_is_registered_under_strict_markers(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.grpc_timeouts(sensor=1)
        def test_marked():
            pass
        """
    )
    run(pytester, "--strict-markers").assert_outcomes(passed=1)


def test_help_shows_option_and_ini_keys(pytester: pytest.Pytester) -> None:
    result = run(pytester, "--help")
    assert result.ret == pytest.ExitCode.OK
    result.stdout.fnmatch_lines(
        [
            "gRPC deadlines:",
            "*--grpc-timeout=NAME=VALUE*",
        ]
    )
    result.stdout.fnmatch_lines(["*grpc_timeouts (linelist):*"])
    result.stdout.fnmatch_lines(["*grpc_deadlines_cascade (string):*"])


def test_project_cascade_from_ini_is_used_by_markers_and_fixture(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PGD_CONNECT_TIMEOUT", "11")
    monkeypatch.setenv("DAGSTER_SENSOR_GRPC_TIMEOUT_SECONDS", "5")
    pytester.makepyfile(pgd_mycascade=MY_CASCADE)
    pytester.syspathinsert()
    pytester.makeini("[pytest]\ngrpc_deadlines_cascade = pgd_mycascade:CASCADE\n")
    pytester.makepyfile(
        test_mod="""
        import os
        import pytest

        @pytest.mark.grpc_timeouts(read=9)
        def test_marked(grpc_timeouts):
            assert "PGD_CONNECT_TIMEOUT" not in os.environ
            assert os.environ["PGD_READ_TIMEOUT"] == "9"
            # Not part of this cascade: left alone.
            assert os.environ["DAGSTER_SENSOR_GRPC_TIMEOUT_SECONDS"] == "5"
            assert grpc_timeouts.cascade.name == "mine"
            assert dict(grpc_timeouts) == {"connect": 5, "read": 9}
            assert grpc_timeouts.source("read") == "PGD_READ_TIMEOUT='9' (marker on test_marked)"

        def test_unmarked(grpc_timeouts):
            assert dict(grpc_timeouts) == {"connect": 11, "read": 11}
            assert grpc_timeouts.source("read") == "derived: connect=11"
        """
    )
    run(pytester).assert_outcomes(passed=2)


def test_project_cascade_rejects_dagster_names_in_markers(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(pgd_mycascade=MY_CASCADE)
    pytester.syspathinsert()
    pytester.makeini("[pytest]\ngrpc_deadlines_cascade = pgd_mycascade:CASCADE\n")
    pytester.makepyfile(
        test_mod="""
        import pytest

        @pytest.mark.grpc_timeouts(sensor=1)
        def test_marked():
            pass
        """
    )
    result = run(pytester)
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(
        [
            "@pytest.mark.grpc_timeouts on test_marked: unknown setting 'sensor' for the mine cascade; "
            "accepted keywords: connect, read, inherit"
        ]
    )


def test_bound_attribute_is_patched_during_marked_test_and_restored(pytester: pytest.Pytester) -> None:
    use_bound_cascade(pytester)
    pytester.makepyfile(
        test_mod="""
        import pytest
        import pgd_boundmod

        @pytest.mark.grpc_timeouts(timeout=9)
        def test_marked():
            assert pgd_boundmod.TIMEOUT == 9

        @pytest.mark.grpc_timeouts()
        def test_marked_without_value():
            assert pgd_boundmod.TIMEOUT == 5

        def test_after():
            assert pgd_boundmod.TIMEOUT == 5
        """
    )
    run(pytester).assert_outcomes(passed=3)


def test_bound_attribute_restored_after_failing_test(pytester: pytest.Pytester) -> None:
    use_bound_cascade(pytester)
    pytester.makepyfile(
        test_mod="""
        import pytest
        import pgd_boundmod

        @pytest.mark.grpc_timeouts(timeout=9)
        def test_marked():
            pgd_boundmod.TIMEOUT = 1234
            pytest.fail("fails on purpose")

        def test_after():
            assert pgd_boundmod.TIMEOUT == 5
        """
    )
    run(pytester).assert_outcomes(passed=1, failed=1)


def test_binding_module_not_imported_is_not_imported_by_plugin(pytester: pytest.Pytester) -> None:
    use_bound_cascade(pytester, imported=False)
    pytester.makepyfile(
        test_mod="""
        import sys
        import pytest

        @pytest.mark.grpc_timeouts(timeout=9)
        def test_marked():
            assert "pgd_boundmod" not in sys.modules

        def test_after():
            assert "pgd_boundmod" not in sys.modules
        """
    )
    run(pytester).assert_outcomes(passed=2)
    assert "pgd_boundmod" not in sys.modules


CAPTURED_BY = "Client.__init__ (as a default argument)"
CAPTURED_WARNING = (
    "GrpcDeadlinesWarning: timeout=9 reaches pgd_boundmod.TIMEOUT but not "
    f"{CAPTURED_BY}: pgd_boundmod was imported before this test, when the value was 5, and those "
    "methods keep it. Pass the timeout explicitly in the code under test, or run it in a "
    "subprocess with env=grpc_timeouts.environ(os.environ)."
)


# In-process runs inherit the outer run's warning filters (``error``); let this one through.
@pytest.mark.filterwarnings("always::pytest_grpc_deadlines.GrpcDeadlinesWarning")
def test_captured_binding_warns_when_value_changes(pytester: pytest.Pytester) -> None:
    use_bound_cascade(pytester, captured_by=CAPTURED_BY)
    pytester.makepyfile(
        test_mod="""
        import pytest
        import pgd_boundmod

        @pytest.mark.grpc_timeouts(timeout=9)
        def test_changed():
            assert pgd_boundmod.TIMEOUT == 9
        """
    )
    result = run(pytester)
    result.assert_outcomes(passed=1, warnings=1)
    result.stdout.fnmatch_lines(["*warnings summary*", "test_mod.py::test_changed", f"*{CAPTURED_WARNING}"])


def test_captured_binding_unchanged_value_does_not_warn(pytester: pytest.Pytester) -> None:
    use_bound_cascade(pytester, captured_by=CAPTURED_BY)
    pytester.makepyfile(
        test_mod="""
        import pytest

        @pytest.mark.grpc_timeouts(timeout=5)
        def test_same():
            pass

        @pytest.mark.grpc_timeouts()
        def test_default():
            pass
        """
    )
    run(pytester, "-W", "error::pytest_grpc_deadlines.GrpcDeadlinesWarning").assert_outcomes(passed=2)


def test_captured_binding_warning_as_error_fails_setup_and_restores(pytester: pytest.Pytester) -> None:
    use_bound_cascade(pytester, captured_by=CAPTURED_BY)
    pytester.makepyfile(
        test_mod="""
        import os
        import pytest
        import pgd_boundmod

        @pytest.mark.grpc_timeouts(timeout=9)
        def test_changed():
            pass

        def test_after():
            assert pgd_boundmod.TIMEOUT == 5
            assert "PGD_TIMEOUT" not in os.environ
        """
    )
    result = run(pytester, "-W", "error::pytest_grpc_deadlines.GrpcDeadlinesWarning")
    result.assert_outcomes(passed=1, errors=1)
    # A clean message under the run's warning filters: the warning's text, no traceback.
    result.stdout.fnmatch_lines(["*ERROR at setup of test_changed*", CAPTURED_WARNING])
    assert "pytest_grpc_deadlines" not in result.stdout.str().split("short test summary")[0]
