"""The deadline audit from the outside: markers, ini settings, what is flagged and how it reads."""

from __future__ import annotations

import dataclasses
import textwrap

import grpc
import pytest

from pytest_grpc_deadlines import ClientCall
from pytest_grpc_deadlines.calls._audit import AuditPolicy, finding, report
from pytest_grpc_deadlines.cascade._invariants import representable

pytest_plugins = ["pytester"]

QUIET = ("-p", "no:cacheprovider", "-p", "no:hypothesispytest")
UNARY = "pytest_grpc_deadlines.probe.v1.Probe/Unary"
HINT = "Pass timeout= on each call (or exempt the method with ini grpc_deadline_exempt_methods)."
IMPORTS = """
import grpc
import pytest
from pytest_grpc_deadlines.probe import ProbeRequest, ProbeStub
"""


def run(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    return pytester.runpytest(*QUIET, "-p", "no:asyncio", *args)


def output(result: pytest.RunResult) -> str:
    return result.stdout.str() + "\n" + result.stderr.str()


def assert_clean(result: pytest.RunResult) -> None:
    text = output(result)
    assert "INTERNALERROR" not in text
    assert "Traceback" not in text


def module(pytester: pytest.Pytester, body: str) -> None:
    """``test_mod.py``: the imports, then ``body``; the calls in it go to ``grpc_test_server``."""
    pytester.makepyfile(test_mod=IMPORTS + textwrap.dedent(body))


def flagged(result: pytest.RunResult, test: str, *findings: str, above: float | None = None) -> None:
    """The audit's failure message for ``test`` lists exactly ``findings`` (fnmatch patterns);
    ``above``: every finding is a deadline above that many seconds."""
    if above is None:
        header, hint = "without a usable deadline", HINT
    else:
        header = f"with a deadline above {above:g} s"
        hint = (
            f"Pass a timeout of at most {above:g} s on each call (or exempt the method with ini "
            "grpc_deadline_exempt_methods)."
        )
    result.stdout.fnmatch_lines(
        [
            f"grpc_require_deadlines: test_mod.py::{test} made {len(findings)} RPC(s) {header}:",
            *(f"  {f}" for f in findings),
            hint,
        ]
    )
    assert_clean(result)


def line_of(pytester: pytest.Pytester, text: str) -> int:
    """The 1-based line of ``test_mod.py`` that contains ``text`` (once)."""
    lines = (pytester.path / "test_mod.py").read_text().splitlines()
    [number] = [i for i, line in enumerate(lines, start=1) if text in line]
    return number


# --- the must-show pair -------------------------------------------------------------------


def test_own_channel_call_without_a_deadline_fails_naming_method_target_and_line(
    pytester: pytest.Pytester,
) -> None:
    module(
        pytester,
        """
        @pytest.mark.grpc_require_deadlines
        def test_no_deadline(grpc_test_server):
            with grpc.insecure_channel(grpc_test_server.target) as channel:
                ProbeStub(channel).Unary(ProbeRequest())  # the call
        """,
    )
    result = run(pytester)
    result.assert_outcomes(failed=1)
    line = line_of(pytester, "# the call")
    flagged(result, "test_no_deadline", f"{UNARY} to 127.0.0.1:* with no deadline, at test_mod.py:{line}")


def test_the_same_call_with_a_deadline_passes(pytester: pytest.Pytester) -> None:
    module(
        pytester,
        """
        @pytest.mark.grpc_require_deadlines
        def test_deadline(grpc_test_server):
            with grpc.insecure_channel(grpc_test_server.target) as channel:
                ProbeStub(channel).Unary(ProbeRequest(), timeout=5)
        """,
    )
    run(pytester).assert_outcomes(passed=1)


def test_aio_call_without_a_deadline_fails(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\nasyncio_default_fixture_loop_scope = function\n")
    module(
        pytester,
        """
        @pytest.mark.asyncio
        @pytest.mark.grpc_require_deadlines
        async def test_no_deadline(grpc_aio_test_server):
            async with grpc.aio.insecure_channel(grpc_aio_test_server.target) as channel:
                await grpc_aio_test_server.probe().Unary(ProbeRequest(), timeout=5)
                stream = channel.unary_stream("/pytest_grpc_deadlines.probe.v1.Probe/ServerStream")
                [_ async for _ in stream(b"")]
        """,
    )
    result = pytester.runpytest(*QUIET)
    result.assert_outcomes(failed=1)
    line = line_of(pytester, "[_ async for _")
    flagged(
        result,
        "test_no_deadline",
        f"pytest_grpc_deadlines.probe.v1.Probe/ServerStream to 127.0.0.1:* with no deadline, "
        f"at test_mod.py:{line}",
    )


def test_every_call_without_a_deadline_is_listed(pytester: pytest.Pytester) -> None:
    module(
        pytester,
        """
        @pytest.mark.grpc_require_deadlines
        def test_calls(grpc_test_server):
            stub = grpc_test_server.probe()
            stub.Unary(ProbeRequest())  # first
            stub.Unary(ProbeRequest(), timeout=5)
            list(stub.ServerStream(ProbeRequest(responses=1)))  # second
        """,
    )
    result = run(pytester)
    result.assert_outcomes(failed=1)
    flagged(
        result,
        "test_calls",
        f"{UNARY} to 127.0.0.1:* with no deadline, at test_mod.py:{line_of(pytester, '# first')}",
        "pytest_grpc_deadlines.probe.v1.Probe/ServerStream to 127.0.0.1:* with no deadline, "
        f"at test_mod.py:{line_of(pytester, '# second')}",
    )


def test_unaudited_tests_may_call_without_a_deadline(pytester: pytest.Pytester) -> None:
    module(
        pytester,
        """
        def test_no_deadline(grpc_test_server):
            grpc_test_server.probe().Unary(ProbeRequest())
        """,
    )
    run(pytester).assert_outcomes(passed=1)


def test_calls_made_in_fixture_setup_are_audited(pytester: pytest.Pytester) -> None:
    module(
        pytester,
        """
        @pytest.fixture
        def warmed(grpc_test_server):
            grpc_test_server.probe().Unary(ProbeRequest())  # in setup

        @pytest.mark.grpc_require_deadlines
        def test_uses_fixture(warmed):
            pass
        """,
    )
    result = run(pytester)
    result.assert_outcomes(failed=1)
    flagged(
        result,
        "test_uses_fixture",
        f"{UNARY} to 127.0.0.1:* with no deadline, at test_mod.py:{line_of(pytester, '# in setup')}",
    )


def test_calls_made_in_fixture_teardown_are_audited(pytester: pytest.Pytester) -> None:
    module(
        pytester,
        """
        @pytest.fixture
        def cleanup(grpc_test_server):
            yield
            grpc_test_server.probe().Unary(ProbeRequest())  # in teardown

        @pytest.mark.grpc_require_deadlines
        def test_uses_fixture(cleanup):
            pass
        """,
    )
    result = run(pytester)
    result.assert_outcomes(passed=1, errors=1)
    flagged(
        result,
        "test_uses_fixture",
        f"{UNARY} to 127.0.0.1:* with no deadline, at test_mod.py:{line_of(pytester, '# in teardown')}",
    )


# --- too long, or not representable ---------------------------------------------------------


def test_deadline_above_marker_max_seconds_fails(pytester: pytest.Pytester) -> None:
    module(
        pytester,
        """
        @pytest.mark.grpc_require_deadlines(max_seconds=2)
        def test_long(grpc_test_server):
            grpc_test_server.probe().Unary(ProbeRequest(), timeout=2.5)  # the call
        """,
    )
    result = run(pytester)
    result.assert_outcomes(failed=1)
    # The call passed a timeout: the message says the deadline is too long, not missing.
    result.stdout.fnmatch_lines(
        [
            "grpc_require_deadlines: test_mod.py::test_long made 1 RPC(s) with a deadline above 2 s:",
            f"  {UNARY} to 127.0.0.1:* with a 2.5 s deadline, above the 2 s maximum, "
            f"at test_mod.py:{line_of(pytester, '# the call')}",
            "Pass a timeout of at most 2 s on each call (or exempt the method with ini "
            "grpc_deadline_exempt_methods).",
        ]
    )
    assert "without a usable deadline" not in result.stdout.str()
    assert_clean(result)


def test_deadline_equal_to_max_seconds_passes(pytester: pytest.Pytester) -> None:
    module(
        pytester,
        """
        @pytest.mark.grpc_require_deadlines(True, max_seconds=2)
        def test_at_most(grpc_test_server):
            grpc_test_server.probe().Unary(ProbeRequest(), timeout=2)
        """,
    )
    run(pytester).assert_outcomes(passed=1)


def test_ini_max_deadline_applies(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\ngrpc_require_deadlines = true\ngrpc_max_deadline = 3\n")
    module(
        pytester,
        """
        def test_long(grpc_test_server):
            grpc_test_server.probe().Unary(ProbeRequest(), timeout=4)  # the call
        """,
    )
    result = run(pytester)
    result.assert_outcomes(failed=1)
    flagged(
        result,
        "test_long",
        f"{UNARY} to 127.0.0.1:* with a 4 s deadline, above the 3 s maximum, "
        f"at test_mod.py:{line_of(pytester, '# the call')}",
        above=3,
    )
    result.stdout.fnmatch_lines(
        ["calls above grpc_max_deadline (3 s): 1", "  test_mod.py::test_long: *(4 s)"]
    )


def test_marker_max_seconds_overrides_ini_max_deadline(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\ngrpc_require_deadlines = true\ngrpc_max_deadline = 3\n")
    module(
        pytester,
        """
        @pytest.mark.grpc_require_deadlines(max_seconds=10)
        def test_allowed_longer(grpc_test_server):
            grpc_test_server.probe().Unary(ProbeRequest(), timeout=4)
        """,
    )
    run(pytester).assert_outcomes(passed=1)


@pytest.mark.parametrize(
    ("timeout", "shown"),
    [
        ("float('inf')", "inf"),
        ("1e10", "1e+10"),
        # Past 2**63 ns after the epoch once added to the clock: any date after 2008.
        ("8e9", "8e+09"),
    ],
)
def test_deadline_grpc_cannot_represent_is_flagged(
    pytester: pytest.Pytester, timeout: str, shown: str
) -> None:
    module(
        pytester,
        f"""
        @pytest.mark.grpc_require_deadlines
        def test_endless(grpc_test_server):
            with pytest.raises(grpc.RpcError) as info:
                grpc_test_server.probe().Unary(ProbeRequest(), timeout={timeout})  # the call
            assert info.value.code() is grpc.StatusCode.DEADLINE_EXCEEDED
        """,
    )
    result = run(pytester)
    result.assert_outcomes(failed=1)
    flagged(
        result,
        "test_endless",
        f"{UNARY} to 127.0.0.1:* with a deadline grpc cannot represent ({shown} s: the call fails at once), "
        f"at test_mod.py:{line_of(pytester, '# the call')}",
    )


def test_a_long_but_representable_deadline_passes_without_a_maximum(pytester: pytest.Pytester) -> None:
    module(
        pytester,
        """
        @pytest.mark.grpc_require_deadlines
        def test_long(grpc_test_server):
            grpc_test_server.probe().Unary(ProbeRequest(), timeout=4e9)  # representable until 2186
        """,
    )
    run(pytester).assert_outcomes(passed=1)


# --- ini modes and exemptions ---------------------------------------------------------------

NO_DEADLINE = """
def test_no_deadline(grpc_test_server):
    grpc_test_server.probe().Unary(ProbeRequest())  # the call
"""


def test_ini_true_audits_every_test(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\ngrpc_require_deadlines = true\n")
    module(pytester, NO_DEADLINE + "\ndef test_no_calls():\n    pass\n")
    result = run(pytester)
    result.assert_outcomes(passed=1, failed=1)
    flagged(
        result,
        "test_no_deadline",
        f"{UNARY} to 127.0.0.1:* with no deadline, at test_mod.py:{line_of(pytester, '# the call')}",
    )


@pytest.mark.filterwarnings("always::pytest_grpc_deadlines.GrpcDeadlinesWarning")
def test_ini_warn_warns_and_the_test_passes(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\ngrpc_require_deadlines = warn\n")
    module(pytester, NO_DEADLINE)
    result = run(pytester)
    result.assert_outcomes(passed=1, warnings=1)
    line = line_of(pytester, "# the call")
    # Shown at the line that made the call, with its source.
    result.stdout.fnmatch_lines(
        [
            f"  test_mod.py:{line}: GrpcDeadlinesWarning: grpc_require_deadlines: "
            "test_mod.py::test_no_deadline made 1 RPC(s) without a usable deadline:",
            f"    {UNARY} to 127.0.0.1:* with no deadline, at test_mod.py:{line}",
            f"  {HINT}",
            "    grpc_test_server.probe().Unary(ProbeRequest())  # the call",
        ]
    )
    assert_clean(result)


def test_ini_warn_can_be_made_an_error_by_filterwarnings(pytester: pytest.Pytester) -> None:
    pytester.makeini(
        "[pytest]\ngrpc_require_deadlines = warn\n"
        "filterwarnings =\n    error::pytest_grpc_deadlines.GrpcDeadlinesWarning\n"
    )
    module(pytester, NO_DEADLINE)
    result = run(pytester)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        ["*GrpcDeadlinesWarning: grpc_require_deadlines: test_mod.py::test_no_deadline*"]
    )


def test_ini_false_audits_nothing(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\ngrpc_require_deadlines = false\ngrpc_max_deadline = 1\n")
    module(pytester, NO_DEADLINE)
    run(pytester).assert_outcomes(passed=1)


def test_marker_false_exempts_a_test_from_the_ini_setting(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\ngrpc_require_deadlines = true\n")
    module(
        pytester,
        """
        @pytest.mark.grpc_require_deadlines(False)
        def test_exempt(grpc_test_server):
            grpc_test_server.probe().Unary(ProbeRequest())
        """,
    )
    run(pytester).assert_outcomes(passed=1)


def test_function_marker_overrides_module_marker(pytester: pytest.Pytester) -> None:
    module(
        pytester,
        """
        pytestmark = pytest.mark.grpc_require_deadlines

        @pytest.mark.grpc_require_deadlines(False)
        def test_exempt(grpc_test_server):
            grpc_test_server.probe().Unary(ProbeRequest())

        def test_audited(grpc_test_server):
            grpc_test_server.probe().Unary(ProbeRequest())
        """,
    )
    result = run(pytester)
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["FAILED test_mod.py::test_audited - *"])


def test_marker_fails_even_when_the_ini_only_warns(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\ngrpc_require_deadlines = warn\n")
    module(
        pytester,
        """
        @pytest.mark.grpc_require_deadlines
        def test_no_deadline(grpc_test_server):
            grpc_test_server.probe().Unary(ProbeRequest())
        """,
    )
    run(pytester).assert_outcomes(failed=1)


@pytest.mark.parametrize(
    "pattern",
    [
        "pytest_grpc_deadlines.probe.v1.Probe/*",
        "pytest_grpc_deadlines.probe.v1.Probe/Unary",
        "/pytest_grpc_deadlines.probe.v1.Probe/Unary",
        "*/Unary",
    ],
)
def test_exempt_methods_are_not_flagged(pytester: pytest.Pytester, pattern: str) -> None:
    pytester.makeini(
        f"[pytest]\ngrpc_require_deadlines = true\ngrpc_deadline_exempt_methods =\n    {pattern}\n"
    )
    module(pytester, NO_DEADLINE)
    run(pytester).assert_outcomes(passed=1)


def test_methods_outside_the_exempt_patterns_are_still_flagged(pytester: pytest.Pytester) -> None:
    pytester.makeini(
        "[pytest]\ngrpc_require_deadlines = true\n"
        "grpc_deadline_exempt_methods =\n"
        "    grpc.health.v1.Health/*\n"
        "    pytest_grpc_deadlines.probe.v1.Probe/Bidi\n"
    )
    module(pytester, NO_DEADLINE)
    run(pytester).assert_outcomes(failed=1)


def test_exempt_methods_apply_under_the_marker_too(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\ngrpc_deadline_exempt_methods =\n    pytest_grpc_deadlines.probe.v1.Probe/*\n")
    module(
        pytester,
        """
        @pytest.mark.grpc_require_deadlines
        def test_no_deadline(grpc_test_server):
            grpc_test_server.probe().Unary(ProbeRequest())
        """,
    )
    run(pytester).assert_outcomes(passed=1)


def test_marker_is_listed_with_its_signature(pytester: pytest.Pytester) -> None:
    result = run(pytester, "--markers")
    result.stdout.fnmatch_lines(
        ["@pytest.mark.grpc_require_deadlines(enabled=True, /, *, max_seconds=None): *"]
    )


# --- bad input ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ("True, False", "takes at most one positional argument (enabled), got 2"),
        ("max_second=5", "unknown keyword 'max_second'; accepted: enabled (positional), max_seconds"),
        ("enabled=False", "unknown keyword 'enabled'; accepted: enabled (positional), max_seconds"),
        ("'yes'", "enabled='yes' is not accepted; use True or False"),
        ("max_seconds=0", "max_seconds: 0 must be a finite number of seconds above 0"),
        ("max_seconds=-1", "max_seconds: -1 must be a finite number of seconds above 0"),
        ("max_seconds=float('inf')", "max_seconds: inf must be a finite number of seconds above 0"),
        ("max_seconds='soon'", "max_seconds: 'soon' is not a number of seconds (e.g. 30)"),
        ("max_seconds=True", "max_seconds: True is not a number of seconds (e.g. 30)"),
    ],
)
def test_bad_marker_errors_that_test_only(pytester: pytest.Pytester, arguments: str, message: str) -> None:
    module(
        pytester,
        f"""
        def test_before():
            pass

        @pytest.mark.grpc_require_deadlines({arguments})
        def test_bad():
            raise AssertionError("the test body ran")

        def test_after():
            pass
        """,
    )
    result = run(pytester)
    result.assert_outcomes(passed=2, errors=1)
    assert f"@pytest.mark.grpc_require_deadlines on test_bad: {message}" in result.stdout.lines
    assert "the test body ran" not in output(result)
    assert_clean(result)


@pytest.mark.parametrize(
    ("ini", "message"),
    [
        (
            "grpc_require_deadlines = maybe",
            "ini grpc_require_deadlines: 'maybe' is not accepted; use true, warn or false",
        ),
        ("grpc_max_deadline = soon", "ini grpc_max_deadline: 'soon' is not a number of seconds (e.g. 30)"),
        ("grpc_max_deadline = 0", "ini grpc_max_deadline: '0' must be a finite number of seconds above 0"),
        (
            "grpc_max_deadline = inf",
            "ini grpc_max_deadline: 'inf' must be a finite number of seconds above 0",
        ),
    ],
)
def test_bad_ini_value_is_a_usage_error(pytester: pytest.Pytester, ini: str, message: str) -> None:
    pytester.makeini(f"[pytest]\n{ini}\n")
    module(pytester, NO_DEADLINE)
    result = run(pytester)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert f"ERROR: {message}" in result.stderr.lines
    assert_clean(result)


# --- the policy itself ----------------------------------------------------------------------


def _call(*, timeout: float | None = None, internal: bool = False) -> ClientCall:
    return ClientCall(
        method=UNARY,
        target="127.0.0.1:1",
        timeout=timeout,
        site="<pytest-grpc-deadlines>" if internal else "test_mod.py:3",
        test="test_mod.py::test_it",
        internal=internal,
        code=grpc.StatusCode.OK,
    )


def test_calls_the_plugin_itself_makes_are_never_flagged() -> None:
    policy = AuditPolicy("fail", max_seconds=1)
    assert finding(_call(internal=True), policy) is None
    assert finding(_call(timeout=float("inf"), internal=True), policy) is None
    assert report([_call(internal=True)], policy, "test_mod.py::test_it") is None


def test_representable_means_the_deadline_fits_grpcs_int64_nanoseconds() -> None:
    now = 1_800_000_000.0
    last = 2**63 / 1e9 - now
    assert representable(last - 1, now)
    assert not representable(last + 1, now)
    assert not representable(float("inf"), now)
    assert not representable(1e10, 0.0)


def test_audit_off_reports_nothing() -> None:
    assert report([_call()], AuditPolicy("off"), "test_mod.py::test_it") is None


def test_a_call_the_audit_leaves_out_does_not_decide_the_message() -> None:
    """An exempt call above the maximum beside one with no deadline: the message is about the
    missing deadline, the only finding."""
    exempt = AuditPolicy("fail", max_seconds=10, exempt=("other.Service/*",))
    long_but_exempt = dataclasses.replace(_call(timeout=60), method="other.Service/Get")
    message = report([long_but_exempt, _call()], exempt, "test_mod.py::test_it")
    assert message is not None
    assert message.startswith(
        "grpc_require_deadlines: test_mod.py::test_it made 1 RPC(s) without a usable deadline:"
    )
