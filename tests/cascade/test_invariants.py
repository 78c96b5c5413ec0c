"""check(): what breaks in production for a resolved cascade, as errors and warnings."""

from __future__ import annotations

import pytest

from pytest_grpc_deadlines import DAGSTER, Cascade, Max, Setting, Violation, check

GRPC = "DAGSTER_GRPC_TIMEOUT_SECONDS"
REPOSITORY = "DAGSTER_REPOSITORY_GRPC_TIMEOUT_SECONDS"
SCHEDULE = "DAGSTER_SCHEDULE_GRPC_TIMEOUT_SECONDS"
SENSOR = "DAGSTER_SENSOR_GRPC_TIMEOUT_SECONDS"
GRACE = "DAGSTER_GRPC_SHUTDOWN_GRACE_PERIOD"
RX = "DAGSTER_GRPC_MAX_RX_BYTES"
SEND = "DAGSTER_GRPC_MAX_SEND_BYTES"


def violations(environ: dict[str, str]) -> list[Violation]:
    return check(DAGSTER.resolve(environ))


def only(environ: dict[str, str]) -> Violation:
    found = violations(environ)
    assert len(found) == 1, found
    return found[0]


def test_defaults_break_nothing() -> None:
    assert violations({}) == []


def test_derived_values_break_nothing() -> None:
    assert violations({GRPC: "75", SCHEDULE: "120", SENSOR: "400"}) == []


def test_grace_below_sensor_is_one_warning_naming_grace_and_sensor() -> None:
    found = only({GRACE: "5", SENSOR: "400"})
    assert found.severity == "warning"
    assert found.message.startswith("grace 5 < sensor 400")
    assert "grace" in found.settings
    assert "sensor" in found.settings


def test_grace_below_sensor_spells_out_the_consequence() -> None:
    message = only({GRACE: "5", SENSOR: "400"}).message
    assert "in-flight sensor calls (up to 400 s) are cut at shutdown after 5 s" in message
    assert "UNAVAILABLE" in message
    assert "(also below default 60, schedule 60)" in message


def test_grace_at_the_largest_term_is_fine() -> None:
    assert violations({GRACE: "400", SENSOR: "400"}) == []


def test_explicit_repository_below_180_is_a_warning_mentioning_180() -> None:
    found = only({REPOSITORY: "30"})
    assert found.severity == "warning"
    assert found.settings == ("repository", "default")
    assert found.message.startswith("repository 30 < 180")
    assert "below the 180 s Dagster uses when the variable is unset" in found.message
    assert found.message.endswith("(also below default 60)")


def test_explicit_repository_below_default_names_default() -> None:
    found = only({GRPC: "240", REPOSITORY: "200"})
    assert found.message.startswith("repository 200 < default 240")
    assert found.settings == ("repository", "default")


def test_violation_reads_as_severity_and_message() -> None:
    assert str(only({REPOSITORY: "30"})).startswith("warning: repository 30 < 180")


def test_negative_timeout_is_a_warning() -> None:
    found = only({SCHEDULE: "-5"})
    assert (found.severity, found.settings) == ("warning", ("schedule",))
    assert found.message.startswith("schedule -5 < 0: every call with this timeout fails at once")


def test_zero_timeout_is_a_warning_about_calls_that_are_not_instant() -> None:
    found = only({SCHEDULE: "0"})
    assert (found.severity, found.settings) == ("warning", ("schedule",))
    assert "unless it returns instantly" in found.message


def test_zero_default_warns_for_every_timeout_it_reaches() -> None:
    found = violations({GRPC: "0"})
    assert [v.settings for v in found] == [("default",), ("schedule",), ("sensor",), ("grace",)]
    assert all(v.severity == "warning" for v in found)


def test_timeout_of_1e10_seconds_is_a_warning() -> None:
    found = only({REPOSITORY: str(10**10)})
    assert (found.severity, found.settings) == ("warning", ("repository",))
    assert "repository 10000000000: grpc cannot represent a deadline that far" in found.message


def test_timeout_landing_past_int64_nanoseconds_is_a_warning() -> None:
    """grpc keeps deadlines as int64 ns since the epoch: 8e9 s from now is past 2**63 ns."""
    found = only({REPOSITORY: str(8 * 10**9)})
    assert "grpc cannot represent a deadline that far" in found.message


def test_timeout_of_a_billion_seconds_is_fine() -> None:
    assert violations({REPOSITORY: str(10**9)}) == []


def test_representable_depends_on_when_the_call_starts() -> None:
    from pytest_grpc_deadlines.cascade._invariants import representable

    assert representable(7e9, now=0.0)
    assert not representable(7e9, now=2.3e9)
    assert not representable(float("inf"), now=0.0)
    assert not representable(1e10, now=0.0)


def test_max_rx_bytes_zero_is_a_warning() -> None:
    found = only({RX: "0"})
    assert (found.severity, found.settings) == ("warning", ("max_rx_bytes",))
    assert "every message is rejected with RESOURCE_EXHAUSTED" in found.message


def test_byte_limit_minus_one_means_unlimited_and_is_fine() -> None:
    assert violations({RX: "-1", SEND: "-1"}) == []


def test_byte_limit_below_minus_one_is_a_version_dependent_warning() -> None:
    found = only({SEND: "-2"})
    assert (found.severity, found.settings) == ("warning", ("max_send_bytes",))
    assert "version-dependent" in found.message
    assert "use -1 for unlimited" in found.message


def test_byte_limit_at_int32_max_is_fine() -> None:
    assert violations({RX: "2147483647", SEND: "2147483647"}) == []


@pytest.mark.parametrize("text", ["2147483648", "-2147483649"])
def test_byte_limit_outside_32_bits_is_an_error_mentioning_overflow_error(text: str) -> None:
    found = only({RX: text})
    assert (found.severity, found.settings) == ("error", ("max_rx_bytes",))
    assert "OverflowError" in found.message
    assert found.message.startswith(f"max_rx_bytes {text} is outside grpc's 32-bit range")


def test_unparsable_value_is_an_error_violation() -> None:
    found = violations({RX: "abc"})
    assert [(v.severity, v.settings) for v in found] == [("error", ("max_rx_bytes",))]
    assert RX in found[0].message
    assert "Dagster itself raises ValueError there" in found[0].message


def test_settings_derived_from_an_unparsable_value_are_errors_too() -> None:
    found = violations({GRPC: "abc"})
    assert [(v.severity, v.settings) for v in found] == [
        ("error", ("default",)),
        ("error", ("repository",)),
        ("error", ("schedule",)),
        ("error", ("sensor",)),
        ("error", ("grace",)),
    ]


def test_explicit_grace_with_an_unparsable_term_checks_the_readable_terms() -> None:
    found = violations({GRACE: "5", SENSOR: "abc", SCHEDULE: "100"})
    assert [(v.severity, v.settings[0]) for v in found] == [("error", "sensor"), ("warning", "grace")]
    assert found[1].message.startswith("grace 5 < schedule 100")


def test_violations_come_in_cascade_order() -> None:
    found = violations({SEND: "0", GRACE: "5", SCHEDULE: "-1"})
    assert [v.settings[0] for v in found] == ["schedule", "grace", "max_send_bytes"]


def test_user_cascade_floor_without_consequence_text() -> None:
    cascade = Cascade(
        "c",
        (
            Setting("a", "A", 10),
            Setting("b", "B", Max(20, "a")),
        ),
    )
    found = check(cascade.resolve({"B": "15"}))
    assert found == [Violation("warning", ("b",), "b 15 < 20")]


def test_settings_of_kind_other_get_no_range_checks() -> None:
    cascade = Cascade("c", (Setting("a", "A", 10),))
    assert check(cascade.resolve({"A": "-5"})) == []
