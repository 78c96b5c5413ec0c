"""Every bad input a user can give the plugin: a clear message naming where it came from, no traceback.

Marker errors fail the marked test at setup (other tests still run); bad ``--grpc-timeout``
values and ini keys stop the run as a usage error (exit code 4).
"""

from __future__ import annotations

import os

import pytest

from pytest_grpc_deadlines import DAGSTER

QUIET = ("-p", "no:asyncio", "-p", "no:hypothesispytest", "-p", "no:cacheprovider")
NAMES = (
    "default, repository, schedule, sensor, grace, max_rx_bytes, max_send_bytes, "
    "restart_interval, log_exceptions, port, socket, host, max_workers, code_server_port, "
    "code_server_socket, code_server_host, code_server_max_workers, startup_timeout, heartbeat_ttl, "
    "heartbeat_timeout"
)
KEYWORDS = f"{NAMES}, inherit"
ACCEPTED_TYPES = (
    "accepted: an int, a float with a whole value, a str written to the variable verbatim, "
    "or None to remove it"
)


@pytest.fixture(autouse=True)
def no_ambient_cascade(monkeypatch: pytest.MonkeyPatch) -> None:
    for env_var in DAGSTER.env_vars:
        monkeypatch.delenv(env_var, raising=False)


def run(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    return pytester.runpytest(*QUIET, *args)


def output(result: pytest.RunResult) -> str:
    return result.stdout.str() + "\n" + result.stderr.str()


def assert_clean_message(result: pytest.RunResult, *expected: str) -> None:
    """Each expected text appears on one line of the output; no pytest or Python traceback."""
    text = output(result)
    for fragment in expected:
        assert fragment in text, f"{fragment!r} not in output:\n{text}"
    assert "INTERNALERROR" not in text
    assert "Traceback" not in text
    assert "During handling of the above exception" not in text


def marker_error(pytester: pytest.Pytester, marker_args: str) -> pytest.RunResult:
    """Run a file whose ``test_bad`` carries ``grpc_timeouts(marker_args)`` beside two good tests."""
    pytester.makepyfile(
        test_mod=f"""
        import pytest

        def test_before():
            pass

        @pytest.mark.grpc_timeouts({marker_args})
        def test_bad():
            pass

        def test_after():
            pass
        """
    )
    result = run(pytester)
    result.assert_outcomes(passed=2, errors=1)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    return result


def usage_error(result: pytest.RunResult, *expected: str) -> None:
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert_clean_message(result, *expected)


def test_unknown_marker_key_lists_accepted_keywords(pytester: pytest.Pytester) -> None:
    result = marker_error(pytester, "sensr=5")
    assert_clean_message(
        result,
        "@pytest.mark.grpc_timeouts on test_bad: unknown setting 'sensr' for the dagster cascade; "
        f"accepted keywords: {KEYWORDS}",
    )


def test_positional_marker_arguments_are_rejected(pytester: pytest.Pytester) -> None:
    result = marker_error(pytester, "5")
    assert_clean_message(
        result,
        "@pytest.mark.grpc_timeouts on test_bad: positional arguments (5,) are not accepted; name each "
        f"setting, e.g. grpc_timeouts(sensor=30). Accepted keywords: {KEYWORDS}",
    )


def test_bool_marker_value_is_rejected(pytester: pytest.Pytester) -> None:
    result = marker_error(pytester, "sensor=True")
    assert_clean_message(
        result,
        "@pytest.mark.grpc_timeouts on test_bad: sensor=True (DAGSTER_SENSOR_GRPC_TIMEOUT_SECONDS): "
        f"True is a bool; {ACCEPTED_TYPES}",
    )


def test_list_marker_value_is_rejected(pytester: pytest.Pytester) -> None:
    result = marker_error(pytester, "sensor=[5]")
    assert_clean_message(
        result,
        "@pytest.mark.grpc_timeouts on test_bad: sensor=[5] (DAGSTER_SENSOR_GRPC_TIMEOUT_SECONDS): "
        f"[5] is a list; {ACCEPTED_TYPES}",
    )


def test_fractional_float_marker_value_says_to_pass_a_string(pytester: pytest.Pytester) -> None:
    result = marker_error(pytester, "sensor=1.5")
    assert_clean_message(
        result,
        "@pytest.mark.grpc_timeouts on test_bad: sensor=1.5 (DAGSTER_SENSOR_GRPC_TIMEOUT_SECONDS): "
        "1.5 is not a whole number, as int() reads it; pass it as a string ('1.5') to write it to "
        "the variable verbatim on purpose",
    )


def test_non_bool_inherit_is_rejected(pytester: pytest.Pytester) -> None:
    result = marker_error(pytester, "inherit='yes'")
    assert_clean_message(
        result,
        "@pytest.mark.grpc_timeouts on test_bad: inherit='yes' is not accepted; inherit takes True or False",
    )


def test_marker_error_is_reported_at_setup_of_the_marked_test(pytester: pytest.Pytester) -> None:
    result = marker_error(pytester, "sensr=5")
    result.stdout.fnmatch_lines(["*ERROR at setup of test_bad*"])
    result.stdout.fnmatch_lines(
        ["ERROR test_mod.py::test_bad - Failed: @pytest.mark.grpc_timeouts on test_bad:*"]
    )


def test_class_marker_error_names_the_class_and_fails_each_of_its_tests(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_mod="""
        import pytest

        @pytest.mark.grpc_timeouts(sensr=5)
        class TestBad:
            def test_one(self):
                pass

            def test_two(self):
                pass

        def test_outside():
            pass
        """
    )
    result = run(pytester)
    result.assert_outcomes(passed=1, errors=2)
    assert_clean_message(result, "@pytest.mark.grpc_timeouts on class TestBad: unknown setting 'sensr'")


def test_module_marker_error_names_the_module(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_mod="""
        import pytest

        pytestmark = pytest.mark.grpc_timeouts(sensor=1.5)

        def test_one():
            pass
        """
    )
    result = run(pytester)
    result.assert_outcomes(errors=1)
    assert_clean_message(result, "@pytest.mark.grpc_timeouts on module test_mod.py: sensor=1.5")


def test_cli_value_without_equals_sign_is_usage_error(pytester: pytest.Pytester) -> None:
    usage_error(
        run(pytester, "--grpc-timeout", "sensor"),
        "ERROR: --grpc-timeout: 'sensor' is not NAME=VALUE",
        f"accepted names: {NAMES}",
    )


def test_cli_unknown_name_is_usage_error(pytester: pytest.Pytester) -> None:
    usage_error(
        run(pytester, "--grpc-timeout", "sensr=5"),
        f"ERROR: --grpc-timeout: unknown setting 'sensr' in 'sensr=5'; accepted names: {NAMES}",
    )


def test_cli_value_the_parser_rejects_is_usage_error(pytester: pytest.Pytester) -> None:
    usage_error(
        run(pytester, "--grpc-timeout", "sensor=abc"),
        "ERROR: --grpc-timeout: sensor='abc' (DAGSTER_SENSOR_GRPC_TIMEOUT_SECONDS) is not a whole "
        "number, as int() reads it",
    )


def test_ini_line_without_equals_sign_is_usage_error(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\ngrpc_timeouts =\n    sensor\n")
    usage_error(
        run(pytester),
        "ERROR: ini grpc_timeouts: 'sensor' is not NAME=VALUE",
        f"accepted names: {NAMES}",
    )


def test_ini_unknown_name_is_usage_error(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\ngrpc_timeouts =\n    sensr=5\n")
    usage_error(
        run(pytester),
        f"ERROR: ini grpc_timeouts: unknown setting 'sensr' in 'sensr=5'; accepted names: {NAMES}",
    )


def test_ini_value_the_parser_rejects_is_usage_error(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\ngrpc_timeouts =\n    sensor=abc\n")
    usage_error(
        run(pytester),
        "ERROR: ini grpc_timeouts: sensor='abc' (DAGSTER_SENSOR_GRPC_TIMEOUT_SECONDS) is not a whole "
        "number, as int() reads it",
    )


def test_ini_cascade_module_that_does_not_import_is_usage_error(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\ngrpc_deadlines_cascade = pgd_no_such_module:CASCADE\n")
    usage_error(
        run(pytester),
        "ERROR: ini grpc_deadlines_cascade: cannot import module 'pgd_no_such_module' named in "
        "'pgd_no_such_module:CASCADE': ModuleNotFoundError: No module named 'pgd_no_such_module'",
    )


def test_ini_cascade_module_that_raises_on_import_is_usage_error(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(pgd_broken_cascade="raise RuntimeError('broken on purpose')")
    pytester.syspathinsert()
    pytester.makeini("[pytest]\ngrpc_deadlines_cascade = pgd_broken_cascade:CASCADE\n")
    usage_error(
        run(pytester),
        "ERROR: ini grpc_deadlines_cascade: cannot import module 'pgd_broken_cascade' named in "
        "'pgd_broken_cascade:CASCADE': RuntimeError: broken on purpose",
    )


def test_ini_cascade_missing_attribute_is_usage_error(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(pgd_empty_cascade="OTHER = 1")
    pytester.syspathinsert()
    pytester.makeini("[pytest]\ngrpc_deadlines_cascade = pgd_empty_cascade:CASCADE\n")
    usage_error(
        run(pytester),
        "ERROR: ini grpc_deadlines_cascade: module 'pgd_empty_cascade' has no attribute 'CASCADE' "
        "(from 'pgd_empty_cascade:CASCADE')",
    )


def test_ini_cascade_that_is_not_a_cascade_is_usage_error(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(pgd_dict_cascade="CASCADE = {'sensor': 30}")
    pytester.syspathinsert()
    pytester.makeini("[pytest]\ngrpc_deadlines_cascade = pgd_dict_cascade:CASCADE\n")
    usage_error(
        run(pytester),
        "ERROR: ini grpc_deadlines_cascade: 'pgd_dict_cascade:CASCADE' names a dict object, not a "
        "pytest_grpc_deadlines.Cascade",
    )


@pytest.mark.parametrize("path", ["pgd_cascade", "pgd_cascade:", ":CASCADE", "pgd_cascade.CASCADE"])
def test_ini_cascade_not_module_colon_attribute_is_usage_error(pytester: pytest.Pytester, path: str) -> None:
    pytester.makeini(f"[pytest]\ngrpc_deadlines_cascade = {path}\n")
    usage_error(
        run(pytester),
        f"ERROR: ini grpc_deadlines_cascade: {path!r} is neither a built-in cascade (dagster, "
        "otel_otlp, grpc_simple_stubs) nor module:attribute (e.g. myproject.timeouts:CASCADE)",
    )


# --- the JSON report's path, and a cascade module that exits -----------------------------------------

ONE_TEST = "def test_ok():\n    pass\n"


def test_the_json_report_folders_are_made(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_mod=ONE_TEST)
    result = pytester.runpytest(*QUIET, "--grpc-deadlines-json", "out/reports/grpc.json")
    result.assert_outcomes(passed=1)
    assert (pytester.path / "out" / "reports" / "grpc.json").is_file()


def test_a_folder_as_the_json_report_is_a_usage_error_before_any_test(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_mod=ONE_TEST)
    (pytester.path / "reports").mkdir()
    result = pytester.runpytest(*QUIET, "--grpc-deadlines-json", "reports")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        ["ERROR: --grpc-deadlines-json reports: is a folder; give the path of a file to write"]
    )
    assert "test_ok" not in result.stdout.str()  # no test ran


def test_a_json_report_folder_that_cannot_be_made_is_a_usage_error(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_mod=ONE_TEST)
    (pytester.path / "afile").write_text("")
    result = pytester.runpytest(*QUIET, "--grpc-deadlines-json", "afile/grpc.json")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["ERROR: --grpc-deadlines-json afile/grpc.json: cannot make its folder: *"])


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full (Linux)")
def test_a_json_report_that_cannot_be_written_fails_the_run_with_a_message(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_mod=ONE_TEST)
    result = pytester.runpytest(*QUIET, "--grpc-deadlines-json", "/dev/full", "--grpc-deadlines-report")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stdout.fnmatch_lines(
        ["ERROR: --grpc-deadlines-json /dev/full: the report could not be written: *No space left on device*"]
    )
    result.stdout.fnmatch_lines(["*1 passed*"])
    assert "Traceback" not in result.stdout.str()


def test_a_cascade_module_that_exits_at_import_is_a_usage_error(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(pgd_exiting="import sys\nsys.exit(3)\n", test_mod=ONE_TEST)
    pytester.syspathinsert()
    pytester.makeini("[pytest]\ngrpc_deadlines_cascade = pgd_exiting:CASCADE\n")
    result = pytester.runpytest(*QUIET)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        [
            "ERROR: ini grpc_deadlines_cascade: importing module 'pgd_exiting' named in "
            "'pgd_exiting:CASCADE' called sys.exit(3)"
        ]
    )


def test_a_long_option_value_is_clipped_in_the_message(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_mod=ONE_TEST)
    value = "1" * 5000 + "x"
    result = pytester.runpytest(*QUIET, "--grpc-timeout", f"sensor={value}")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        [
            f"ERROR: --grpc-timeout: sensor='{'1' * 39}...{'1' * 18}x' (5003 characters) "
            "(DAGSTER_SENSOR_GRPC_TIMEOUT_SECONDS) is not a whole number, as int() reads it"
        ]
    )
    assert len(result.stderr.str()) < 1000


def test_a_setting_given_twice_in_the_ini_file_is_a_usage_error(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_mod=ONE_TEST)
    pytester.makeini("[pytest]\ngrpc_timeouts =\n    sensor=30\n    default=60\n    sensor=45\n")
    result = pytester.runpytest(*QUIET)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["ERROR: ini grpc_timeouts: sensor is set twice ('30', then '45'); keep one"])


def test_an_option_given_twice_on_the_command_line_takes_the_later_value(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_mod="def test_sensor(grpc_timeouts):\n    assert grpc_timeouts.sensor == 45\n")
    result = pytester.runpytest(*QUIET, "--grpc-timeout", "sensor=30", "--grpc-timeout", "sensor=45")
    result.assert_outcomes(passed=1)


# --- asyncio -----------------------------------------------------------------------------------------


def test_the_asyncio_fixtures_without_pytest_asyncio_say_what_to_do(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_mod="def test_aio(grpc_aio_test_server):\n    pass\n")
    result = pytester.runpytest("-p", "no:asyncio", "-p", "no:cacheprovider", "-p", "no:hypothesispytest")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(
        [
            "*grpc_aio_test_server needs pytest-asyncio, which is not installed or not enabled "
            "(-p no:asyncio): install it (python -m pip install pytest-asyncio) and mark the test "
            "@pytest.mark.asyncio (or set asyncio_mode = auto); a sync test uses grpc_test_server "
            "instead"
        ]
    )
    assert "fixture 'grpc_aio_test_server' not found" not in result.stdout.str()
