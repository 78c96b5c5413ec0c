"""Every copy an imported module holds of a setting follows the marker, and nothing leaks.

A module that reads its settings at import keeps them in constants and in default arguments
whose default names a constant; both follow a test's settings while they are in force, and a
bound module first imported inside a marked test is set back to the outside values afterwards.
"""

from __future__ import annotations

import sys

import pytest

QUIET = ("-p", "no:asyncio", "-p", "no:hypothesispytest", "-p", "no:cacheprovider")

CASCADE = """
from pytest_grpc_deadlines import Binding, Cascade, Setting

CASCADE = Cascade(
    name="bound",
    settings=(Setting("timeout", "PGD_TIMEOUT", 5),),
    bindings=(Binding("pgd_boundmod", "TIMEOUT", "timeout"),),
)
"""

#: A module that copies the setting at import, and captures the copy as default arguments.
BOUND_MODULE = """
import os

TIMEOUT = int(os.environ.get("PGD_TIMEOUT") or 5)


def call(request=None, timeout=TIMEOUT):
    return timeout


def keyword(*, timeout: int = TIMEOUT):
    return timeout


class Client:
    def method(self, timeout=TIMEOUT):
        return timeout

    @staticmethod
    def static(timeout=TIMEOUT):
        return timeout

    @classmethod
    def klass(cls, timeout=TIMEOUT):
        return timeout


def outer():
    def inner(timeout=TIMEOUT):  # evaluated when outer() runs: follows the module attribute
        return timeout

    return inner


def everything():
    return (call(), keyword(), Client().method(), Client.static(), Client.klass(), outer()(), TIMEOUT)
"""


@pytest.fixture(autouse=True)
def no_ambient_timeout(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PGD_TIMEOUT", raising=False)


def bound_project(pytester: pytest.Pytester, *, imported: bool, extra: str = "") -> None:
    pytester.makepyfile(pgd_bound_cascade=CASCADE, pgd_boundmod=BOUND_MODULE + extra)
    pytester.syspathinsert()
    pytester.makeini("[pytest]\ngrpc_deadlines_cascade = pgd_bound_cascade:CASCADE\n")
    if imported:
        pytester.makeconftest("import pgd_boundmod")


def run(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    return pytester.runpytest(*QUIET, *args)


def test_default_arguments_that_name_a_bound_constant_follow_the_marker(pytester: pytest.Pytester) -> None:
    bound_project(pytester, imported=True)
    pytester.makepyfile(
        test_mod="""
        import pytest
        import pgd_boundmod

        @pytest.mark.grpc_timeouts(timeout=9)
        def test_marked():
            assert pgd_boundmod.everything() == (9, 9, 9, 9, 9, 9, 9)

        def test_after():
            assert pgd_boundmod.everything() == (5, 5, 5, 5, 5, 5, 5)
        """
    )
    # -W error: a default argument the plugin sets warns of nothing.
    run(pytester, "-W", "error::pytest_grpc_deadlines.GrpcDeadlinesWarning").assert_outcomes(passed=2)
    assert "pgd_boundmod" not in sys.modules


# In-process runs inherit the outer run's warning filters (``error``); let this one through.
@pytest.mark.filterwarnings("always::pytest_grpc_deadlines.GrpcDeadlinesWarning")
def test_a_default_no_patch_reaches_is_named_in_a_warning(pytester: pytest.Pytester) -> None:
    bound_project(pytester, imported=True, extra="\nshortcut = lambda timeout=TIMEOUT: timeout\n")
    pytester.makepyfile(
        test_mod="""
        import pytest
        import pgd_boundmod

        @pytest.mark.grpc_timeouts(timeout=9)
        def test_marked():
            assert pgd_boundmod.shortcut() == 5  # a lambda's default, made at import: out of reach
        """
    )
    result = run(pytester)
    result.assert_outcomes(passed=1, warnings=1)
    result.stdout.fnmatch_lines(
        [
            "*GrpcDeadlinesWarning: timeout=9 reaches pgd_boundmod.TIMEOUT but not "
            "pgd_boundmod.<lambda>(timeout=TIMEOUT) (a lambda): pgd_boundmod was imported before "
            "this test, when the value was 5, *"
        ]
    )


def test_a_bound_module_first_imported_in_a_marked_test_gets_the_outside_values_back(
    pytester: pytest.Pytester,
) -> None:
    bound_project(pytester, imported=False)
    pytester.makepyfile(
        test_mod="""
        import sys
        import pytest

        @pytest.mark.grpc_timeouts(timeout=1)
        def test_first_import():
            import pgd_boundmod

            assert pgd_boundmod.everything() == (1, 1, 1, 1, 1, 1, 1)

        def test_after():
            import pgd_boundmod

            assert pgd_boundmod.everything() == (5, 5, 5, 5, 5, 5, 5)

        @pytest.mark.grpc_timeouts(timeout=7)
        def test_marked_again():
            import pgd_boundmod

            assert pgd_boundmod.everything() == (7, 7, 7, 7, 7, 7, 7)

        def test_and_after_that():
            import pgd_boundmod

            assert pgd_boundmod.everything() == (5, 5, 5, 5, 5, 5, 5)
        """
    )
    run(pytester).assert_outcomes(passed=4)


def test_the_outside_values_of_a_first_import_come_from_the_outside_environment(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PGD_TIMEOUT", "30")
    bound_project(pytester, imported=False)
    pytester.makepyfile(
        test_mod="""
        import pytest

        @pytest.mark.grpc_timeouts(timeout=1)
        def test_first_import():
            import pgd_boundmod

            assert pgd_boundmod.call() == 1

        def test_after():
            import pgd_boundmod

            assert (pgd_boundmod.TIMEOUT, pgd_boundmod.call()) == (30, 30)
        """
    )
    run(pytester).assert_outcomes(passed=2)
