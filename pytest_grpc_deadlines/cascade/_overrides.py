"""Parsing of the places a test's settings come from: markers, ``--grpc-timeout``, ini lines.

Pure functions with no pytest import: each raises :class:`OverrideError` with a message that
says what was wrong, where it came from and what is accepted.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from .._checks import shown
from .._errors import ArgumentError, OverrideError
from ._cascade import Cascade
from ._rules import PARSE_ERRORS

__all__ = [
    "Layer",
    "OverrideError",
    "load_cascade",
    "load_cascades",
    "parse_assignments",
    "parse_marker",
]


@dataclass(frozen=True)
class Layer:
    """Settings from one source, with that source's name ("marker on test_x")."""

    origin: str
    values: Mapping[str, str | None] = field(default_factory=dict)
    inherit: bool | None = None


def environ_problem(text: str) -> str | None:
    """Why ``text`` cannot be an environment variable's value, or None when it can.

    ``os.environ`` refuses a NUL character (ValueError) and a lone surrogate that the file
    system encoding cannot encode (UnicodeEncodeError) only when the test's settings are put in
    place; checked here, the error names the marker or option instead.
    """
    if "\x00" in text:
        return "contains a NUL character, which no environment variable can hold"
    try:
        os.fsencode(text)
    except UnicodeError:
        return "cannot be encoded for the environment (it holds a lone surrogate)"
    return None


def _accepted(cascade: Cascade, *, with_inherit: bool) -> str:
    names = list(cascade.names) + (["inherit"] if with_inherit else [])
    return ", ".join(names)


def parse_marker(
    cascade: Cascade, args: tuple[object, ...], kwargs: Mapping[str, object], origin: str
) -> Layer:
    """Read ``@pytest.mark.grpc_timeouts(**kwargs)``; ``origin`` is e.g. "marker on test_x"."""
    where = f"@pytest.mark.grpc_timeouts {origin.removeprefix('marker ')}"
    if args:
        raise OverrideError(
            f"{where}: positional arguments {shown(args)} are not accepted; name each setting, "
            f"e.g. grpc_timeouts(sensor=30). Accepted keywords: "
            f"{_accepted(cascade, with_inherit=True)}"
        )
    values: dict[str, str | None] = {}
    inherit: bool | None = None
    for key, value in kwargs.items():
        if key == "inherit":
            if not isinstance(value, bool):
                raise OverrideError(
                    f"{where}: inherit={shown(value)} is not accepted; inherit takes True or False"
                )
            inherit = value
            continue
        if key not in cascade.names:
            raise OverrideError(
                f"{where}: unknown setting {key!r} for the {cascade.name} cascade; accepted "
                f"keywords: {_accepted(cascade, with_inherit=True)}{_ambiguity(cascade, key)}"
            )
        setting = cascade[key]
        if value is None:
            values[key] = None
            continue
        try:
            text = setting.rule.write(value)
        except (TypeError, ValueError) as exc:
            raise OverrideError(f"{where}: {key}={shown(value)} ({setting.env_var}): {exc}") from None
        problem = None if text is None else environ_problem(text)
        if problem is not None:
            raise OverrideError(f"{where}: {key}={shown(value)} ({setting.env_var}) {problem}")
        values[key] = text
    return Layer(origin, values, inherit)


def parse_assignments(
    cascade: Cascade, entries: Iterable[str], origin: str, *, repeats: bool = True
) -> Layer:
    """Read ``NAME=VALUE`` entries from ``--grpc-timeout`` or the ``grpc_timeouts`` ini key.

    VALUE must be accepted by the setting's own parser; an empty VALUE removes the variable
    (for settings where an empty string counts as unset) so the default applies. A setting given
    twice takes the later value where ``repeats`` (command-line options), else is refused.
    """
    values: dict[str, str | None] = {}
    seen: dict[str, str] = {}
    example_name = "sensor" if "sensor" in cascade.names else (cascade.names or ("NAME",))[0]
    example = f"{example_name}=30"
    for entry in entries:
        name, sep, text = entry.partition("=")
        name, text = name.strip(), text.strip()
        if not sep or not name:
            raise OverrideError(
                f"{origin}: {shown(entry)} is not NAME=VALUE (e.g. {example}); accepted names: "
                f"{_accepted(cascade, with_inherit=False)}"
            )
        if name not in cascade.names:
            raise OverrideError(
                f"{origin}: unknown setting {shown(name)} in {shown(entry)}; accepted names: "
                f"{_accepted(cascade, with_inherit=False)}{_ambiguity(cascade, name)}"
            )
        setting = cascade[name]
        if not repeats and name in seen:
            raise OverrideError(
                f"{origin}: {name} is set twice ({shown(seen[name])}, then {shown(text)}); keep one"
            )
        seen[name] = text
        if not setting.rule.is_set(text):
            values[name] = None
            continue
        problem = environ_problem(text)
        if problem is not None:
            raise OverrideError(f"{origin}: {name}={shown(text)} ({setting.env_var}) {problem}")
        try:
            setting.rule.parse(text)
        except PARSE_ERRORS:
            raise OverrideError(
                f"{origin}: {name}={shown(text)} ({setting.env_var}) is not {setting.rule.accepts}"
            ) from None
        values[name] = text
    return Layer(origin, values)


def load_cascade(path: str, origin: str) -> Cascade:
    """A built-in cascade by name ("otel_otlp"), or ``module:attribute`` imported and checked to
    be a :class:`Cascade`."""
    from ._builtins import BUILT_IN

    if path.strip() in BUILT_IN:
        return BUILT_IN[path.strip()]
    module_name, sep, attribute = path.strip().partition(":")
    if not sep or not module_name or not attribute:
        raise OverrideError(
            f"{origin}: {path!r} is neither a built-in cascade ({', '.join(BUILT_IN)}) nor "
            "module:attribute (e.g. myproject.timeouts:CASCADE)"
        )
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:  # any import failure is the user's to see, with its cause
        raise OverrideError(
            f"{origin}: cannot import module {module_name!r} named in {path!r}: {type(exc).__name__}: {exc}"
        ) from None
    except SystemExit as exc:  # a module that exits at import: not the end of the run
        raise OverrideError(
            f"{origin}: importing module {module_name!r} named in {path!r} called sys.exit({exc.code!r})"
        ) from None
    try:
        obj = getattr(module, attribute)
    except AttributeError:
        raise OverrideError(
            f"{origin}: module {module_name!r} has no attribute {attribute!r} (from {path!r})"
        ) from None
    if not isinstance(obj, Cascade):
        raise OverrideError(
            f"{origin}: {path!r} names a {type(obj).__name__} object, not a pytest_grpc_deadlines.Cascade"
        )
    return obj


def load_cascades(paths: str | Iterable[str], origin: str) -> Cascade:
    """Several cascades, built-in names or ``module:attribute`` paths (a string of them apart by
    spaces, commas or lines, or an iterable), as one (see :func:`~._combined.combine`)."""
    from ._combined import combine

    entries = paths.replace(",", " ").split() if isinstance(paths, str) else list(paths)
    if not entries:
        raise OverrideError(f"{origin}: names no cascade")
    cascades = [load_cascade(entry, origin) for entry in entries]
    try:
        return combine(cascades)
    except ArgumentError as exc:
        raise OverrideError(f"{origin}: {exc}") from None


def _ambiguity(cascade: Cascade, name: str) -> str:
    """Where several combined cascades have a setting called ``name``: which names to use."""
    found = cascade.ambiguous(name)
    if not found:
        return ""
    return (
        f"; {name!r} is a setting of several cascades here, so each has its cascade's name: "
        f"{', '.join(found)}"
    )
