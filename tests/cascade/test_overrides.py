"""Parsing of markers, ``--grpc-timeout`` / ini entries and ``--cascade`` paths (pure functions)."""

from __future__ import annotations

import pytest

from pytest_grpc_deadlines import DAGSTER, Cascade, OverrideError, Setting, WholeNumber
from pytest_grpc_deadlines.cascade._overrides import Layer, load_cascade, parse_assignments, parse_marker

ORIGIN = "marker on test_x"
NAMES = (
    "default, repository, schedule, sensor, grace, max_rx_bytes, max_send_bytes, "
    "restart_interval, log_exceptions, port, socket, host, max_workers, code_server_port, "
    "code_server_socket, code_server_host, code_server_max_workers, startup_timeout, heartbeat_ttl, "
    "heartbeat_timeout"
)
KEYWORDS = f"{NAMES}, inherit"
STRICT = Cascade("strict", (Setting("restart", "MY_RESTART", 5, rule=WholeNumber(empty_is_unset=False)),))


# parse_marker


def test_marker_values_are_written_as_variable_texts() -> None:
    layer = parse_marker(DAGSTER, (), {"sensor": 30, "grace": 2.0, "default": " 7 "}, ORIGIN)
    assert layer == Layer(ORIGIN, {"sensor": "30", "grace": "2", "default": " 7 "}, None)


def test_marker_none_removes_a_variable() -> None:
    assert parse_marker(DAGSTER, (), {"sensor": None}, ORIGIN).values == {"sensor": None}


@pytest.mark.parametrize("inherit", [True, False])
def test_marker_inherit_takes_a_bool(inherit: bool) -> None:
    layer = parse_marker(DAGSTER, (), {"inherit": inherit, "sensor": 1}, ORIGIN)
    assert (layer.inherit, layer.values) == (inherit, {"sensor": "1"})


def test_marker_without_inherit_leaves_it_undecided() -> None:
    assert parse_marker(DAGSTER, (), {}, ORIGIN).inherit is None


def test_marker_inherit_refuses_a_non_bool() -> None:
    with pytest.raises(OverrideError) as info:
        parse_marker(DAGSTER, (), {"inherit": "yes"}, ORIGIN)
    assert str(info.value) == (
        "@pytest.mark.grpc_timeouts on test_x: inherit='yes' is not accepted; inherit takes True or False"
    )


def test_marker_refuses_positional_arguments_listing_the_keywords() -> None:
    with pytest.raises(OverrideError) as info:
        parse_marker(DAGSTER, (30,), {}, ORIGIN)
    message = str(info.value)
    assert message.startswith(
        "@pytest.mark.grpc_timeouts on test_x: positional arguments (30,) are not accepted"
    )
    assert "e.g. grpc_timeouts(sensor=30)" in message
    assert message.endswith(f"Accepted keywords: {KEYWORDS}")


def test_marker_refuses_an_unknown_setting_listing_the_keywords() -> None:
    with pytest.raises(OverrideError) as info:
        parse_marker(DAGSTER, (), {"snesor": 30}, ORIGIN)
    message = str(info.value)
    assert message.startswith(
        "@pytest.mark.grpc_timeouts on test_x: unknown setting 'snesor' for the dagster cascade"
    )
    assert message.endswith(f"accepted keywords: {KEYWORDS}")


def test_marker_refuses_a_fractional_float_naming_the_variable() -> None:
    with pytest.raises(OverrideError) as info:
        parse_marker(DAGSTER, (), {"sensor": 1.5}, ORIGIN)
    message = str(info.value)
    assert message.startswith(
        "@pytest.mark.grpc_timeouts on test_x: sensor=1.5 (DAGSTER_SENSOR_GRPC_TIMEOUT_SECONDS): "
    )
    assert "pass it as a string ('1.5')" in message


def test_marker_refuses_a_bool_value() -> None:
    with pytest.raises(
        OverrideError, match=r"sensor=True \(DAGSTER_SENSOR_GRPC_TIMEOUT_SECONDS\): True is a bool"
    ):
        parse_marker(DAGSTER, (), {"sensor": True}, ORIGIN)


def test_marker_error_is_a_value_error() -> None:
    assert issubclass(OverrideError, ValueError)


# parse_assignments


def test_assignments_keep_the_text_as_given_after_stripping() -> None:
    layer = parse_assignments(DAGSTER, ["sensor=30", " grace = 5 ", "default=+7"], "--grpc-timeout")
    assert layer == Layer("--grpc-timeout", {"sensor": "30", "grace": "5", "default": "+7"})


def test_assignment_with_empty_value_removes_the_variable() -> None:
    assert parse_assignments(DAGSTER, ["sensor="], "--grpc-timeout").values == {"sensor": None}


def test_later_assignment_wins() -> None:
    assert parse_assignments(DAGSTER, ["sensor=1", "sensor=2"], "ini").values == {"sensor": "2"}


@pytest.mark.parametrize("entry", ["sensor", "=30", "30"])
def test_assignment_refuses_an_entry_that_is_not_name_value(entry: str) -> None:
    with pytest.raises(OverrideError) as info:
        parse_assignments(DAGSTER, [entry], "--grpc-timeout")
    message = str(info.value)
    assert message.startswith(f"--grpc-timeout: {entry!r} is not NAME=VALUE (e.g. ")
    assert message.endswith(f"accepted names: {NAMES}")


def test_assignment_refuses_an_unknown_setting() -> None:
    with pytest.raises(OverrideError) as info:
        parse_assignments(DAGSTER, ["inherit=1"], "ini grpc_timeouts")
    message = str(info.value)
    assert message.startswith("ini grpc_timeouts: unknown setting 'inherit' in 'inherit=1'; accepted names: ")
    assert not message.endswith("inherit")


def test_assignment_refuses_a_value_the_setting_cannot_parse() -> None:
    with pytest.raises(OverrideError) as info:
        parse_assignments(DAGSTER, ["sensor=1.5"], "--grpc-timeout")
    assert str(info.value) == (
        "--grpc-timeout: sensor='1.5' (DAGSTER_SENSOR_GRPC_TIMEOUT_SECONDS) is not a whole number, "
        "as int() reads it"
    )


def test_assignment_empty_value_is_an_error_where_empty_is_parsed() -> None:
    with pytest.raises(
        OverrideError, match=r"--grpc-timeout: restart='' \(MY_RESTART\) is not a whole number"
    ):
        parse_assignments(STRICT, ["restart="], "--grpc-timeout")


# load_cascade


def test_load_cascade_imports_module_attribute() -> None:
    assert load_cascade("pytest_grpc_deadlines.cascade:DAGSTER", "--grpc-cascade") is DAGSTER


@pytest.mark.parametrize("path", ["DAGSTER", "pytest_grpc_deadlines:", ":DAGSTER", ""])
def test_load_cascade_refuses_a_path_that_is_not_module_attribute(path: str) -> None:
    with pytest.raises(OverrideError) as info:
        load_cascade(path, "--grpc-cascade")
    assert str(info.value) == (
        f"--grpc-cascade: {path!r} is neither a built-in cascade (dagster, otel_otlp, grpc_simple_stubs) "
        f"nor module:attribute (e.g. myproject.timeouts:CASCADE)"
    )


def test_load_cascade_reports_an_import_failure_with_its_cause() -> None:
    with pytest.raises(OverrideError) as info:
        load_cascade("no_such_module_xyz:CASCADE", "ini grpc_cascade")
    assert str(info.value).startswith(
        "ini grpc_cascade: cannot import module 'no_such_module_xyz' named in 'no_such_module_xyz:CASCADE': "
        "ModuleNotFoundError: "
    )


def test_load_cascade_reports_a_missing_attribute() -> None:
    with pytest.raises(OverrideError) as info:
        load_cascade("pytest_grpc_deadlines:NOPE", "--grpc-cascade")
    assert str(info.value) == (
        "--grpc-cascade: module 'pytest_grpc_deadlines' has no attribute 'NOPE' "
        "(from 'pytest_grpc_deadlines:NOPE')"
    )


def test_load_cascade_refuses_an_object_that_is_not_a_cascade() -> None:
    with pytest.raises(OverrideError) as info:
        load_cascade("pytest_grpc_deadlines:check", "--grpc-cascade")
    message = str(info.value)
    assert message.startswith("--grpc-cascade: 'pytest_grpc_deadlines:check' names a")
    assert message.endswith("function object, not a pytest_grpc_deadlines.Cascade")
