"""Hypothesis strategies for cascades, and the conformance helper built on them."""

from __future__ import annotations

import dataclasses
import os
import re
from collections.abc import Callable

import pytest
from hypothesis import Phase, find, given, settings
from hypothesis import strategies as st
from hypothesis.errors import InvalidArgument

from pytest_grpc_deadlines import DAGSTER, Cascade, Setting, WholeNumber, assert_cascade_conforms, check
from pytest_grpc_deadlines.strategies import environs, setting_texts
from tests.dagster_resolvers import RESOLVERS, default_grpc_timeout, default_schedule_grpc_timeout

#: Dagster's five timeouts alone: a search over their variables finds a wrong rule within a few
#: dozen examples, where one over all twenty variables of the cascade can miss it.
TIMEOUTS = dataclasses.replace(DAGSTER, settings=DAGSTER.settings[:5], bindings=(), checks=(), processes=())

SENSOR = "DAGSTER_SENSOR_GRPC_TIMEOUT_SECONDS"
GRACE = "DAGSTER_GRPC_SHUTDOWN_GRACE_PERIOD"

FEW = settings(max_examples=50, deadline=None, database=None)
#: A search finds one example: generated from a fixed seed (the same every run), not shrunk (the
#: tests need any example, and shrinking one over twenty variables took up to 30 s).
SEARCH = settings(max_examples=500, deadline=None, database=None, derandomize=True, phases=(Phase.generate,))

STRICT = Cascade(
    "strict",
    (
        Setting("restart", "MY_RESTART", 5, rule=WholeNumber(empty_is_unset=False)),
        Setting("limit", "MY_LIMIT", 10, kind="bytes"),
    ),
)


def draw_once(strategy: st.SearchStrategy[object]) -> None:
    """Draw one value inside a Hypothesis test (where argument errors surface)."""

    @FEW
    @given(strategy)
    def inner(value: object) -> None:
        pass

    inner()


# environs()


@FEW
@given(environs())
def test_environs_draws_only_cascade_variables_holding_text(environ: dict[str, str]) -> None:
    assert set(environ) <= set(DAGSTER.env_vars)
    assert all(isinstance(text, str) for text in environ.values())


@FEW
@given(environs(include_invalid=True))
def test_environs_with_invalid_values_draws_only_cascade_variables_holding_text(
    environ: dict[str, str],
) -> None:
    assert set(environ) <= set(DAGSTER.env_vars)
    assert all(isinstance(text, str) and "\x00" not in text for text in environ.values())


@settings(max_examples=200, deadline=None, database=None)
@given(environs())
def test_environs_without_invalid_values_always_resolves_without_errors(environ: dict[str, str]) -> None:
    resolved = DAGSTER.resolve(environ)
    assert not resolved.errors
    # Every value parses; the only errors left are the server rules over valid values (port
    # and socket together, port 0 alone, max_workers below 1), which no single text avoids.
    server_rules = {"port", "socket", "max_workers"}
    server_rules |= {"code_server_port", "code_server_socket", "code_server_max_workers"}
    server_rules |= {"grace"}  # a whole number longer than Python can wait
    errors = [v for v in check(resolved) if v.severity == "error"]
    assert all(set(v.settings) <= server_rules for v in errors), errors


@FEW
@given(environs(STRICT))
def test_environs_without_invalid_values_leaves_out_empty_text_where_it_is_parsed(
    environ: dict[str, str],
) -> None:
    assert not STRICT.resolve(environ).errors


def test_environs_with_invalid_values_finds_values_the_reader_refuses() -> None:
    environ = find(environs(include_invalid=True), lambda e: bool(DAGSTER.resolve(e).errors), settings=SEARCH)
    assert DAGSTER.resolve(environ).errors


def test_environs_with_invalid_values_finds_byte_limits_grpc_refuses() -> None:
    environ = find(
        environs(include_invalid=True),
        # Other variables may hold refused values too: only the byte limit's violation counts.
        lambda e: any(
            v.settings[0] in ("max_rx_bytes", "max_send_bytes") and "OverflowError" in v.message
            for v in check(DAGSTER.resolve(e))
        ),
        settings=SEARCH,
    )
    assert "OverflowError" in str(check(DAGSTER.resolve(environ)))


def test_environs_draws_empty_texts() -> None:
    find(environs(), lambda e: "" in e.values(), settings=SEARCH)


def test_environs_draws_non_ascii_digits_int_accepts() -> None:
    environ = find(environs(), lambda e: any(not text.isascii() for text in e.values()), settings=SEARCH)
    assert not DAGSTER.resolve(environ).errors


def test_environs_draws_padded_texts() -> None:
    find(environs(), lambda e: any(text != text.strip() for text in e.values()), settings=SEARCH)


def test_environs_checks_its_arguments_when_drawn_not_when_called() -> None:
    strategy = environs(42)  # type: ignore[arg-type]
    with pytest.raises(InvalidArgument, match=r"cascade=42 must be a pytest_grpc_deadlines\.Cascade"):
        draw_once(strategy)


def test_environs_checks_include_invalid_when_drawn() -> None:
    strategy = environs(include_invalid="yes")  # type: ignore[arg-type]
    with pytest.raises(InvalidArgument, match="include_invalid='yes' must be a bool"):
        draw_once(strategy)


# setting_texts()


@FEW
@given(setting_texts(DAGSTER["max_rx_bytes"]))
def test_setting_texts_for_byte_limits_stay_in_grpc_range(text: str) -> None:
    resolved = DAGSTER.resolve({"DAGSTER_GRPC_MAX_RX_BYTES": text})
    assert not check(resolved) or all(v.severity == "warning" for v in check(resolved))


def test_setting_texts_checks_its_arguments_when_drawn_not_when_called() -> None:
    strategy = setting_texts("sensor")  # type: ignore[arg-type]
    with pytest.raises(InvalidArgument, match=r"setting='sensor' must be a pytest_grpc_deadlines\.Setting"):
        draw_once(strategy)


# assert_cascade_conforms


def test_conformance_passes_for_dagsters_resolvers() -> None:
    assert_cascade_conforms(DAGSTER, RESOLVERS, max_examples=100)


def test_conformance_passes_for_some_of_the_settings() -> None:
    assert_cascade_conforms(DAGSTER, {"sensor": RESOLVERS["sensor"]}, max_examples=20)


def grace_without_sensor() -> int:
    """A grace rule that forgets the sensor timeout."""
    env_set = os.getenv(GRACE)
    if env_set:
        return int(env_set)
    return max(default_grpc_timeout(), default_schedule_grpc_timeout())


def sensor_parsing_empty_text() -> int:
    """A sensor rule that parses "" instead of treating it as unset."""
    env_set = os.getenv(SENSOR)
    if env_set is not None:
        return int(env_set)
    return default_grpc_timeout()


def test_conformance_fails_for_a_grace_rule_that_forgets_sensor() -> None:
    resolvers = {**RESOLVERS, "grace": grace_without_sensor}
    with pytest.raises(AssertionError) as info:
        assert_cascade_conforms(
            TIMEOUTS, {name: resolvers[name] for name in TIMEOUTS.names}, max_examples=500
        )
    message = str(info.value)
    assert "the dagster cascade and the resolvers disagree for environment {" in message
    assert f"'{SENSOR}': " in message
    assert "\n  grace: resolver gave value " in message


def test_conformance_fails_for_a_rule_that_parses_the_empty_string() -> None:
    resolvers = {**RESOLVERS, "sensor": sensor_parsing_empty_text}
    with pytest.raises(AssertionError) as info:
        assert_cascade_conforms(
            TIMEOUTS, {name: resolvers[name] for name in TIMEOUTS.names}, max_examples=500
        )
    # Shrinking usually ends at {SENSOR: ''} alone, but under load it may stop earlier: any
    # counterexample has the sensor variable empty, which the resolver refuses and the model
    # reads as unset.
    message = str(info.value)
    assert f"'{SENSOR}': ''" in message
    error = repr("ValueError: invalid literal for int() with base 10: ''")
    assert re.search(rf"sensor: resolver gave error {re.escape(error)}, model gave value \d+", message)


def test_conformance_restores_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(SENSOR, "7")
    monkeypatch.delenv(GRACE, raising=False)
    assert_cascade_conforms(DAGSTER, RESOLVERS, max_examples=20)
    assert os.environ[SENSOR] == "7"
    assert GRACE not in os.environ


@pytest.mark.parametrize(
    ("cascade", "resolvers", "message"),
    [
        (
            DAGSTER,
            {"snesor": default_grpc_timeout},
            r"resolvers name unknown settings \['snesor'\]; the dagster cascade has: default, ",
        ),
        (DAGSTER, {"sensor": 60}, r"resolvers for \['sensor'\] are not callable"),
        (DAGSTER, {}, "must be a non-empty mapping"),
        (DAGSTER, [default_grpc_timeout], "must be a non-empty mapping"),
        ("dagster", RESOLVERS, "cascade='dagster' must be a pytest_grpc_deadlines.Cascade"),
    ],
)
def test_conformance_refuses_bad_arguments(cascade: object, resolvers: object, message: str) -> None:
    with pytest.raises(InvalidArgument, match=message):
        assert_cascade_conforms(cascade, resolvers)  # type: ignore[arg-type]


@pytest.mark.parametrize("max_examples", [0, -1, True, 1.5])
def test_conformance_refuses_a_bad_max_examples(max_examples: object) -> None:
    resolvers: dict[str, Callable[[], object]] = {"sensor": RESOLVERS["sensor"]}
    with pytest.raises(InvalidArgument, match="must be a positive int"):
        assert_cascade_conforms(DAGSTER, resolvers, max_examples=max_examples)  # type: ignore[arg-type]
