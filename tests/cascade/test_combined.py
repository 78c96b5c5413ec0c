"""Several cascades in one run: names that cannot collide, each part resolved by its own rules,
checks and bindings kept, and the errors for cascades that cannot go together."""

from __future__ import annotations

import pytest

from pytest_grpc_deadlines import DAGSTER, GRPC_SIMPLE_STUBS, OTEL_OTLP, Cascade, Ref, Seconds, Setting, check
from pytest_grpc_deadlines.cascade._combined import combine
from pytest_grpc_deadlines.cascade._explain import main as explain
from pytest_grpc_deadlines.cascade._overrides import (
    OverrideError,
    load_cascades,
    parse_assignments,
    parse_marker,
)

#: A cascade of the user's with a setting named as OTEL_OTLP's and one named as Dagster's.
MINE = Cascade(
    "mine",
    (
        Setting("timeout", "MINE_TIMEOUT", 5.0, rule=Seconds(), kind="seconds"),
        Setting("deadline_floor", "MINE_FLOOR", 2.0, rule=Seconds(), kind="seconds"),
    ),
)


def test_one_cascade_is_itself() -> None:
    assert combine([DAGSTER]) is DAGSTER


def test_names_stay_unless_two_cascades_share_one() -> None:
    both = combine([OTEL_OTLP, MINE])
    assert both.name == "otel_otlp+mine"
    assert both.names == ("otel_otlp_timeout", "traces", "metrics", "logs", "mine_timeout", "deadline_floor")
    resolved = both.resolve({"OTEL_EXPORTER_OTLP_TIMEOUT": "3", "MINE_TIMEOUT": "7.5"})
    assert (resolved.otel_otlp_timeout, resolved.traces, resolved.mine_timeout) == (3.0, 3.0, 7.5)
    assert resolved.source("traces") == "derived: otel_otlp_timeout=3.0"  # in the names used here
    # a renamed setting's default still derives from its own cascade's setting
    assert both["traces"].default.name == "otel_otlp_timeout"  # type: ignore[attr-defined]


def test_each_part_keeps_its_rules_checks_and_bindings() -> None:
    every = combine([DAGSTER, OTEL_OTLP, GRPC_SIMPLE_STUBS])
    assert every.names[:2] == ("default", "repository")
    resolved = every.resolve(
        {"DAGSTER_GRPC_MAX_RX_BYTES": "200000000", "GRPC_PYTHON_MANAGED_CHANNEL_MAXIMUM": "x"}
    )
    # read together: grpc's simple stubs lose every value; Dagster's and OTLP's are untouched
    assert set(resolved.errors) == {"default_timeout", "eviction_seconds", "maximum_channels"}
    messages = [v.message for v in check(resolved)]
    assert any(m.startswith("max_rx_bytes 200000000 > max_send_bytes 100000000") for m in messages)
    assert [str(b) for b in every.bindings][-1] == "grpc._simple_stubs:_MAXIMUM_CHANNELS -> maximum_channels"
    assert every.setting_for("opentelemetry.proto.collector.trace.v1.TraceService/Export") == "traces"
    assert every.setting_for("api.DagsterApi/SyncExternalSensorExecution") == "sensor"


def test_a_marker_names_a_shared_setting_by_its_cascade() -> None:
    both = combine([OTEL_OTLP, MINE])
    layer = parse_marker(both, (), {"otel_otlp_timeout": 4, "mine_timeout": 1.5}, "marker on test_x")
    assert layer.values == {"otel_otlp_timeout": "4.0", "mine_timeout": "1.5"}
    with pytest.raises(OverrideError) as info:
        parse_marker(both, (), {"timeout": 4}, "marker on test_x")
    assert str(info.value).endswith(
        "; 'timeout' is a setting of several cascades here, so each has its cascade's name: "
        "otel_otlp_timeout, mine_timeout"
    )
    with pytest.raises(OverrideError, match=r"unknown setting 'timeout' in 'timeout=3'.*otel_otlp_timeout"):
        parse_assignments(both, ["timeout=3"], "--grpc-timeout")


def test_two_cascades_reading_one_variable_cannot_go_together() -> None:
    twin = Cascade("twin", (Setting("sensor", "DAGSTER_SENSOR_GRPC_TIMEOUT_SECONDS", 60, kind="seconds"),))
    with pytest.raises(OverrideError) as info:
        load_cascades(["dagster", "tests.cascade.test_combined:TWIN"], "ini grpc_deadlines_cascade")
    assert str(info.value) == (
        "ini grpc_deadlines_cascade: DAGSTER_SENSOR_GRPC_TIMEOUT_SECONDS is read by both the dagster "
        "and the twin cascades: a test could not set it for one and not the other; use one of them "
        "(or one cascade that models both readers)"
    )
    assert twin.names == ("sensor",)


TWIN = Cascade("twin", (Setting("sensor", "DAGSTER_SENSOR_GRPC_TIMEOUT_SECONDS", 60, kind="seconds"),))


def test_a_cascade_named_twice_is_refused() -> None:
    with pytest.raises(
        OverrideError, match=r"^--cascade: the otel_otlp cascade is named twice; name each cascade once$"
    ):
        load_cascades("otel_otlp, otel_otlp", "--cascade")


def test_an_empty_list_names_no_cascade() -> None:
    with pytest.raises(OverrideError, match=r"^--cascade: names no cascade$"):
        load_cascades(" , ", "--cascade")


def test_explain_resolves_several_cascades_side_by_side(capsys: pytest.CaptureFixture[str]) -> None:
    code = explain(
        ["explain", "--cascade", "otel_otlp", "--cascade", "grpc_simple_stubs"],
        environ={"OTEL_EXPORTER_OTLP_METRICS_TIMEOUT": "0", "GRPC_PYTHON_DEFAULT_TIMEOUT_SECONDS": "-1"},
    )
    out = capsys.readouterr().out
    assert out.startswith("otel_otlp+grpc_simple_stubs cascade, resolved from the environment:")
    assert "derived: timeout=10.0 (OTEL_EXPORTER_OTLP_METRICS_TIMEOUT='0' counts as unset)" in out
    assert "default_timeout -1 < 0: every call with this timeout fails at once" in out
    assert code == 1


def test_an_error_names_the_settings_as_the_combined_cascade_does() -> None:
    deriving = Cascade(
        "mine",
        (
            Setting("timeout", "MINE_TIMEOUT", 5.0, rule=Seconds(), kind="seconds"),
            Setting("floor", "MINE_FLOOR", Ref("timeout"), rule=Seconds(), kind="seconds"),
        ),
    )
    resolved = combine([OTEL_OTLP, deriving]).resolve({"MINE_TIMEOUT": "abc"})
    error = resolved.errors["floor"]
    assert error.setting == "floor"
    assert str(error).startswith("floor derives from mine_timeout, which is invalid: MINE_TIMEOUT='abc'")
    assert resolved.source("floor") == "derived from mine_timeout, which is invalid"


def test_a_renamed_setting_that_meets_another_name_is_refused() -> None:
    a = Cascade("a", (Setting("x", "PGD_A_X", 1),))
    b = Cascade("b", (Setting("x", "PGD_B_X", 1), Setting("a_x", "PGD_B_AX", 1)))
    with pytest.raises(OverrideError) as info:
        load_cascades(["tests.cascade.test_combined:A", "tests.cascade.test_combined:B"], "--cascade")
    assert str(info.value) == (
        "--cascade: the a cascade's 'x' is called 'a_x' here (another listed cascade has a setting "
        "'x'), and so is the b cascade's 'a_x'; rename one of them"
    )
    assert (a.names, b.names) == (A.names, B.names)


A = Cascade("a", (Setting("x", "PGD_A_X", 1),))
B = Cascade("b", (Setting("x", "PGD_B_X", 1), Setting("a_x", "PGD_B_AX", 1)))
