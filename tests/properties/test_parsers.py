"""Bad input: the marker, option and ini parsers either work or raise the documented error.

Each parser is documented to raise :class:`OverrideError` (which the plugin turns into a test
failure or a usage error) for anything it cannot use. Hypothesis throws arbitrary keyword names,
values of every kind and text at them; any other exception is a bug. Values that parse must be
texts an environment variable can hold, for the cascade's own settings.
"""

from __future__ import annotations

import math
import os
import sys
from collections.abc import Callable, Mapping
from fractions import Fraction
from typing import TypeVar

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from pytest_grpc_deadlines import DAGSTER, OverrideError
from pytest_grpc_deadlines.calls._audit import AuditPolicy, parse_ini_policy, parse_marker_policy
from pytest_grpc_deadlines.cascade._environment import AppliedSettings, plan
from pytest_grpc_deadlines.cascade._overrides import Layer, parse_assignments, parse_marker

pytest_plugins = ["pytester"]

T = TypeVar("T")

FUZZ = settings(max_examples=200, deadline=None, database=None)

#: An int whose repr raises ValueError (more than 4300 digits), in messages too. Not drawn by
#: the strategies: Hypothesis (6.100) cannot print it either.
HUGE = 10**5000
ORIGIN = "marker on test_x"
NAMES = DAGSTER.names

KEYWORDS = st.one_of(st.sampled_from((*NAMES, "inherit", "max_seconds")), st.text(max_size=12))
TEXTS = st.one_of(
    st.text(max_size=20),
    st.sampled_from(("", " ", "7", " 7 ", "+5", "1_000", "٣", "-1", "1.5", "1e3", "nan", "inf")),
    st.sampled_from(("1\x00", "\x00", "\ud800", "a\udcffb", "9" * 5000)),
)
VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(),  # nan and both infinities included
    st.sampled_from((math.nan, math.inf, -math.inf, 0.0, -0.0, 1.0, 1.5, 1e300)),
    TEXTS,
    st.binary(max_size=8),
    st.lists(st.integers(), max_size=3),
    st.tuples(st.integers()),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
    st.fractions(),
    st.complex_numbers(),
    st.just(Fraction(3, 1)),
)


def _outcome(parse: Callable[[], T]) -> T | OverrideError:
    """What ``parse()`` returns, or the OverrideError it raises (any other exception escapes)."""
    try:
        return parse()
    except OverrideError as exc:
        return exc


def _environ_text(text: str) -> bool:
    """Whether os.environ can hold ``text`` (its own rules, checked independently)."""
    try:
        text.encode(sys.getfilesystemencoding(), "surrogateescape")
    except UnicodeError:
        return False
    return "\x00" not in text


def _applies_and_restores(layer: Layer) -> None:
    """The plugin's own path for a test's settings: into os.environ, then back out."""
    before = {v: os.environ.get(v) for v in DAGSTER.env_vars}
    applied = AppliedSettings(plan(DAGSTER, [layer], os.environ))
    try:
        applied.apply()
        for name, text in layer.values.items():
            assert os.environ.get(DAGSTER[name].env_var) == text
    finally:
        applied.restore()
    assert {v: os.environ.get(v) for v in DAGSTER.env_vars} == before


@FUZZ
@given(
    args=st.lists(VALUES, max_size=2).map(tuple),
    kwargs=st.dictionaries(KEYWORDS, VALUES, max_size=5),
)
@example(args=(), kwargs={"sensor": "1\x00"})
@example(args=(), kwargs={"host": "\ud800"})
@example(args=(), kwargs={"default": math.inf, "grace": math.nan})
def test_parse_marker_returns_a_layer_or_raises_override_error(
    args: tuple[object, ...], kwargs: dict[str, object]
) -> None:
    layer = _outcome(lambda: parse_marker(DAGSTER, args, kwargs, ORIGIN))
    if isinstance(layer, OverrideError):
        assert str(layer).startswith("@pytest.mark.grpc_timeouts on test_x: ")
        return
    assert not args
    assert layer.origin == ORIGIN
    assert set(layer.values) <= set(NAMES)
    assert set(layer.values) | {"inherit"} >= set(kwargs) - {"inherit"}
    assert layer.inherit is None or isinstance(layer.inherit, bool)
    for name, text in layer.values.items():
        assert text is None or (isinstance(text, str) and _environ_text(text))
        if isinstance(kwargs[name], str):
            assert text == kwargs[name]  # a str is written verbatim
    _applies_and_restores(layer)


def test_an_int_too_long_to_print_is_refused_with_the_documented_error() -> None:
    for args, kwargs in (((), {"sensor": HUGE}), ((HUGE,), {}), ((), {"inherit": HUGE})):
        with pytest.raises(OverrideError, match=r"^@pytest\.mark\.grpc_timeouts on test_x: .*<an int of"):
            parse_marker(DAGSTER, args, kwargs, ORIGIN)
    for args, kwargs in (((), {"max_seconds": HUGE}), ((HUGE,), {}), ((True,), {"max_seconds": -HUGE})):
        with pytest.raises(OverrideError, match=r"^@pytest\.mark\.grpc_require_deadlines on test_x: "):
            parse_marker_policy(AuditPolicy(), args, kwargs, "on test_x")


ENTRIES = st.lists(
    st.one_of(
        st.text(max_size=20),
        st.builds(lambda name, text: f"{name}={text}", st.sampled_from(NAMES), TEXTS),
        st.builds(lambda name, text: f" {name} = {text} ", st.sampled_from(NAMES), TEXTS),
    ),
    max_size=4,
)


@FUZZ
@given(entries=ENTRIES)
@example(entries=["host=a\x00b"])
@example(entries=["host=\ud800"])
@example(entries=["sensor=" + "9" * 5000])
@example(entries=["=", "sensor", " = 1"])
def test_parse_assignments_returns_a_layer_or_raises_override_error(entries: list[str]) -> None:
    layer = _outcome(lambda: parse_assignments(DAGSTER, entries, "--grpc-timeout"))
    if isinstance(layer, OverrideError):
        assert str(layer).startswith("--grpc-timeout: ")
        return
    assert (layer.origin, layer.inherit) == ("--grpc-timeout", None)
    assert set(layer.values) <= set(NAMES)
    for name, text in layer.values.items():
        if text is not None:
            assert isinstance(text, str)
            assert _environ_text(text)
            assert text == text.strip()
            DAGSTER[name].rule.parse(text)  # it was checked with the setting's own parser
    _applies_and_restores(layer)


def _check_policy(policy: AuditPolicy) -> None:
    assert policy.mode in ("off", "fail", "warn")
    assert policy.max_seconds is None or (math.isfinite(policy.max_seconds) and policy.max_seconds > 0)
    assert all(isinstance(p, str) and p and p == p.strip() for p in policy.exempt)


@FUZZ
@given(mode=TEXTS, max_deadline=TEXTS, exempt=st.lists(TEXTS, max_size=3))
@example(mode="TRUE", max_deadline="1e999", exempt=[])
@example(mode="warn", max_deadline="9" * 5000, exempt=[" a/* ", ""])
def test_parse_ini_policy_returns_a_policy_or_raises_override_error(
    mode: str, max_deadline: str, exempt: list[str]
) -> None:
    policy = _outcome(lambda: parse_ini_policy(mode, max_deadline, exempt))
    if isinstance(policy, OverrideError):
        assert str(policy).startswith(("ini grpc_require_deadlines: ", "ini grpc_max_deadline: "))
        return
    _check_policy(policy)


BASES = st.builds(
    AuditPolicy,
    mode=st.sampled_from(("off", "fail", "warn")),
    max_seconds=st.one_of(st.none(), st.floats(min_value=0.001, max_value=1e6)),
    exempt=st.lists(st.text(min_size=1, max_size=5).map(str.strip).filter(bool), max_size=2).map(tuple),
)


@FUZZ
@given(
    base=BASES,
    args=st.lists(VALUES, max_size=2).map(tuple),
    kwargs=st.dictionaries(KEYWORDS, VALUES, max_size=3),
)
@example(base=AuditPolicy(), args=(), kwargs={"max_seconds": 10**400})
@example(base=AuditPolicy(), args=(True,), kwargs={"max_seconds": "1e999"})
def test_parse_marker_policy_returns_a_policy_or_raises_override_error(
    base: AuditPolicy, args: tuple[object, ...], kwargs: Mapping[str, object]
) -> None:
    policy = _outcome(lambda: parse_marker_policy(base, args, kwargs, "on test_x"))
    if isinstance(policy, OverrideError):
        assert str(policy).startswith("@pytest.mark.grpc_require_deadlines on test_x: ")
        return
    _check_policy(policy)
    assert policy.exempt == base.exempt
    assert policy.mode == ("off" if args and args[0] is False else "fail")


@settings(
    max_examples=12,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(text=st.one_of(st.text(max_size=16), st.builds("{}={}".format, st.sampled_from(NAMES), TEXTS)))
@example(text="sensor=1")
@example(text="host=a\x00b")
@example(text="sensor=" + "9" * 5000)
@example(text="=")
def test_grpc_timeout_option_runs_or_is_a_usage_error(pytester: pytest.Pytester, text: str) -> None:
    pytester.makepyfile(
        """
        def test_resolves(grpc_timeouts):
            assert grpc_timeouts.cascade.name == "dagster"
        """
    )
    result = pytester.runpytest(
        "-p", "no:cacheprovider", "-p", "no:hypothesispytest", "-p", "no:asyncio", f"--grpc-timeout={text}"
    )
    output = "\n".join(result.outlines + result.errlines)
    assert result.ret in (pytest.ExitCode.OK, pytest.ExitCode.USAGE_ERROR), output
    assert "INTERNALERROR>" not in output
    assert "Traceback (most recent call last)" not in output
    if result.ret == pytest.ExitCode.USAGE_ERROR:
        assert "--grpc-timeout: " in output
    else:
        result.assert_outcomes(passed=1)
