"""The cascade model: DAGSTER resolves as Dagster 1.13 does, and user cascades are checked."""

from __future__ import annotations

import dataclasses

import pytest

from pytest_grpc_deadlines import (
    DAGSTER,
    Binding,
    Cascade,
    CascadeError,
    Max,
    Ref,
    Resolved,
    Setting,
    WholeNumber,
)

GRPC = "DAGSTER_GRPC_TIMEOUT_SECONDS"
REPOSITORY = "DAGSTER_REPOSITORY_GRPC_TIMEOUT_SECONDS"
SCHEDULE = "DAGSTER_SCHEDULE_GRPC_TIMEOUT_SECONDS"
SENSOR = "DAGSTER_SENSOR_GRPC_TIMEOUT_SECONDS"
GRACE = "DAGSTER_GRPC_SHUTDOWN_GRACE_PERIOD"
RX = "DAGSTER_GRPC_MAX_RX_BYTES"
SEND = "DAGSTER_GRPC_MAX_SEND_BYTES"
RESTART = "DAGSTER_CODE_SERVER_AUTO_RESTART_INTERVAL"
LOG_EXCEPTIONS = "DAGSTER_CODE_SERVER_LOG_EXCEPTIONS"
PORT = "DAGSTER_GRPC_PORT"
SOCKET = "DAGSTER_GRPC_SOCKET"
HOST = "DAGSTER_GRPC_HOST"
MAX_WORKERS = "DAGSTER_GRPC_MAX_WORKERS"
CODE_SERVER_PORT = "DAGSTER_CODE_SERVER_PORT"
CODE_SERVER_SOCKET = "DAGSTER_CODE_SERVER_SOCKET"
CODE_SERVER_HOST = "DAGSTER_CODE_SERVER_HOST"
CODE_SERVER_MAX_WORKERS = "DAGSTER_CODE_SERVER_MAX_WORKERS"
STARTUP_TIMEOUT = "DAGSTER_CODE_SERVER_STARTUP_TIMEOUT"
HEARTBEAT_TTL = "DAGSTER_GRPC_PROXY_HEARTBEAT_TTL_SECONDS"
HEARTBEAT_TIMEOUT = "DAGSTER_PROXY_SERVER_HEARTBEAT_TIMEOUT"
#: Read as int(os.getenv(X, default)): an empty value is not "unset" there.
GETENV_WITH_DEFAULT = (RESTART, HEARTBEAT_TTL, HEARTBEAT_TIMEOUT)

DEFAULTS = {
    "default": 60,
    "repository": 180,
    "schedule": 60,
    "sensor": 60,
    "grace": 60,
    "max_rx_bytes": 100_000_000,
    "max_send_bytes": 100_000_000,
    "restart_interval": 5,
    "log_exceptions": False,
    "port": None,
    "socket": None,
    "host": "localhost",
    "max_workers": None,
    "code_server_port": None,
    "code_server_socket": None,
    "code_server_host": "localhost",
    "code_server_max_workers": None,
    "startup_timeout": 0,
    "heartbeat_ttl": 30,
    "heartbeat_timeout": 30,
}


def values(resolved: Resolved) -> dict[str, object]:
    return {name: resolved[name] for name in resolved}


# DAGSTER matches Dagster 1.13 (reference/dagster-facts.md and DESIGN.md, row by row)


def test_dagster_cascade_names_and_env_vars_are_dagsters() -> None:
    assert DAGSTER.names == (
        "default",
        "repository",
        "schedule",
        "sensor",
        "grace",
        "max_rx_bytes",
        "max_send_bytes",
        "restart_interval",
        "log_exceptions",
        "port",
        "socket",
        "host",
        "max_workers",
        "code_server_port",
        "code_server_socket",
        "code_server_host",
        "code_server_max_workers",
        "startup_timeout",
        "heartbeat_ttl",
        "heartbeat_timeout",
    )
    assert DAGSTER.env_vars == (
        GRPC,
        REPOSITORY,
        SCHEDULE,
        SENSOR,
        GRACE,
        RX,
        SEND,
        RESTART,
        LOG_EXCEPTIONS,
        PORT,
        SOCKET,
        HOST,
        MAX_WORKERS,
        CODE_SERVER_PORT,
        CODE_SERVER_SOCKET,
        CODE_SERVER_HOST,
        CODE_SERVER_MAX_WORKERS,
        STARTUP_TIMEOUT,
        HEARTBEAT_TTL,
        HEARTBEAT_TIMEOUT,
    )


def test_empty_environment_gives_dagsters_defaults() -> None:
    assert values(DAGSTER.resolve({})) == DEFAULTS


def test_grpc_timeout_120_leaves_repository_at_180() -> None:
    resolved = DAGSTER.resolve({GRPC: "120"})
    assert (resolved.default, resolved.repository) == (120, 180)


def test_grpc_timeout_240_raises_repository_to_240() -> None:
    assert DAGSTER.resolve({GRPC: "240"}).repository == 240


def test_grace_defaults_to_largest_of_default_schedule_and_sensor() -> None:
    resolved = DAGSTER.resolve({GRPC: "75", SCHEDULE: "120", SENSOR: "400"})
    assert (resolved.default, resolved.schedule, resolved.sensor, resolved.grace) == (75, 120, 400, 400)


def test_grace_default_leaves_repository_out() -> None:
    resolved = DAGSTER.resolve({REPOSITORY: "900"})
    assert (resolved.repository, resolved.grace) == (900, 60)


def test_grpc_timeout_zero_reaches_schedule_sensor_and_grace_but_not_repository() -> None:
    resolved = DAGSTER.resolve({GRPC: "0"})
    assert (resolved.schedule, resolved.sensor, resolved.grace, resolved.repository) == (0, 0, 0, 180)


def test_explicit_repository_below_180_is_kept() -> None:
    assert DAGSTER.resolve({REPOSITORY: "30"}).repository == 30


def test_explicit_grace_below_sensor_is_kept() -> None:
    resolved = DAGSTER.resolve({GRACE: "5", SENSOR: "400"})
    assert (resolved.grace, resolved.sensor) == (5, 400)


def test_byte_limits_are_read_from_their_variables() -> None:
    resolved = DAGSTER.resolve({RX: "200", SEND: "-1"})
    assert (resolved.max_rx_bytes, resolved.max_send_bytes) == (200, -1)


@pytest.mark.parametrize("env_var", [v for v in DAGSTER.env_vars if v not in GETENV_WITH_DEFAULT])
def test_empty_string_counts_as_unset(env_var: str) -> None:
    resolved = DAGSTER.resolve({env_var: ""})
    assert values(resolved) == DEFAULTS
    assert not resolved.errors


def test_empty_restart_interval_is_an_error_as_int_of_getenv_with_a_default() -> None:
    # int(os.getenv(X, "5")): the default applies only when the variable is absent.
    resolved = DAGSTER.resolve({RESTART: ""})
    assert set(resolved.errors) == {"restart_interval"}
    assert resolved.is_explicit("restart_interval")
    with pytest.raises(CascadeError, match=RESTART):
        resolved.restart_interval  # noqa: B018


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (" 7 ", 7),
        ("+5", 5),
        ("1_000", 1000),
        ("٣", 3),
        ("0", 0),
        ("-5", -5),
        ("\t12\n", 12),
    ],
)
def test_values_parse_as_python_int(text: str, expected: int) -> None:
    resolved = DAGSTER.resolve({SENSOR: text})
    assert resolved.sensor == expected
    assert not resolved.errors


@pytest.mark.parametrize("text", [" ", "1.5", "abc", "1e3", "0x10"])
def test_values_int_refuses_are_errors(text: str) -> None:
    resolved = DAGSTER.resolve({SENSOR: text})
    assert set(resolved.errors) == {"sensor", "grace"}
    with pytest.raises(CascadeError):
        resolved.sensor  # noqa: B018


# Errors


def test_invalid_value_raises_cascade_error_on_access() -> None:
    resolved = DAGSTER.resolve({SENSOR: "abc"})
    with pytest.raises(CascadeError) as info:
        resolved.sensor  # noqa: B018
    message = str(info.value)
    assert SENSOR in message
    assert "'abc'" in message
    assert "(environment)" in message
    assert "Dagster itself raises ValueError there" in message


def test_cascade_error_is_a_value_error_carrying_its_details() -> None:
    resolved = DAGSTER.resolve({SENSOR: "abc"}, origins={SENSOR: "marker on test_x"})
    error = resolved.errors["sensor"]
    assert isinstance(error, ValueError)
    assert (error.setting, error.env_var, error.value, error.origin) == (
        "sensor",
        SENSOR,
        "abc",
        "marker on test_x",
    )


def test_cascade_error_names_the_origin_passed_to_resolve() -> None:
    resolved = DAGSTER.resolve({SENSOR: "abc"}, origins={SENSOR: "marker on test_x"})
    with pytest.raises(CascadeError, match=r"'abc' \(marker on test_x\)"):
        resolved["sensor"]


def test_setting_derived_from_invalid_setting_raises_naming_the_cause() -> None:
    resolved = DAGSTER.resolve({GRPC: "abc"})
    for name in ("repository", "schedule", "sensor", "grace"):
        with pytest.raises(CascadeError) as info:
            resolved[name]
        assert str(info.value).startswith(f"{name} derives from ")
        assert GRPC in str(info.value)
        assert info.value.env_var == GRPC


def test_settings_not_derived_from_invalid_setting_stay_readable() -> None:
    resolved = DAGSTER.resolve({GRPC: "abc", REPOSITORY: "300", SCHEDULE: "10", SENSOR: "20"})
    assert (resolved.repository, resolved.schedule, resolved.sensor) == (300, 10, 20)
    assert (resolved.max_rx_bytes, resolved.max_send_bytes) == (100_000_000, 100_000_000)
    assert set(resolved.errors) == {"default", "grace"}


def test_errors_lists_each_unreadable_setting() -> None:
    resolved = DAGSTER.resolve({SENSOR: "abc", RX: "1.5"})
    assert set(resolved.errors) == {"sensor", "grace", "max_rx_bytes"}
    assert all(isinstance(e, CascadeError) for e in resolved.errors.values())
    assert not DAGSTER.resolve({}).errors


# Sources


def test_source_of_a_constant_default() -> None:
    assert DAGSTER.resolve({}).source("default") == "default: 60"


def test_source_of_a_max_default() -> None:
    assert DAGSTER.resolve({}).source("repository") == "derived: max(180, default=60)"


def test_source_of_a_ref_default() -> None:
    assert DAGSTER.resolve({}).source("schedule") == "derived: default=60"


def test_source_of_grace_names_its_three_terms() -> None:
    resolved = DAGSTER.resolve({SENSOR: "5"})
    assert resolved.source("grace") == "derived: max(default=60, schedule=60, sensor=5)"


def test_source_of_an_environment_value() -> None:
    assert DAGSTER.resolve({SENSOR: "5"}).source("sensor") == f"{SENSOR}='5' (environment)"


def test_source_names_the_origin_passed_to_resolve() -> None:
    resolved = DAGSTER.resolve({SENSOR: "5"}, origins={SENSOR: "marker on test_x"})
    assert resolved.source("sensor") == f"{SENSOR}='5' (marker on test_x)"


def test_source_says_an_empty_value_counts_as_unset() -> None:
    resolved = DAGSTER.resolve({SENSOR: ""})
    assert resolved.source("sensor") == f"derived: default=60 ({SENSOR}='' counts as unset)"


def test_source_of_a_setting_derived_from_an_invalid_one() -> None:
    assert DAGSTER.resolve({GRPC: "x"}).source("schedule") == "derived from default, which is invalid"


def test_source_of_unknown_setting_raises_key_error() -> None:
    with pytest.raises(KeyError):
        DAGSTER.resolve({}).source("nope")


def test_raw_and_is_explicit_report_the_variable_as_found() -> None:
    resolved = DAGSTER.resolve({SENSOR: "5", SCHEDULE: ""})
    assert (resolved.raw("sensor"), resolved.raw("schedule"), resolved.raw("default")) == ("5", "", None)
    assert (resolved.is_explicit("sensor"), resolved.is_explicit("schedule")) == (True, False)


# Resolved: access and immutability


def test_resolved_supports_attribute_and_mapping_access() -> None:
    resolved = DAGSTER.resolve({SENSOR: "5"})
    assert resolved.sensor == resolved["sensor"] == 5
    assert list(resolved) == list(DAGSTER.names)
    assert len(resolved) == len(DAGSTER.settings) == 20
    assert "sensor" in resolved
    assert "nope" not in resolved
    assert dict(resolved.items())["sensor"] == 5


def test_unknown_attribute_error_lists_the_settings() -> None:
    with pytest.raises(AttributeError, match=r"dagster cascade has no setting 'snesor'; settings: default, "):
        DAGSTER.resolve({}).snesor  # noqa: B018


def test_unknown_key_raises_key_error() -> None:
    with pytest.raises(KeyError):
        DAGSTER.resolve({})["nope"]


def test_resolved_is_frozen() -> None:
    resolved = DAGSTER.resolve({})
    with pytest.raises(AttributeError, match="frozen"):
        resolved.sensor = 5
    with pytest.raises(AttributeError, match="frozen"):
        del resolved._values
    with pytest.raises(TypeError):
        resolved._values["sensor"] = 5  # type: ignore[index]
    assert resolved.sensor == 60


def test_resolved_equality_compares_values_and_errors() -> None:
    assert DAGSTER.resolve({SENSOR: "60"}) == DAGSTER.resolve({})
    assert DAGSTER.resolve({SENSOR: "61"}) != DAGSTER.resolve({})
    assert DAGSTER.resolve({SENSOR: "a"}) == DAGSTER.resolve({SENSOR: "b"})


def test_resolved_repr_marks_invalid_settings() -> None:
    text = repr(DAGSTER.resolve({SENSOR: "abc"}))
    assert text.startswith("Resolved(dagster: default=60, repository=180, ")
    assert "sensor=<invalid>" in text


# Resolved.environ


def test_environ_gives_the_cascade_variables_present() -> None:
    resolved = DAGSTER.resolve({SENSOR: "5", SCHEDULE: "", "PATH": "/bin"})
    assert resolved.environ() == {SENSOR: "5", SCHEDULE: ""}


def test_environ_with_base_replaces_the_cascade_variables_of_the_base() -> None:
    resolved = DAGSTER.resolve({SENSOR: "5"})
    base = {"PATH": "/bin", SENSOR: "999", GRPC: "1"}
    assert resolved.environ(base) == {"PATH": "/bin", SENSOR: "5"}
    assert base == {"PATH": "/bin", SENSOR: "999", GRPC: "1"}


# Purity


def test_resolve_does_not_read_os_environ(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(SENSOR, "5")
    monkeypatch.setenv(GRPC, "abc")
    monkeypatch.setenv(RESTART, "")
    monkeypatch.setenv(PORT, "4266")
    resolved = DAGSTER.resolve({})
    assert values(resolved) == DEFAULTS


def test_resolve_does_not_change_its_arguments() -> None:
    environ = {SENSOR: "5"}
    origins = {SENSOR: "here"}
    DAGSTER.resolve(environ, origins)
    assert (environ, origins) == ({SENSOR: "5"}, {SENSOR: "here"})


# A user-defined cascade

MINE = Cascade(
    name="mine",
    reader="myapp",
    settings=(
        Setting("base", "MY_BASE", 10, kind="seconds"),
        Setting("slow", "MY_SLOW", Max(30, "base"), kind="seconds"),
        Setting("fast", "MY_FAST", Ref("base"), kind="seconds"),
        Setting(
            "restart", "MY_RESTART", 5, rule=WholeNumber(empty_is_unset=False, reader="int(getenv(X, '5'))")
        ),
    ),
    bindings=(Binding("myapp.client", "SLOW", "slow"),),
)


def test_user_cascade_resolves_its_defaults() -> None:
    assert values(MINE.resolve({})) == {"base": 10, "slow": 30, "fast": 10, "restart": 5}


def test_user_cascade_derives_from_its_settings() -> None:
    assert values(MINE.resolve({"MY_BASE": "50"})) == {"base": 50, "slow": 50, "fast": 50, "restart": 5}


def test_user_cascade_errors_name_its_reader() -> None:
    with pytest.raises(CascadeError, match="myapp itself raises ValueError there"):
        MINE.resolve({"MY_BASE": "x"}).base  # noqa: B018


def test_cascade_without_reader_says_its_reader() -> None:
    cascade = dataclasses.replace(MINE, reader="")
    with pytest.raises(CascadeError, match="its reader raises ValueError there"):
        cascade.resolve({"MY_BASE": "x"}).base  # noqa: B018


def test_empty_string_is_parsed_when_empty_is_unset_is_false() -> None:
    resolved = MINE.resolve({"MY_RESTART": ""})
    assert set(resolved.errors) == {"restart"}
    with pytest.raises(
        CascadeError, match=r"MY_RESTART='' \(environment\) is not a whole number, as int\(getenv"
    ):
        resolved.restart  # noqa: B018


def test_cascade_lookup_by_name() -> None:
    assert MINE["slow"].env_var == "MY_SLOW"
    assert len(MINE) == 4
    assert [s.name for s in MINE] == ["base", "slow", "fast", "restart"]
    with pytest.raises(KeyError):
        MINE["nope"]


def test_binding_reads_as_module_attribute_and_setting() -> None:
    assert str(MINE.bindings[0]) == "myapp.client:SLOW -> slow"


def test_cascade_refuses_a_setting_defined_twice() -> None:
    with pytest.raises(ValueError, match=r"setting 'a' \(A2\) is defined twice"):
        Cascade("c", (Setting("a", "A", 1), Setting("a", "A2", 2)))


def test_cascade_refuses_an_env_var_used_twice() -> None:
    with pytest.raises(ValueError, match=r"setting 'b' \(A\) is defined twice"):
        Cascade("c", (Setting("a", "A", 1), Setting("b", "A", 2)))


def test_cascade_refuses_a_rule_over_a_later_setting() -> None:
    with pytest.raises(ValueError, match="setting 'a' derives from 'b', which is not an earlier setting"):
        Cascade("c", (Setting("a", "A", Ref("b")), Setting("b", "B", 1)))


def test_cascade_refuses_a_max_over_an_unknown_setting() -> None:
    with pytest.raises(ValueError, match="setting 'a' derives from 'zz', which is not an earlier setting"):
        Cascade("c", (Setting("a", "A", Max(1, "zz")),))


def test_cascade_refuses_a_binding_to_an_unknown_setting() -> None:
    with pytest.raises(ValueError, match=r"binding m:X -> nope names an unknown setting"):
        Cascade("c", (Setting("a", "A", 1),), bindings=(Binding("m", "X", "nope"),))


def test_cascade_refuses_the_setting_name_inherit() -> None:
    with pytest.raises(ValueError, match="setting name 'inherit' must be an identifier other than 'inherit'"):
        Cascade("c", (Setting("inherit", "A", 1),))


def test_cascade_refuses_a_setting_name_that_is_not_an_identifier() -> None:
    with pytest.raises(ValueError, match="setting name 'a-b' must be an identifier"):
        Cascade("c", (Setting("a-b", "A", 1),))


@pytest.mark.parametrize("name", ["values", "source", "environ", "errors", "_private"])
def test_cascade_refuses_a_setting_name_attribute_access_cannot_reach(name: str) -> None:
    with pytest.raises(ValueError, match=f"setting name '{name}' is taken"):
        Cascade("c", (Setting(name, "A", 1),))


def test_max_needs_a_term() -> None:
    with pytest.raises(ValueError, match="Max"):
        Max()


# WholeNumber.write: how a marker value becomes the variable's text


@pytest.mark.parametrize(
    ("value", "text"), [(30, "30"), (0, "0"), (-1, "-1"), (2.0, "2"), (10**12, "1000000000000")]
)
def test_whole_number_writes_numbers(value: object, text: str) -> None:
    assert WholeNumber().write(value) == text


@pytest.mark.parametrize("value", ["abc", " 7 ", "", "1.5"])
def test_whole_number_writes_strings_verbatim(value: str) -> None:
    assert WholeNumber().write(value) == value


@pytest.mark.parametrize("value", [True, False, [1], None, {"a": 1}])
def test_whole_number_refuses_other_types_with_type_error(value: object) -> None:
    with pytest.raises(TypeError, match="accepted: an int, a float with a whole value, a str"):
        WholeNumber().write(value)


def test_whole_number_refuses_a_fractional_float_suggesting_a_string() -> None:
    with pytest.raises(
        ValueError, match=r"1\.5 is not a whole number, as int\(\) reads it; pass it as a string \('1\.5'\)"
    ):
        WholeNumber().write(1.5)


@pytest.mark.parametrize("value", [float("inf"), float("nan")])
def test_whole_number_refuses_non_finite_floats(value: float) -> None:
    with pytest.raises(ValueError, match="pass it as a string"):
        WholeNumber().write(value)


def test_whole_number_is_set_follows_empty_is_unset() -> None:
    assert (WholeNumber().is_set(""), WholeNumber().is_set(None), WholeNumber().is_set("0")) == (
        False,
        False,
        True,
    )
    strict = WholeNumber(empty_is_unset=False)
    assert (strict.is_set(""), strict.is_set(None)) == (True, False)


def test_max_over_a_value_that_is_not_a_whole_number_is_a_clear_error() -> None:
    from pytest_grpc_deadlines import Cascade, Max, Setting, ValueRule

    class Seconds(ValueRule):
        def parse(self, raw: str) -> object:
            return float(raw)

    cascade = Cascade(
        "floats",
        (Setting("a", "FLOATS_A", 1.5, rule=Seconds()), Setting("b", "FLOATS_B", Max(2, "a"))),
    )
    with pytest.raises(TypeError, match=r"Max\(\) takes whole numbers: term 'a' is 1.5"):
        cascade.resolve({})
