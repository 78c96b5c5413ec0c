"""Several cascades in one run: one cascade whose settings are theirs, each resolved by its own.

A setting keeps its name unless another of the cascades has a setting of that name; then each
of them is called ``<cascade>_<setting>`` (``dagster_timeout``, ``mine_timeout``), so that no
marker keyword, ``--grpc-timeout`` name or ``grpc_timeouts`` attribute means two things. Two
cascades that read the same variable cannot be combined: a marker could not set it for one and
not the other.
"""

from __future__ import annotations

import dataclasses
import re
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from .._errors import ArgumentError, CascadeError
from ._cascade import Cascade, Check, Finding, Process, Resolved, Setting
from ._rules import Max, Ref

__all__ = ["CombinedCascade", "combine"]


@dataclass(frozen=True)
class CombinedCascade(Cascade):
    """Cascades resolved side by side (see :func:`combine`)."""

    #: the cascades, each with its settings under their names here (so that its errors and
    #: sources say those names), for resolving
    parts: tuple[Cascade, ...] = ()
    #: (a part's own setting name, the name here), in cascade order
    renames: tuple[tuple[str, str], ...] = ()

    def resolve(self, environ: Mapping[str, str], origins: Mapping[str, str] | None = None) -> Resolved:
        values: dict[str, object] = {}
        errors: dict[str, CascadeError] = {}
        raws: dict[str, str | None] = {}
        explicit: dict[str, bool] = {}
        sources: dict[str, str] = {}
        for part in (part.resolve(environ, origins) for part in self.parts):
            for name in part.cascade.names:
                if name in part.errors:
                    errors[name] = part.errors[name]
                else:
                    values[name] = part[name]
                raws[name] = part.raw(name)
                explicit[name] = part.is_explicit(name)
                sources[name] = part.source(name)
        return Resolved(self, values, errors, raws, explicit, sources)

    def ambiguous(self, name: str) -> tuple[str, ...]:
        """The names here of the settings that the parts call ``name``, when more than one has it."""
        found = tuple(here for original, here in self.renames if original == name and here != name)
        return found if len(found) > 1 else ()


def _prefix(cascade: Cascade) -> str:
    return re.sub(r"\W", "_", cascade.name)


def _part_checks(part: Cascade, rename: Mapping[str, str]) -> Check:
    def run(resolved: Resolved) -> list[Finding]:
        # the part's own checks over the part's own resolution of the same variables
        own = part.resolve(resolved.environ())
        out: list[Finding] = []
        for part_check in part.checks:
            for severity, settings, message in part_check(own):
                out.append((severity, tuple(rename.get(s, s) for s in settings), message))
        return out

    return run


def _renamed_default(default: object, rename: Mapping[str, str]) -> object:
    if isinstance(default, Ref):
        return Ref(rename[default.name])
    if isinstance(default, Max):
        return Max(*(rename[t] if isinstance(t, str) else t for t in default.terms))
    return default


def combine(cascades: Sequence[Cascade]) -> Cascade:
    """One cascade for ``cascades`` (itself when there is one); ``ArgumentError`` when two are
    the same or read the same variable."""
    if not cascades:
        raise ArgumentError("combine() needs at least one cascade")
    if len(cascades) == 1:
        return cascades[0]
    names = Counter(c.name for c in cascades)
    twice = [name for name, count in names.items() if count > 1]
    if twice:
        raise ArgumentError(f"the {twice[0]} cascade is named twice; name each cascade once")
    readers: dict[str, str] = {}
    for cascade in cascades:
        for setting in cascade:
            if setting.env_var in readers:
                raise ArgumentError(
                    f"{setting.env_var} is read by both the {readers[setting.env_var]} and the "
                    f"{cascade.name} cascades: a test could not set it for one and not the other; "
                    "use one of them (or one cascade that models both readers)"
                )
            readers[setting.env_var] = cascade.name
    counts = Counter(s.name for c in cascades for s in c)
    settings: list[Setting] = []
    parts: list[Cascade] = []
    owners: list[tuple[str, str, str]] = []  # (cascade, its setting's name, the name here)
    bindings = []
    methods: list[tuple[str, str]] = []
    processes: list[Process] = []
    checks: list[Check] = []
    process_counts = Counter(p.name for c in cascades for p in c.processes)
    for cascade in cascades:
        rename = {s.name: s.name if counts[s.name] == 1 else f"{_prefix(cascade)}_{s.name}" for s in cascade}
        own = [
            dataclasses.replace(
                setting, name=rename[setting.name], default=_renamed_default(setting.default, rename)
            )
            for setting in cascade
        ]
        settings += own
        owners += [(cascade.name, setting.name, rename[setting.name]) for setting in cascade]
        # resolved under the names here; its checks run on the cascade itself (_part_checks)
        parts.append(
            dataclasses.replace(
                cascade, settings=tuple(own), bindings=(), checks=(), processes=(), methods=()
            )
        )
        bindings += [dataclasses.replace(b, setting=rename[b.setting]) for b in cascade.bindings]
        methods += [(pattern, rename[setting]) for pattern, setting in cascade.method_settings]
        for process in cascade.processes:
            name = process.name if process_counts[process.name] == 1 else f"{cascade.name}.{process.name}"
            processes.append(Process(name, process.description, tuple(rename[s] for s in process.settings)))
        if cascade.checks:
            checks.append(_part_checks(cascade, rename))
    taken: dict[str, tuple[str, str]] = {}
    for owner, original, here in owners:
        entry = (owner, original)
        if here in taken:
            # one of the two was renamed because two cascades share its name
            (renamed, was), (other, its) = sorted((taken[here], entry), key=lambda e: e[1] == here)
            raise ArgumentError(
                f"the {renamed} cascade's {was!r} is called {here!r} here (another listed cascade "
                f"has a setting {was!r}), and so is the {other} cascade's {its!r}; rename one of them"
            )
        taken[here] = entry
    return CombinedCascade(
        name="+".join(c.name for c in cascades),
        settings=tuple(settings),
        bindings=tuple(bindings),
        checks=tuple(checks),
        processes=tuple(processes),
        methods=tuple(methods),
        parts=tuple(parts),
        renames=tuple((original, here) for _, original, here in owners),
    )
