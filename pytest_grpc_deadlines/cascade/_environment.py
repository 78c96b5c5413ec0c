"""Putting a test's settings into ``os.environ`` (and bound module attributes), then undoing it."""

from __future__ import annotations

import os
import sys
import warnings
from collections.abc import MutableMapping, Sequence
from dataclasses import dataclass, field

from .._checks import write_environ
from .._errors import GrpcDeadlinesWarning
from ._cascade import Cascade, Resolved
from ._overrides import Layer

__all__ = ["AppliedSettings", "Plan", "plan"]

_MISSING = object()


@dataclass(frozen=True)
class Plan:
    """The cascade variables a test runs with: env var -> text (None = removed), and origins."""

    cascade: Cascade
    target: dict[str, str | None]
    origins: dict[str, str]

    def resolve(self, environ: MutableMapping[str, str] | None = None) -> Resolved:
        return self.cascade.resolve(os.environ if environ is None else environ, self.origins)


def plan(cascade: Cascade, layers: Sequence[Layer], ambient: MutableMapping[str, str]) -> Plan:
    """Merge ``layers`` (lowest priority first) over a clean cascade, or over ``ambient``.

    The ambient environment counts only when the highest layer that says anything about
    ``inherit`` says True.
    """
    inherit = False
    for layer in layers:
        if layer.inherit is not None:
            inherit = layer.inherit
    target: dict[str, str | None] = {}
    origins: dict[str, str] = {}
    for setting in cascade.settings:
        target[setting.env_var] = ambient.get(setting.env_var) if inherit else None
    for layer in layers:
        for name, text in layer.values.items():
            env_var = cascade[name].env_var
            target[env_var] = text
            if text is None:
                origins.pop(env_var, None)
            else:
                origins[env_var] = layer.origin
    return Plan(cascade, target, origins)


@dataclass
class AppliedSettings:
    """Puts a :class:`Plan` into ``environ`` and bound attributes; :meth:`restore` undoes both."""

    plan: Plan
    environ: MutableMapping[str, str] = field(default_factory=lambda: os.environ)
    _saved_env: dict[str, str | None] = field(default_factory=dict)
    _saved_attrs: list[tuple[object, str, object]] = field(default_factory=list)

    def apply(self) -> Resolved:
        for env_var in self.plan.cascade.env_vars:
            self._saved_env[env_var] = self.environ.get(env_var)
        write_environ(self.environ, self.plan.target)
        resolved = self.plan.resolve(self.environ)
        self._patch_bindings(resolved)
        return resolved

    def _patch_bindings(self, resolved: Resolved) -> None:
        for binding in self.plan.cascade.bindings:
            module = sys.modules.get(binding.module)
            if module is None or binding.setting in resolved.errors:
                continue
            old = getattr(module, binding.attribute, _MISSING)
            new = resolved[binding.setting]
            self._saved_attrs.append((module, binding.attribute, old))
            setattr(module, binding.attribute, new)
            if binding.captured_by and old is not _MISSING and old != new:
                warnings.warn(
                    GrpcDeadlinesWarning(
                        f"{binding.setting}={new!r} reaches {binding.module}.{binding.attribute} "
                        f"but not {binding.captured_by}: {binding.module} was imported before "
                        f"this test, when the value was {old!r}, and those methods keep it. "
                        "Pass the timeout explicitly in the code under test, or run it in a "
                        "subprocess with env=grpc_timeouts.environ(os.environ)."
                    ),
                    stacklevel=2,
                )

    def restore(self) -> None:
        while self._saved_attrs:
            module, attribute, old = self._saved_attrs.pop()
            if old is _MISSING:
                if hasattr(module, attribute):
                    delattr(module, attribute)
            else:
                setattr(module, attribute, old)
        write_environ(self.environ, self._saved_env)
        self._saved_env.clear()
