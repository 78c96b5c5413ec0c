"""Putting a test's settings into ``os.environ`` (and bound module attributes), then undoing it."""

from __future__ import annotations

import os
import sys
from collections.abc import MutableMapping, Sequence
from dataclasses import dataclass, field

from .._checks import write_environ
from ._bindings import MISSING, Patches, captures
from ._cascade import Binding, Cascade, Resolved
from ._overrides import Layer

__all__ = ["AppliedSettings", "Plan", "plan"]


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
    """Puts a :class:`Plan` into ``environ`` and into every copy an imported module holds (bound
    attributes and the default arguments that name them); :meth:`restore` undoes both.

    A bound module first imported while the settings are in force took the test's values; on
    :meth:`restore` its copies are set to what the environment outside the test gives, as a
    fresh import there would have. ``notices`` says what the settings cannot reach.
    """

    plan: Plan
    environ: MutableMapping[str, str] = field(default_factory=lambda: os.environ)
    notices: list[str] = field(default_factory=list)
    _saved_env: dict[str, str | None] = field(default_factory=dict)
    _patches: Patches = field(default_factory=Patches)
    _absent: set[str] = field(default_factory=set)

    def apply(self) -> Resolved:
        for env_var in self.plan.cascade.env_vars:
            self._saved_env[env_var] = self.environ.get(env_var)
        write_environ(self.environ, self.plan.target)
        resolved = self.plan.resolve(self.environ)
        self._absent = {b.module for b in self.plan.cascade.bindings if b.module not in sys.modules}
        self.notices = _follow(self.plan.cascade, resolved, self._patches, explain=True)
        return resolved

    def restore(self) -> None:
        self._patches.undo()
        write_environ(self.environ, self._saved_env)
        self._saved_env.clear()
        imported = {module for module in self._absent if module in sys.modules}
        if imported:
            # Imported during the test, with its values: set to the outside values for good.
            ambient = self.plan.cascade.resolve(self.environ)
            bindings = tuple(b for b in self.plan.cascade.bindings if b.module in imported)
            _follow(self.plan.cascade, ambient, Patches(), explain=False, bindings=bindings)
        self._absent = set()


def _follow(
    cascade: Cascade,
    resolved: Resolved,
    patches: Patches,
    *,
    explain: bool,
    bindings: tuple[Binding, ...] | None = None,
) -> list[str]:
    """Set every copy the imported modules hold to ``resolved``'s values; what cannot be set,
    in words (when ``explain``)."""
    notices: list[str] = []
    by_module: dict[str, list[Binding]] = {}
    for binding in cascade.bindings if bindings is None else bindings:
        if binding.module in sys.modules and binding.setting not in resolved.errors:
            by_module.setdefault(binding.module, []).append(binding)
    for name, module_bindings in by_module.items():
        module = sys.modules[name]
        olds: dict[str, object] = {}
        news: dict[str, object] = {}
        for binding in module_bindings:
            new = resolved[binding.setting]
            if binding.convert is not None:
                new = binding.convert(new)
            old = patches.set_attribute(module, binding.attribute, new)
            olds[binding.attribute], news[binding.attribute] = old, new
            if explain and binding.captured_by and old is not MISSING and old != new:
                notices.append(_kept(binding.setting, new, name, binding.attribute, old, binding.captured_by))
        settings = {b.attribute: b.setting for b in module_bindings}
        for capture in captures(module, frozenset(olds)):
            old, new = olds[capture.name], news[capture.name]
            if old is MISSING or old == new:
                continue
            if capture.patchable and patches.set_default(capture, old, new):
                continue
            if explain:
                reason = capture.reason or "its default is no longer the module's value"
                notices.append(
                    _kept(settings[capture.name], new, name, capture.name, old, f"{capture} ({reason})")
                )
    return notices


def _kept(setting: str, new: object, module: str, attribute: str, old: object, code: str) -> str:
    return (
        f"{setting}={new!r} reaches {module}.{attribute} but not {code}: {module} was imported "
        f"before this test, when the value was {old!r}, and those methods keep it. Pass the "
        "timeout explicitly in the code under test, or run it in a subprocess with "
        "env=grpc_timeouts.environ(os.environ)."
    )
