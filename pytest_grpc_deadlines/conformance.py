"""``assert_cascade_conforms``: a project's real resolver functions against the cascade model."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager

from .cascade import Cascade, Resolved

__all__ = ["assert_cascade_conforms"]


@contextmanager
def _environment(cascade: Cascade, environ: Mapping[str, str]) -> Iterator[None]:
    saved = {env_var: os.environ.get(env_var) for env_var in cascade.env_vars}
    try:
        for env_var in cascade.env_vars:
            os.environ.pop(env_var, None)
        os.environ.update(environ)
        yield
    finally:
        for env_var, text in saved.items():
            if text is None:
                os.environ.pop(env_var, None)
            else:
                os.environ[env_var] = text


def _outcome(call: Callable[[], object]) -> tuple[str, object]:
    try:
        return ("value", call())
    except Exception as exc:  # the resolver's own failure is what is compared
        return ("error", f"{type(exc).__name__}: {exc}")


def _model(resolved: Resolved, name: str) -> tuple[str, object]:
    if name in resolved.errors:
        return ("error", str(resolved.errors[name]))
    return ("value", resolved[name])


def mismatches(
    cascade: Cascade, resolvers: Mapping[str, Callable[[], object]], environ: Mapping[str, str]
) -> list[str]:
    """How the resolvers disagree with the model in one environment (empty when they agree)."""
    resolved = cascade.resolve(environ)
    out: list[str] = []
    with _environment(cascade, environ):
        for name, resolver in resolvers.items():
            real = _outcome(resolver)
            model = _model(resolved, name)
            if real[0] != model[0] or (real[0] == "value" and real[1] != model[1]):
                out.append(
                    f"{name}: resolver gave {real[0]} {real[1]!r}, model gave {model[0]} "
                    f"{model[1]!r} (source: {resolved.source(name)})"
                )
    return out


def assert_cascade_conforms(
    cascade: Cascade,
    resolvers: Mapping[str, Callable[[], object]],
    *,
    max_examples: int = 200,
    include_invalid: bool = True,
) -> None:
    """Check that ``resolvers`` (setting name -> zero-argument function reading ``os.environ``)
    give the same values, and fail in the same places, as ``cascade`` for generated environments.

    Each environment is set in ``os.environ`` for the call and restored after it. On a mismatch
    Hypothesis shrinks to the smallest environment and an ``AssertionError`` names it.
    """
    from hypothesis import HealthCheck, given, settings
    from hypothesis.errors import InvalidArgument

    from .strategies import environs

    if not isinstance(cascade, Cascade):
        raise InvalidArgument(f"cascade={cascade!r} must be a pytest_grpc_deadlines.Cascade")
    if not isinstance(resolvers, Mapping) or not resolvers:
        raise InvalidArgument(
            f"resolvers={resolvers!r} must be a non-empty mapping of setting name to a zero-argument function"
        )
    unknown = [name for name in resolvers if name not in cascade.names]
    if unknown:
        raise InvalidArgument(
            f"resolvers name unknown settings {unknown}; the {cascade.name} cascade has: "
            f"{', '.join(cascade.names)}"
        )
    not_callable = [name for name, fn in resolvers.items() if not callable(fn)]
    if not_callable:
        raise InvalidArgument(f"resolvers for {not_callable} are not callable")
    if not isinstance(max_examples, int) or isinstance(max_examples, bool) or max_examples < 1:
        raise InvalidArgument(f"max_examples={max_examples!r} must be a positive int")

    @settings(
        max_examples=max_examples,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(environs(cascade, include_invalid=include_invalid))
    def conforms(environ: dict[str, str]) -> None:
        found = mismatches(cascade, resolvers, environ)
        if found:
            raise AssertionError(
                f"the {cascade.name} cascade and the resolvers disagree for environment "
                f"{environ!r}:\n  " + "\n  ".join(found)
            )

    conforms()
