"""Properties of the DAGSTER cascade over generated environments (Hypothesis)."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from pytest_grpc_deadlines import DAGSTER, Resolved, check
from pytest_grpc_deadlines.strategies import environs

REPOSITORY = "DAGSTER_REPOSITORY_GRPC_TIMEOUT_SECONDS"
GRACE = "DAGSTER_GRPC_SHUTDOWN_GRACE_PERIOD"

PROPERTY = settings(max_examples=150, deadline=None, database=None)

#: Environments with anything in the cascade's variables, and some other variables beside them.
ANY_TEXT_ENVIRONS = st.dictionaries(
    st.sampled_from(DAGSTER.env_vars) | st.sampled_from(["PATH", "HOME"]),
    st.text(max_size=8),
    max_size=9,
)
#: Environments over a few telling texts, so that combinations (an explicit grace beside an
#: invalid sensor, say) come up often.
FEW_TEXT_ENVIRONS = st.dictionaries(
    st.sampled_from(DAGSTER.env_vars),
    st.sampled_from(["", " ", "abc", "0", "-1", "5", "400", "2147483648"]),
)
ENVIRONS = environs(include_invalid=True) | ANY_TEXT_ENVIRONS | FEW_TEXT_ENVIRONS


def unset(variable: str) -> st.SearchStrategy[dict[str, str]]:
    """Environments in which ``variable`` is absent or empty (so its default applies)."""

    def clear(environ: dict[str, str], empty: bool) -> dict[str, str]:
        cleared = {k: v for k, v in environ.items() if k != variable}
        if empty:
            cleared[variable] = ""
        return cleared

    return st.builds(clear, environs(include_invalid=True), st.booleans())


def snapshot(resolved: Resolved) -> tuple[dict[str, object], dict[str, str], dict[str, str]]:
    """Everything a Resolved tells: values, error messages and sources."""
    names = list(resolved.cascade.names)
    values = {n: resolved[n] for n in names if n not in resolved.errors}
    errors = {n: str(e) for n, e in resolved.errors.items()}
    sources = {n: resolved.source(n) for n in names}
    return values, errors, sources


@PROPERTY
@given(unset(REPOSITORY))
def test_unset_repository_is_at_least_180_and_at_least_default(environ: dict[str, str]) -> None:
    resolved = DAGSTER.resolve(environ)
    if "default" in resolved.errors:
        assert "repository" in resolved.errors
        return
    repository = resolved.repository
    default = resolved.default
    assert isinstance(repository, int)
    assert isinstance(default, int)
    assert repository >= 180
    assert repository >= default
    assert repository == max(180, default)


@PROPERTY
@given(unset(GRACE))
def test_unset_grace_is_the_largest_of_default_schedule_and_sensor(environ: dict[str, str]) -> None:
    resolved = DAGSTER.resolve(environ)
    terms = ("default", "schedule", "sensor")
    if any(t in resolved.errors for t in terms):
        assert "grace" in resolved.errors
        return
    grace = resolved.grace
    assert isinstance(grace, int)
    term_values = [resolved[t] for t in terms]
    assert all(isinstance(v, int) and grace >= v for v in term_values)
    assert grace in term_values


@PROPERTY
@given(ENVIRONS)
def test_resolve_is_deterministic_and_never_raises(environ: dict[str, str]) -> None:
    first = DAGSTER.resolve(environ)
    second = DAGSTER.resolve(dict(environ))
    assert first == second
    assert snapshot(first) == snapshot(second)


@PROPERTY
@given(ENVIRONS)
def test_every_setting_is_either_a_value_or_an_error(environ: dict[str, str]) -> None:
    resolved = DAGSTER.resolve(environ)
    for name in resolved:
        if name in resolved.errors:
            assert resolved.errors[name].setting == name
            continue
        value = resolved[name]
        if name == "log_exceptions":
            assert isinstance(value, bool)
        elif name in ("socket", "host", "code_server_socket", "code_server_host"):
            assert isinstance(value, str) or (value is None and name.endswith("socket"))
        elif name in ("port", "max_workers", "code_server_port", "code_server_max_workers"):
            assert value is None or (isinstance(value, int) and not isinstance(value, bool))
        else:
            assert isinstance(value, int)
            assert not isinstance(value, bool)


@PROPERTY
@given(ENVIRONS)
def test_environ_round_trips_through_resolve(environ: dict[str, str]) -> None:
    resolved = DAGSTER.resolve(environ)
    again = DAGSTER.resolve(resolved.environ())
    assert again == resolved
    assert snapshot(again) == snapshot(resolved)


@PROPERTY
@given(ENVIRONS, ANY_TEXT_ENVIRONS)
def test_environ_with_base_round_trips_whatever_the_base_holds(
    environ: dict[str, str], base: dict[str, str]
) -> None:
    resolved = DAGSTER.resolve(environ)
    assert snapshot(DAGSTER.resolve(resolved.environ(base))) == snapshot(resolved)


@PROPERTY
@given(ENVIRONS)
def test_check_never_raises_and_reports_every_error(environ: dict[str, str]) -> None:
    resolved = DAGSTER.resolve(environ)
    violations = check(resolved)
    assert all(v.severity in ("error", "warning") and v.settings and v.message for v in violations)
    flagged = {v.settings[0] for v in violations if v.severity == "error"}
    assert set(resolved.errors) <= flagged
