"""A project's real resolver functions against the cascade model, in one environment.

:func:`~pytest_grpc_deadlines.strategies.assert_cascade_conforms` runs this over generated
environments.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping

from .._checks import scoped_environ
from ._cascade import Cascade, Resolved

__all__ = ["mismatches"]


def _outcome(call: Callable[[], object]) -> tuple[str, object]:
    try:
        return ("value", call())
    except Exception as exc:  # the resolver's own failure is what is compared
        return ("error", f"{type(exc).__name__}: {exc}")


def _same(real: object, model: object) -> bool:
    """Equal, NaN included (float("nan") is what both give for "nan")."""
    if isinstance(real, float) and isinstance(model, float) and math.isnan(real) and math.isnan(model):
        return True
    return real == model


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
    with scoped_environ(cascade.env_vars, environ):
        for name, resolver in resolvers.items():
            real = _outcome(resolver)
            model = _model(resolved, name)
            if real[0] != model[0] or (real[0] == "value" and not _same(real[1], model[1])):
                out.append(
                    f"{name}: resolver gave {real[0]} {real[1]!r}, model gave {model[0]} "
                    f"{model[1]!r} (source: {resolved.source(name)})"
                )
    return out
