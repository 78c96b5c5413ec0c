"""The rest of Dagster's gRPC environment in the DAGSTER cascade: the code server's restart
interval and exception logging, and ``dagster api grpc``'s port, socket, host and max_workers.

Each reads its variable as Dagster does (reference/dagster-facts.md, "Server configuration
variables"): the restart interval is ``int(os.getenv(X, "5"))``, so an empty value is an error;
exception logging is on for any non-empty text; the others are click options, for which an
empty variable counts as unset.
"""

from __future__ import annotations

import os
import textwrap
from collections.abc import Callable

import pytest
from hypothesis import Phase, find, given, settings

from pytest_grpc_deadlines import (
    DAGSTER,
    CascadeError,
    OverrideError,
    Resolved,
    assert_cascade_conforms,
    check,
)
from pytest_grpc_deadlines.cascade._overrides import parse_assignments, parse_marker
from pytest_grpc_deadlines.strategies import environs
from tests.dagster_resolvers import (
    RESOLVERS,
    code_server_logs_exceptions,
    get_auto_restart_code_server_interval,
)

RESTART = "DAGSTER_CODE_SERVER_AUTO_RESTART_INTERVAL"
LOG_EXCEPTIONS = "DAGSTER_CODE_SERVER_LOG_EXCEPTIONS"
PORT = "DAGSTER_GRPC_PORT"
SOCKET = "DAGSTER_GRPC_SOCKET"
HOST = "DAGSTER_GRPC_HOST"
MAX_WORKERS = "DAGSTER_GRPC_MAX_WORKERS"
NEW_SETTINGS = {
    "restart_interval": RESTART,
    "log_exceptions": LOG_EXCEPTIONS,
    "port": PORT,
    "socket": SOCKET,
    "host": HOST,
    "max_workers": MAX_WORKERS,
    "code_server_port": "DAGSTER_CODE_SERVER_PORT",
    "code_server_socket": "DAGSTER_CODE_SERVER_SOCKET",
    "code_server_host": "DAGSTER_CODE_SERVER_HOST",
    "code_server_max_workers": "DAGSTER_CODE_SERVER_MAX_WORKERS",
    "startup_timeout": "DAGSTER_CODE_SERVER_STARTUP_TIMEOUT",
    "heartbeat_ttl": "DAGSTER_GRPC_PROXY_HEARTBEAT_TTL_SECONDS",
    "heartbeat_timeout": "DAGSTER_PROXY_SERVER_HEARTBEAT_TIMEOUT",
}

BOTH_SET = "You must pass one and only one of `port` or `socket`."
NEITHER_SET = "You must pass one and only one of --port/-p or --socket/-s."

FEW = settings(max_examples=100, deadline=None, database=None)
#: A search finds one example: generated from a fixed seed (the same every run), not shrunk (the
#: tests need any example, and shrinking one over twenty variables took up to 30 s).
SEARCH = settings(max_examples=1000, deadline=None, database=None, derandomize=True, phases=(Phase.generate,))
QUIET = ("-p", "no:asyncio", "-p", "no:hypothesispytest", "-p", "no:cacheprovider")


def resolve(**environ: str) -> Resolved:
    return DAGSTER.resolve(environ)


def findings(environ: dict[str, str]) -> list[tuple[str, tuple[str, ...]]]:
    return [(v.severity, v.settings) for v in check(DAGSTER.resolve(environ))]


# The settings and their defaults


def test_new_settings_follow_the_byte_limits_in_the_cascade() -> None:
    assert DAGSTER.names[7:] == tuple(NEW_SETTINGS)
    assert DAGSTER.env_vars[7:] == tuple(NEW_SETTINGS.values())


@pytest.mark.parametrize(
    ("name", "value", "source"),
    [
        ("restart_interval", 5, "default: 5"),
        ("log_exceptions", False, "default: False"),
        ("port", None, "default: None"),
        ("socket", None, "default: None"),
        ("host", "localhost", "default: 'localhost'"),
        ("max_workers", None, "default: None"),
    ],
)
def test_defaults_are_dagsters(name: str, value: object, source: str) -> None:
    resolved = resolve()
    assert resolved[name] == value
    assert type(resolved[name]) is type(value)
    assert resolved.source(name) == source
    assert not resolved.is_explicit(name)
    assert resolved.raw(name) is None


def test_restart_interval_default_is_the_one_code_server_start_uses() -> None:
    # dagster/_grpc/server.py has a copy defaulting to 30 that nothing calls; the docs quote it.
    assert "30" in DAGSTER["restart_interval"].doc
    assert "dagster code-server start" in DAGSTER["restart_interval"].doc


def test_a_clean_environment_breaks_nothing() -> None:
    assert check(resolve()) == []


# Reading each variable


@pytest.mark.parametrize(("text", "expected"), [(" 7 ", 7), ("7", 7), ("+5", 5), ("0", 0), ("-3", -3)])
def test_restart_interval_parses_as_int(text: str, expected: int) -> None:
    resolved = resolve(**{RESTART: text})
    assert resolved.restart_interval == expected
    assert resolved.source("restart_interval") == f"{RESTART}={text!r} (environment)"


@pytest.mark.parametrize("text", ["", " ", "abc", "1.5"])
def test_restart_interval_that_int_refuses_is_an_error_naming_the_variable(text: str) -> None:
    resolved = resolve(**{RESTART: text})
    assert set(resolved.errors) == {"restart_interval"}
    with pytest.raises(CascadeError) as info:
        resolved.restart_interval  # noqa: B018
    message = str(info.value)
    assert f"{RESTART}={text!r} (environment) is not a whole number" in message
    assert "Dagster itself raises ValueError there" in message
    assert info.value.env_var == RESTART


def test_empty_restart_interval_is_explicit_not_the_default() -> None:
    resolved = resolve(**{RESTART: ""})
    assert resolved.is_explicit("restart_interval")
    assert resolved.environ() == {RESTART: ""}


@pytest.mark.parametrize("text", ["1", "0", "false", "False", "no", "off", " ", "\t"])
def test_any_non_empty_text_turns_exception_logging_on(text: str) -> None:
    resolved = resolve(**{LOG_EXCEPTIONS: text})
    assert resolved.log_exceptions is True
    assert resolved.source("log_exceptions") == f"{LOG_EXCEPTIONS}={text!r} (environment)"


def test_empty_exception_logging_is_unset_and_off() -> None:
    resolved = resolve(**{LOG_EXCEPTIONS: ""})
    assert resolved.log_exceptions is False
    assert not resolved.is_explicit("log_exceptions")
    assert resolved.source("log_exceptions") == f"default: False ({LOG_EXCEPTIONS}='' counts as unset)"


@pytest.mark.parametrize(("text", "expected"), [("4266", 4266), (" 4266 ", 4266), ("0", 0), ("-1", -1)])
def test_port_parses_as_click_int(text: str, expected: int) -> None:
    assert resolve(**{PORT: text}).port == expected


@pytest.mark.parametrize(("name", "env_var"), [("port", PORT), ("max_workers", MAX_WORKERS)])
def test_click_int_refusal_says_dagster_api_grpc_and_click_refuse_it(name: str, env_var: str) -> None:
    resolved = resolve(**{env_var: "abc"})
    assert set(resolved.errors) == {name}
    message = str(resolved.errors[name])
    assert f"{env_var}='abc' (environment) is not a whole number, as click.INT reads it" in message
    assert "`dagster api grpc` refuses it: click reports it is not a valid integer" in message
    assert "Dagster itself raises ValueError" not in message


@pytest.mark.parametrize(("name", "env_var"), [("socket", SOCKET), ("host", HOST)])
@pytest.mark.parametrize("text", ["/tmp/s", " /tmp/s ", "0.0.0.0", "::1", " ", "relative/path"])
def test_socket_and_host_are_taken_verbatim(name: str, env_var: str, text: str) -> None:
    resolved = resolve(**{env_var: text})
    assert resolved[name] == text
    assert not resolved.errors


@pytest.mark.parametrize(
    ("name", "env_var", "default"),
    [
        ("port", PORT, None),
        ("socket", SOCKET, None),
        ("host", HOST, "localhost"),
        ("max_workers", MAX_WORKERS, None),
    ],
)
def test_empty_click_option_variable_counts_as_unset(name: str, env_var: str, default: object) -> None:
    resolved = resolve(**{env_var: ""})
    assert resolved[name] == default
    assert not resolved.is_explicit(name)
    assert not resolved.errors


def test_max_workers_parses_as_click_int() -> None:
    assert resolve(**{MAX_WORKERS: " 8 "}).max_workers == 8


# check(): port and socket, the restart interval, max_workers


def test_port_and_socket_both_set_is_one_error_naming_both_and_quoting_dagster() -> None:
    violations = check(resolve(**{PORT: "4266", SOCKET: "/tmp/s"}))
    assert len(violations) == 1
    (violation,) = violations
    assert (violation.severity, violation.settings) == ("error", ("port", "socket"))
    assert f"{PORT}='4266'" in violation.message
    assert f"{SOCKET}='/tmp/s'" in violation.message
    assert BOTH_SET in violation.message


def test_negative_port_with_a_socket_is_the_both_set_error() -> None:
    # Dagster tests the port's truth: -1 is a port given.
    violations = check(resolve(**{PORT: "-1", SOCKET: "/tmp/s"}))
    assert [(v.severity, v.settings) for v in violations] == [("error", ("port", "socket"))]
    assert BOTH_SET in violations[0].message


@pytest.mark.parametrize("text", ["0", " 0 ", "+0"])
def test_port_0_without_a_socket_is_an_error_quoting_dagsters_usage_error(text: str) -> None:
    violations = check(resolve(**{PORT: text}))
    assert [(v.severity, v.settings) for v in violations] == [("error", ("port",))]
    assert NEITHER_SET in violations[0].message
    assert f"{PORT}={text!r}" in violations[0].message


def test_port_0_with_a_socket_serves_on_the_socket() -> None:
    # `not (port or (socket and not (port and socket)))` and `(port or socket) and not (port and
    # socket)` both pass for port 0 beside a socket: `dagster api grpc` listens on the socket.
    assert check(resolve(**{PORT: "0", SOCKET: "/tmp/s"})) == []


@pytest.mark.parametrize(
    "environ",
    [{}, {PORT: "4266"}, {SOCKET: "/tmp/s"}, {PORT: "", SOCKET: ""}, {PORT: "4266", SOCKET: ""}],
)
def test_port_or_socket_alone_or_neither_is_normal(environ: dict[str, str]) -> None:
    assert check(DAGSTER.resolve(environ)) == []


@pytest.mark.parametrize("environ", [{PORT: "abc", SOCKET: "/tmp/s"}, {PORT: "abc"}])
def test_an_invalid_port_is_reported_once_as_its_parse_error(environ: dict[str, str]) -> None:
    assert findings(environ) == [("error", ("port",))]
    assert BOTH_SET not in str(check(DAGSTER.resolve(environ)))


@pytest.mark.parametrize("text", ["0", "-3"])
def test_restart_interval_at_or_below_zero_is_a_warning_with_its_consequence(text: str) -> None:
    violations = check(resolve(**{RESTART: text}))
    assert [(v.severity, v.settings) for v in violations] == [("warning", ("restart_interval",))]
    message = violations[0].message
    assert message.startswith(f"restart_interval {int(text)} <= 0: `dagster dev` checks ")
    assert "busy loop" in message
    # the only reader is `dagster dev`: code-server start and api grpc never read it
    assert "(`dagster code-server start` and `dagster api grpc` never read it)" in message


@pytest.mark.parametrize("text", ["1", "5", "3600"])
def test_positive_restart_interval_is_fine(text: str) -> None:
    assert check(resolve(**{RESTART: text})) == []


def test_empty_restart_interval_is_one_error() -> None:
    violations = check(resolve(**{RESTART: ""}))
    assert [(v.severity, v.settings) for v in violations] == [("error", ("restart_interval",))]


@pytest.mark.parametrize("text", ["0", "-2"])
def test_max_workers_below_1_is_an_error(text: str) -> None:
    violations = check(resolve(**{MAX_WORKERS: text}))
    assert [(v.severity, v.settings) for v in violations] == [("error", ("max_workers",))]
    assert "max_workers must be greater than 0" in violations[0].message


def test_max_workers_1_is_a_warning_naming_heartbeat() -> None:
    violations = check(resolve(**{MAX_WORKERS: "1"}))
    assert [(v.severity, v.settings) for v in violations] == [("warning", ("max_workers",))]
    assert "--heartbeat" in violations[0].message


def test_max_workers_above_1_is_fine() -> None:
    assert check(resolve(**{MAX_WORKERS: "2"})) == []


def test_cascade_checks_come_after_the_per_setting_ones() -> None:
    violations = check(resolve(**{"DAGSTER_GRPC_TIMEOUT_SECONDS": "0", PORT: "4266", SOCKET: "/s"}))
    assert [v.settings[0] for v in violations] == ["default", "schedule", "sensor", "grace", "port"]


# Writing marker values (pure) and NAME=VALUE entries


def test_marker_true_writes_1_and_false_removes_exception_logging() -> None:
    assert parse_marker(DAGSTER, (), {"log_exceptions": True}, "m").values == {"log_exceptions": "1"}
    assert parse_marker(DAGSTER, (), {"log_exceptions": False}, "m").values == {"log_exceptions": None}
    assert parse_marker(DAGSTER, (), {"log_exceptions": "0"}, "m").values == {"log_exceptions": "0"}


@pytest.mark.parametrize("value", [1, 0, 1.0, [True]])
def test_marker_exception_logging_refuses_what_is_not_a_bool_or_a_str(value: object) -> None:
    with pytest.raises(OverrideError) as info:
        parse_marker(DAGSTER, (), {"log_exceptions": value}, "marker on test_x")
    message = str(info.value)
    assert message.startswith(
        f"@pytest.mark.grpc_timeouts on test_x: log_exceptions={value!r} ({LOG_EXCEPTIONS}): "
    )
    assert "True (writes '1'), False (removes the variable" in message


def test_marker_writes_the_other_settings() -> None:
    layer = parse_marker(
        DAGSTER,
        (),
        {"restart_interval": "", "port": 4266, "socket": "/tmp/s", "host": "::", "max_workers": 4.0},
        "m",
    )
    assert layer.values == {
        "restart_interval": "",
        "port": "4266",
        "socket": "/tmp/s",
        "host": "::",
        "max_workers": "4",
    }


@pytest.mark.parametrize("name", ["port", "max_workers", "restart_interval"])
def test_marker_refuses_a_bool_for_a_number(name: str) -> None:
    with pytest.raises(OverrideError, match=r"True is a bool; accepted: an int"):
        parse_marker(DAGSTER, (), {name: True}, "m")


@pytest.mark.parametrize("name", ["socket", "host"])
def test_marker_refuses_a_number_for_text(name: str) -> None:
    with pytest.raises(OverrideError, match=r"4266 is an int; accepted: any text"):
        parse_marker(DAGSTER, (), {name: 4266}, "m")


def test_assignment_refuses_an_empty_restart_interval() -> None:
    with pytest.raises(OverrideError) as info:
        parse_assignments(DAGSTER, ["restart_interval="], "--grpc-timeout")
    assert str(info.value) == (
        f"--grpc-timeout: restart_interval='' ({RESTART}) is not a whole number, as int() reads it"
    )


def test_assignment_with_empty_value_removes_the_other_new_variables() -> None:
    entries = ["log_exceptions=", "port=", "socket=", "host=", "max_workers="]
    values = parse_assignments(DAGSTER, entries, "ini grpc_timeouts").values
    assert values == dict.fromkeys(["log_exceptions", "port", "socket", "host", "max_workers"])


def test_assignment_takes_the_new_settings() -> None:
    entries = ["restart_interval=10", "log_exceptions=1", "port=4266", "host=0.0.0.0", "max_workers=4"]
    assert parse_assignments(DAGSTER, entries, "ini").values == {
        "restart_interval": "10",
        "log_exceptions": "1",
        "port": "4266",
        "host": "0.0.0.0",
        "max_workers": "4",
    }


@pytest.mark.parametrize("entry", ["port=abc", "max_workers=1.5"])
def test_assignment_refuses_what_click_refuses(entry: str) -> None:
    with pytest.raises(OverrideError, match=r"is not a whole number, as click\.INT reads it"):
        parse_assignments(DAGSTER, [entry], "--grpc-timeout")


# Markers, through the plugin

PRELUDE = f"""\
import os
import pytest
from pytest_grpc_deadlines import DAGSTER

def cascade_env():
    return {{name: os.environ[name] for name in DAGSTER.env_vars if name in os.environ}}

def restart_interval():
    # dagster/_cli/proxy_server_manager.py
    return int(os.getenv("{RESTART}", "5"))

"""


@pytest.fixture(autouse=True)
def no_ambient_cascade(monkeypatch: pytest.MonkeyPatch) -> None:
    for env_var in DAGSTER.env_vars:
        monkeypatch.delenv(env_var, raising=False)


def run_tests(pytester: pytest.Pytester, source: str) -> pytest.RunResult:
    pytester.makepyfile(test_mod=PRELUDE + textwrap.dedent(source))
    return pytester.runpytest(*QUIET)


def test_marker_true_turns_exception_logging_on_with_1(pytester: pytest.Pytester) -> None:
    result = run_tests(
        pytester,
        f"""
        @pytest.mark.grpc_timeouts(log_exceptions=True)
        def test_on(grpc_timeouts):
            assert cascade_env() == {{"{LOG_EXCEPTIONS}": "1"}}
            assert grpc_timeouts.log_exceptions is True
            assert grpc_timeouts.source("log_exceptions") == "{LOG_EXCEPTIONS}='1' (marker on test_on)"
        """,
    )
    result.assert_outcomes(passed=1)


def test_marker_false_removes_exception_logging_even_when_inherited(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(LOG_EXCEPTIONS, "0")  # on, as Dagster reads it
    monkeypatch.setenv(HOST, "0.0.0.0")
    result = run_tests(
        pytester,
        f"""
        @pytest.mark.grpc_timeouts(log_exceptions=False, inherit=True)
        def test_off_inherited(grpc_timeouts):
            assert cascade_env() == {{"{HOST}": "0.0.0.0"}}
            assert grpc_timeouts.log_exceptions is False
            assert not os.getenv("{LOG_EXCEPTIONS}")

        @pytest.mark.grpc_timeouts(log_exceptions=False)
        def test_off(grpc_timeouts):
            assert cascade_env() == {{}}
            assert grpc_timeouts.log_exceptions is False

        def test_untouched(grpc_timeouts):
            assert os.environ["{LOG_EXCEPTIONS}"] == "0"
            assert grpc_timeouts.log_exceptions is True
        """,
    )
    result.assert_outcomes(passed=3)


def test_marker_empty_restart_interval_reaches_the_code_as_dagsters_failure(
    pytester: pytest.Pytester,
) -> None:
    result = run_tests(
        pytester,
        f"""
        @pytest.mark.grpc_timeouts(restart_interval="")
        def test_empty(grpc_timeouts):
            assert cascade_env() == {{"{RESTART}": ""}}
            with pytest.raises(ValueError, match="invalid literal for int"):
                restart_interval()
            assert set(grpc_timeouts.errors) == {{"restart_interval"}}

        @pytest.mark.grpc_timeouts(restart_interval=None)
        def test_removed(grpc_timeouts):
            assert restart_interval() == grpc_timeouts.restart_interval == 5

        @pytest.mark.grpc_timeouts(restart_interval=2)
        def test_two(grpc_timeouts):
            assert restart_interval() == grpc_timeouts.restart_interval == 2
        """,
    )
    result.assert_outcomes(passed=3)


def test_marker_port_socket_host_and_max_workers(pytester: pytest.Pytester) -> None:
    result = run_tests(
        pytester,
        f"""
        @pytest.mark.grpc_timeouts(port=4266, host="0.0.0.0", max_workers=4)
        def test_port(grpc_timeouts):
            assert cascade_env() == {{"{PORT}": "4266", "{HOST}": "0.0.0.0", "{MAX_WORKERS}": "4"}}
            assert (grpc_timeouts.port, grpc_timeouts.host, grpc_timeouts.max_workers) == (4266, "0.0.0.0", 4)
            assert grpc_timeouts.socket is None

        @pytest.mark.grpc_timeouts(socket="/tmp/s")
        def test_socket(grpc_timeouts):
            assert cascade_env() == {{"{SOCKET}": "/tmp/s"}}
            assert (grpc_timeouts.port, grpc_timeouts.socket) == (None, "/tmp/s")
        """,
    )
    result.assert_outcomes(passed=2)


def test_marker_bool_port_fails_the_test_with_a_clear_message(pytester: pytest.Pytester) -> None:
    result = run_tests(
        pytester,
        """
        @pytest.mark.grpc_timeouts(port=True)
        def test_bad():
            pass

        def test_good():
            pass
        """,
    )
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(
        [f"*@pytest.mark.grpc_timeouts on test_bad: port=True ({PORT}): True is a bool; accepted: an int*"]
    )
    assert "Traceback" not in result.stdout.str()


# The strategies


@pytest.mark.parametrize(("name", "env_var"), list(NEW_SETTINGS.items()))
def test_environs_sets_every_new_variable(name: str, env_var: str) -> None:
    environ = find(environs(), lambda e: DAGSTER.resolve(e).is_explicit(name), settings=SEARCH)
    assert env_var in environ


@FEW
@given(environs())
def test_environs_without_invalid_values_never_draws_an_empty_restart_interval(
    environ: dict[str, str],
) -> None:
    assert environ.get(RESTART) != ""
    assert "restart_interval" not in DAGSTER.resolve(environ).errors


def test_environs_with_invalid_values_draws_an_empty_restart_interval() -> None:
    find(environs(include_invalid=True), lambda e: e.get(RESTART) == "", settings=SEARCH)


def test_environs_draws_0_for_exception_logging() -> None:
    find(environs(), lambda e: e.get(LOG_EXCEPTIONS) == "0", settings=SEARCH)


def test_environs_draws_port_and_socket_together() -> None:
    environ = find(environs(), lambda e: ("error", ("port", "socket")) in findings(e), settings=SEARCH)
    assert {PORT, SOCKET} <= set(environ)


@FEW
@given(environs(include_invalid=True))
def test_exception_logging_is_on_exactly_when_the_variable_is_non_empty(environ: dict[str, str]) -> None:
    assert DAGSTER.resolve(environ).log_exceptions is bool(environ.get(LOG_EXCEPTIONS))


# Conformance with copies of Dagster's functions (tests/dagster_resolvers.py)


def test_copied_resolvers_read_the_variables_as_the_facts_say(monkeypatch: pytest.MonkeyPatch) -> None:
    assert get_auto_restart_code_server_interval() == 5
    assert code_server_logs_exceptions() is False
    monkeypatch.setenv(LOG_EXCEPTIONS, "")
    assert code_server_logs_exceptions() is False
    monkeypatch.setenv(LOG_EXCEPTIONS, "0")
    assert code_server_logs_exceptions() is True
    monkeypatch.setenv(RESTART, " 7 ")
    assert get_auto_restart_code_server_interval() == 7
    monkeypatch.setenv(RESTART, "")
    with pytest.raises(ValueError, match="invalid literal for int"):
        get_auto_restart_code_server_interval()


def test_conformance_passes_for_the_copied_server_resolvers() -> None:
    resolvers = {name: RESOLVERS[name] for name in ("restart_interval", "log_exceptions")}
    assert_cascade_conforms(DAGSTER, resolvers, max_examples=200)


def restart_interval_with_empty_as_unset() -> int:
    """A restart-interval rule that wrongly treats "" as unset."""
    return int(os.getenv(RESTART) or "5")


def exception_logging_off_for_0() -> bool:
    """An exception-logging rule that wrongly reads "0" as off."""
    return os.getenv(LOG_EXCEPTIONS, "") not in ("", "0")


@pytest.mark.parametrize(
    ("name", "resolver", "entry", "mismatch"),
    [
        (
            "restart_interval",
            restart_interval_with_empty_as_unset,
            f"'{RESTART}': ''",
            "restart_interval: resolver gave value 5, model gave error",
        ),
        (
            "log_exceptions",
            exception_logging_off_for_0,
            f"'{LOG_EXCEPTIONS}': '0'",
            "log_exceptions: resolver gave value False, model gave value True",
        ),
    ],
)
def test_conformance_catches_a_misread_server_variable(
    name: str, resolver: Callable[[], object], entry: str, mismatch: str
) -> None:
    with pytest.raises(AssertionError) as info:
        assert_cascade_conforms(DAGSTER, {name: resolver}, max_examples=1000)
    message = str(info.value)
    # Shrinking usually leaves that one variable, but may keep others that do not matter.
    assert entry in message.splitlines()[0]
    assert f"\n  {mismatch}" in message


# --- byte limits raised on one side only ------------------------------------------------------------


def test_a_receive_limit_raised_alone_warns_that_the_sender_refuses_what_lies_between() -> None:
    """The environment document's example raises only DAGSTER_GRPC_MAX_RX_BYTES."""
    violations = check(DAGSTER.resolve({"DAGSTER_GRPC_MAX_RX_BYTES": "500000000"}))
    assert [(v.severity, v.settings) for v in violations] == [("warning", ("max_rx_bytes", "max_send_bytes"))]
    assert violations[0].message.startswith("max_rx_bytes 500000000 > max_send_bytes 100000000: ")
    assert "'SERVER: Sent message larger than max'" in violations[0].message


def test_a_send_limit_above_the_receive_limit_warns_that_the_receiver_refuses() -> None:
    violations = check(DAGSTER.resolve({"DAGSTER_GRPC_MAX_SEND_BYTES": "200000000"}))
    assert [v.settings for v in violations] == [("max_rx_bytes", "max_send_bytes")]
    assert "'Received message larger than max'" in violations[0].message


@pytest.mark.parametrize(
    "environ",
    [
        {},
        {"DAGSTER_GRPC_MAX_RX_BYTES": "500000000", "DAGSTER_GRPC_MAX_SEND_BYTES": "500000000"},
        {"DAGSTER_GRPC_MAX_RX_BYTES": "-1", "DAGSTER_GRPC_MAX_SEND_BYTES": "-1"},  # both unlimited
        {"DAGSTER_GRPC_MAX_RX_BYTES": "0"},  # a finding of its own: everything is refused
    ],
)
def test_equal_byte_limits_or_one_with_a_finding_of_its_own_give_no_asymmetry_warning(
    environ: dict[str, str],
) -> None:
    both = ("max_rx_bytes", "max_send_bytes")
    assert [v for v in check(DAGSTER.resolve(environ)) if v.settings == both] == []


# --- the grace period is not a call timeout; a port is a TCP port -----------------------------------


@pytest.mark.parametrize("text", ["0", "-3"])
def test_a_grace_of_zero_or_below_says_in_flight_calls_are_cancelled_at_once(text: str) -> None:
    messages = [v.message for v in check(resolve(DAGSTER_GRPC_SHUTDOWN_GRACE_PERIOD=text))]
    assert (
        f"grace {text}: a stopping server does not wait: calls in flight are cancelled at once "
        "(the client gets UNAVAILABLE)"
    ) in messages
    assert not any("fails with DEADLINE_EXCEEDED" in message for message in messages)


def test_a_grace_longer_than_python_can_wait_is_an_error() -> None:
    [found] = [
        v for v in check(resolve(DAGSTER_GRPC_SHUTDOWN_GRACE_PERIOD="100000000000")) if v.severity == "error"
    ]
    assert found.settings == ("grace",)
    assert found.message.startswith("grace 100000000000 is longer than Python can wait (")
    assert "grpc's shutdown thread dies with OverflowError" in found.message


@pytest.mark.parametrize(
    ("env_var", "text", "command"),
    [
        ("DAGSTER_GRPC_PORT", "70000", "dagster api grpc"),
        ("DAGSTER_GRPC_PORT", "-1", "dagster api grpc"),
        ("DAGSTER_CODE_SERVER_PORT", "65536", "dagster code-server start"),
    ],
)
def test_a_port_outside_the_tcp_range_is_an_error(env_var: str, text: str, command: str) -> None:
    [found] = check(DAGSTER.resolve({env_var: text}))
    assert found.severity == "error"
    assert found.message == (
        f"{env_var}={text!r} is not a TCP port (0 to 65535): `{command}` fails when grpc cannot bind it"
    )
