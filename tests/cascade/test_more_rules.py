"""The milliseconds and "value or default" rules, a cascade read all at once, and the built-in
OTEL_OTLP and GRPC_SIMPLE_STUBS cascades as the model reads them (their libraries' own code is in
tests/conformance)."""

from __future__ import annotations

import os

import pytest

from pytest_grpc_deadlines import (
    GRPC_SIMPLE_STUBS,
    OTEL_OTLP,
    Cascade,
    CascadeError,
    Milliseconds,
    OrDefault,
    Ref,
    Seconds,
    Setting,
    assert_cascade_conforms,
    check,
)
from pytest_grpc_deadlines.cascade._explain import main as explain
from pytest_grpc_deadlines.cascade._overrides import OverrideError, parse_marker

EXPORTER = Cascade(
    "exporter",
    (
        Setting("timeout", "PGD_TIMEOUT_MS", 10.0, rule=Milliseconds(), kind="seconds"),
        Setting(
            "traces", "PGD_TRACES_TIMEOUT_MS", Ref("timeout"), rule=OrDefault(Milliseconds()), kind="seconds"
        ),
        Setting("fraction", "PGD_FRACTION_MS", 0.25, rule=Milliseconds(whole=False), kind="seconds"),
    ),
)


# --- milliseconds ---------------------------------------------------------------------------------


def test_milliseconds_resolve_to_seconds() -> None:
    resolved = EXPORTER.resolve({"PGD_TIMEOUT_MS": " 1500 ", "PGD_FRACTION_MS": "2.5"})
    assert (resolved.timeout, resolved.traces, resolved.fraction) == (1.5, 1.5, 0.0025)
    assert resolved.source("traces") == "derived: timeout=1.5"


def test_whole_milliseconds_refuse_a_fraction_naming_the_reader() -> None:
    resolved = EXPORTER.resolve({"PGD_TIMEOUT_MS": "1.5"})
    with pytest.raises(
        CascadeError,
        match=r"PGD_TIMEOUT_MS='1\.5' \(environment\) is not a number of milliseconds, as int\(\) reads it",
    ):
        resolved.timeout  # noqa: B018
    assert "traces" in resolved.errors  # derived from it


@pytest.mark.parametrize(
    ("value", "text"),
    [(1.5, "1500"), (2, "2000"), (0.001, "1"), (1.001, "1001"), (2.002, "2002"), ("750", "750")],
)
def test_a_marker_gives_seconds_and_writes_milliseconds(value: object, text: str) -> None:
    assert Milliseconds().write(value) == text


def test_a_fractional_millisecond_is_refused_with_the_nearest_whole_one() -> None:
    with pytest.raises(OverrideError) as info:
        parse_marker(EXPORTER, (), {"timeout": 0.0015}, "marker on test_x")
    assert str(info.value) == (
        "@pytest.mark.grpc_timeouts on test_x: timeout=0.0015 (PGD_TIMEOUT_MS): 0.0015 seconds is "
        "1.5 ms, not a number of milliseconds, as int() reads it; give whole milliseconds (e.g. "
        "0.002) or a str written verbatim"
    )


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (True, "True is a bool; accepted: seconds as an int or a float"),
        (float("inf"), "inf seconds is not a number of milliseconds"),
        (10**400, r"is beyond what float\(\) holds"),
    ],
)
def test_a_marker_value_milliseconds_cannot_take_is_refused(value: object, message: str) -> None:
    with pytest.raises((TypeError, ValueError), match=message):
        Milliseconds().write(value)


def test_milliseconds_too_large_for_a_float_are_an_error_not_a_crash() -> None:
    resolved = EXPORTER.resolve({"PGD_TIMEOUT_MS": "1" + "0" * 400})
    assert "OverflowError" in str(resolved.errors["timeout"])
    assert "traces" in EXPORTER.resolve({"PGD_TRACES_TIMEOUT_MS": "1" + "0" * 400}).errors


def test_fractional_milliseconds_write_as_float_reads_them() -> None:
    assert Milliseconds(whole=False).write(0.0015) == "1.5"


def test_check_judges_milliseconds_in_seconds() -> None:
    messages = [v.message for v in check(EXPORTER.resolve({"PGD_TIMEOUT_MS": "0"}))]
    assert any(
        m.startswith("timeout 0: every call with this timeout fails with DEADLINE_EXCEEDED") for m in messages
    )


# --- value or default -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "traces", "source"),
    [
        ("0", 10.0, "derived: timeout=10.0 (PGD_TRACES_TIMEOUT_MS='0' counts as unset)"),
        ("250", 0.25, "PGD_TRACES_TIMEOUT_MS='250' (environment)"),
        ("-5", -0.005, "PGD_TRACES_TIMEOUT_MS='-5' (environment)"),
    ],
)
def test_zero_falls_through_to_the_default(text: str, traces: float, source: str) -> None:
    resolved = EXPORTER.resolve({"PGD_TRACES_TIMEOUT_MS": text})
    assert (resolved.traces, resolved.source("traces")) == (traces, source)


def test_text_the_inner_rule_refuses_is_still_an_error() -> None:
    assert "traces" in EXPORTER.resolve({"PGD_TRACES_TIMEOUT_MS": "soon"}).errors


def test_or_default_says_what_it_accepts() -> None:
    assert OrDefault(Seconds()).accepts == "a number of seconds, as float() reads it (0 means the default)"


def _read_traces() -> object:
    text, general = os.getenv("PGD_TRACES_TIMEOUT_MS"), os.getenv("PGD_TIMEOUT_MS")
    # the general variable is read only when the signal's is unset or 0, as OpenTelemetry does
    return (int(text) / 1000 if text else 0) or (int(general) / 1000 if general else 10.0)


def test_an_or_reader_conforms_to_the_rule() -> None:
    assert_cascade_conforms(EXPORTER, {"traces": _read_traces}, max_examples=300)


# --- built-in cascades ----------------------------------------------------------------------------


def test_otel_per_signal_zero_falls_through_to_the_general_timeout() -> None:
    resolved = OTEL_OTLP.resolve(
        {"OTEL_EXPORTER_OTLP_TRACES_TIMEOUT": "0", "OTEL_EXPORTER_OTLP_TIMEOUT": "3"}
    )
    assert (resolved.timeout, resolved.traces, resolved.metrics, resolved.logs) == (3.0, 3.0, 3.0, 3.0)


def test_otel_an_empty_per_signal_variable_is_an_error_as_float_finds_it() -> None:
    resolved = OTEL_OTLP.resolve({"OTEL_EXPORTER_OTLP_LOGS_TIMEOUT": ""})
    assert set(resolved.errors) == {"logs"}
    assert OTEL_OTLP.setting_for("opentelemetry.proto.collector.logs.v1.LogsService/Export") == "logs"


def test_a_cascade_read_together_fails_whole_on_one_bad_variable() -> None:
    resolved = GRPC_SIMPLE_STUBS.resolve({"GRPC_PYTHON_MANAGED_CHANNEL_MAXIMUM": "many"})
    assert set(resolved.errors) == {"default_timeout", "eviction_seconds", "maximum_channels"}
    assert str(resolved.errors["default_timeout"]).startswith(
        "default_timeout is not read: grpc's simple stubs itself reads every variable at once, and "
        "GRPC_PYTHON_MANAGED_CHANNEL_MAXIMUM fails it: GRPC_PYTHON_MANAGED_CHANNEL_MAXIMUM='many' "
        "(environment) is not a whole number, as int() reads it: importing grpc._simple_stubs "
        "(grpc.experimental) fails there"
    )


def test_the_eviction_period_beyond_timedelta_is_an_error() -> None:
    resolved = GRPC_SIMPLE_STUBS.resolve({"GRPC_PYTHON_MANAGED_CHANNEL_EVICTION_SECONDS": "1e300"})
    assert "OverflowError" in str(resolved.errors["eviction_seconds"])


@pytest.mark.parametrize("name", ["otel_otlp", "grpc_simple_stubs", "dagster"])
def test_explain_takes_a_built_in_cascade_by_name(name: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert explain(["explain", "--cascade", name], environ={}) == 0
    assert capsys.readouterr().out.startswith(f"{name} cascade")
