"""A built-in rule for float seconds, and check() judging floats as it judges ints."""

from __future__ import annotations

import os

import pytest

from pytest_grpc_deadlines import Cascade, CascadeError, Seconds, Setting, assert_cascade_conforms, check

CASCADE = Cascade(
    "exporter",
    (
        Setting("timeout", "PGD_EXPORT_TIMEOUT", 10.0, rule=Seconds(), kind="seconds"),
        Setting("grace", "PGD_EXPORT_GRACE", 5.0, rule=Seconds(), kind="grace"),
    ),
)


def test_seconds_are_read_as_float_reads_them() -> None:
    resolved = CASCADE.resolve({"PGD_EXPORT_TIMEOUT": " 1.5 ", "PGD_EXPORT_GRACE": ""})
    assert (resolved.timeout, resolved.grace) == (1.5, 5.0)  # "" counts as unset
    assert resolved.source("grace") == "default: 5.0 (PGD_EXPORT_GRACE='' counts as unset)"


def test_text_float_refuses_is_an_error_naming_the_reader() -> None:
    resolved = CASCADE.resolve({"PGD_EXPORT_TIMEOUT": "30s"})
    with pytest.raises(
        CascadeError, match=r"PGD_EXPORT_TIMEOUT='30s' .* is not a number of seconds, as float\(\) reads it"
    ):
        resolved.timeout  # noqa: B018


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("0", "timeout 0: every call with this timeout fails with DEADLINE_EXCEEDED"),
        ("-1", "timeout -1 < 0: every call with this timeout fails at once"),
        ("1e11", "timeout 1e+11: grpc cannot represent a deadline that far"),
        ("inf", "timeout inf: grpc cannot represent a deadline that far"),
        ("nan", "timeout nan: not a number of seconds"),
    ],
)
def test_check_judges_float_timeouts_as_it_judges_ints(text: str, message: str) -> None:
    messages = [v.message for v in check(CASCADE.resolve({"PGD_EXPORT_TIMEOUT": text}))]
    assert any(m.startswith(message) for m in messages), messages


def test_check_judges_a_float_grace() -> None:
    [found] = check(CASCADE.resolve({"PGD_EXPORT_GRACE": "0.0"}))
    assert found.message.startswith("grace 0: a stopping server does not wait")


@pytest.mark.parametrize(
    ("value", "text"), [(1.5, "1.5"), (30, "30.0"), (float("inf"), "inf"), ("verbatim", "verbatim")]
)
def test_a_marker_value_is_written_so_float_reads_it_back(value: object, text: str) -> None:
    assert Seconds().write(value) == text


@pytest.mark.parametrize(
    ("value", "message"), [(True, "True is a bool"), (10**400, r"is beyond float\(\)'s range")]
)
def test_a_marker_value_float_cannot_take_is_refused(value: object, message: str) -> None:
    with pytest.raises((TypeError, ValueError), match=message):
        Seconds().write(value)


def _read_timeout() -> object:
    text = os.getenv("PGD_EXPORT_TIMEOUT")
    return float(text) if text else 10.0


def test_a_float_reader_conforms_to_the_seconds_rule() -> None:
    assert_cascade_conforms(CASCADE, {"timeout": _read_timeout}, max_examples=200)
