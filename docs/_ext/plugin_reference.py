"""Reference tables generated from the plugin itself, so the docs cannot drift from the code.

Directives (used in ``docs/reference/plugin.md``):

- ``grpc-markers``: the markers as ``pytest --markers`` shows them (read from ``plugin/_config.py``);
- ``grpc-fixtures``: every fixture the plugin registers, with its scope and docstring (read with
  ``ast``, so the asyncio fixtures are listed without pytest-asyncio installed);
- ``grpc-options`` and ``grpc-ini``: the command-line options and ini keys, with the help texts
  ``pytest --help`` prints (from ``plugin.pytest_addoption``);
- ``grpc-cascade``: a cascade's settings (environment variable, default, how the text is read);
- ``grpc-bindings``: the module constants a cascade patches while a test's settings are in force.

``tests/test_docs.py`` checks the lists in ``plugin_facts.py`` against what pytest itself reports.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable, Sequence
from typing import Any

from docutils import nodes
from docutils.parsers.rst import directives
from plugin_facts import fixtures, markers, options_and_ini
from sphinx.application import Sphinx
from sphinx.util.docutils import SphinxDirective

# --- docutils helpers --------------------------------------------------------------------------

Cell = str | nodes.Node | Sequence[nodes.Node]


def _code(text: str) -> nodes.literal:
    return nodes.literal(text, text)


def _paragraph(cell: Cell) -> nodes.paragraph:
    if isinstance(cell, str):
        return nodes.paragraph(cell, cell)
    if isinstance(cell, nodes.Node):
        return nodes.paragraph("", "", cell)
    return nodes.paragraph("", "", *cell)


def _table(header: Sequence[str], rows: Iterable[Sequence[Cell]], widths: Sequence[int]) -> nodes.table:
    table = nodes.table()
    group = nodes.tgroup(cols=len(header))
    table += group
    for width in widths:
        group += nodes.colspec(colwidth=width)

    def row(cells: Sequence[Cell]) -> nodes.row:
        out = nodes.row()
        for cell in cells:
            entry = nodes.entry()
            entry += _paragraph(cell)
            out += entry
        return out

    head = nodes.thead()
    head += row(header)
    group += head
    body = nodes.tbody()
    for cells in rows:
        body += row(cells)
    group += body
    return table


def _definitions(items: Iterable[tuple[Cell, Sequence[Cell]]]) -> nodes.definition_list:
    out = nodes.definition_list()
    for term, paragraphs in items:
        item = nodes.definition_list_item()
        term_node = nodes.term()
        term_node += term if isinstance(term, nodes.Node) else nodes.Text(str(term))
        item += term_node
        definition = nodes.definition()
        for paragraph in paragraphs:
            definition += _paragraph(paragraph)
        item += definition
        out += item
    return out


def _doc_paragraphs(doc: str) -> list[Cell]:
    """A docstring's paragraphs, each joined into one line, with ``code`` shown as code."""
    out: list[Cell] = []
    for block in doc.split("\n\n"):
        text = " ".join(line.strip() for line in block.splitlines()).strip()
        if not text:
            continue
        parts: list[nodes.Node] = []
        for i, piece in enumerate(text.split("``")):
            if piece:
                parts.append(_code(piece) if i % 2 else nodes.Text(piece))
        out.append(parts)
    return out


# --- directives --------------------------------------------------------------------------------


class MarkersDirective(SphinxDirective):
    """The markers, each with its full signature and help text."""

    def run(self) -> list[nodes.Node]:
        items: list[tuple[Cell, Sequence[Cell]]] = []
        for line in markers():
            signature, _, text = line.partition("): ")
            items.append((_code(f"@pytest.mark.{signature})"), [text]))
        return [_definitions(items)]


class FixturesDirective(SphinxDirective):
    """The fixtures: name, scope and docstring."""

    def run(self) -> list[nodes.Node]:
        items: list[tuple[Cell, Sequence[Cell]]] = []
        for fixture in fixtures():
            notes = f"scope: {fixture.scope}"
            if fixture.asyncio:
                notes += "; an asyncio fixture, registered when pytest-asyncio is installed"
            term: list[nodes.Node] = [_code(fixture.name), nodes.Text(f" ({notes})")]
            items.append((nodes.inline("", "", *term), _doc_paragraphs(fixture.doc)))
        return [_definitions(items)]


class OptionsDirective(SphinxDirective):
    """The command-line options with their help texts."""

    def run(self) -> list[nodes.Node]:
        options, _ = options_and_ini()
        items: list[tuple[Cell, Sequence[Cell]]] = []
        for option in options:
            shown = ", ".join(f"{n} {option.metavar}" if option.metavar else n for n in option.names)
            items.append((_code(shown), [option.help]))
        return [_definitions(items)]


class IniDirective(SphinxDirective):
    """The ini keys with their types, defaults and help texts."""

    def run(self) -> list[nodes.Node]:
        _, keys = options_and_ini()
        items: list[tuple[Cell, Sequence[Cell]]] = []
        for key in keys:
            default = "empty" if key.default in ("", [], None) else repr(key.default)
            term: list[nodes.Node] = [_code(key.name), nodes.Text(f" ({key.type}, default: {default})")]
            items.append((nodes.inline("", "", *term), [key.help]))
        return [_definitions(items)]


def _load(path: str) -> Any:
    module, _, attribute = path.partition(":")
    return getattr(importlib.import_module(module), attribute)


def describe_default(default: object) -> str:
    """A setting's default in words: a constant, ``default`` (a Ref) or ``max(180, default)``."""
    from pytest_grpc_deadlines import Max, Ref

    if isinstance(default, Ref):
        return default.name
    if isinstance(default, Max):
        return f"max({', '.join(str(term) for term in default.terms)})"
    if isinstance(default, int) and not isinstance(default, bool) and default >= 10_000:
        return f"{default:_}"
    return repr(default)


def describe_rule(rule: object) -> str:
    """How a setting's text is read, in words."""
    from pytest_grpc_deadlines import Flag, Text, WholeNumber

    if isinstance(rule, WholeNumber):
        empty = "empty counts as unset" if rule.empty_is_unset else "empty is an error"
        return f"whole number, as {rule.reader} reads it; {empty}"
    if isinstance(rule, Flag):
        return "switch: any non-empty text is on ('0' and 'false' included)"
    if isinstance(rule, Text):
        return "text as it is; empty counts as unset"
    return type(rule).__name__


class CascadeDirective(SphinxDirective):
    """A cascade's settings: marker keyword, environment variable, default, reading rule, doc."""

    option_spec = {"cascade": directives.unchanged}  # noqa: RUF012 - docutils' own convention

    def run(self) -> list[nodes.Node]:
        cascade = _load(self.options.get("cascade", "pytest_grpc_deadlines:DAGSTER"))
        rows: list[Sequence[Cell]] = []
        for setting in cascade:
            rows.append(
                [
                    _code(setting.name),
                    _code(setting.env_var),
                    _code(describe_default(setting.default)),
                    describe_rule(setting.rule),
                    setting.doc,
                ]
            )
        return [
            _table(
                ["name", "environment variable", "default", "read as", "what it is"], rows, [3, 6, 4, 6, 8]
            )
        ]


class BindingsDirective(SphinxDirective):
    """The module attributes a cascade patches while a test's settings are in force."""

    option_spec = {"cascade": directives.unchanged}  # noqa: RUF012 - docutils' own convention

    def run(self) -> list[nodes.Node]:
        cascade = _load(self.options.get("cascade", "pytest_grpc_deadlines:DAGSTER"))
        rows: list[Sequence[Cell]] = []
        for binding in cascade.bindings:
            captured = binding.captured_by or "nothing (its default arguments follow too)"
            rows.append([_code(f"{binding.module}:{binding.attribute}"), _code(binding.setting), captured])
        return [_table(["attribute", "setting", "captured where no patch reaches"], rows, [8, 3, 6])]


def setup(app: Sphinx) -> dict[str, Any]:
    app.add_directive("grpc-markers", MarkersDirective)
    app.add_directive("grpc-fixtures", FixturesDirective)
    app.add_directive("grpc-options", OptionsDirective)
    app.add_directive("grpc-ini", IniDirective)
    app.add_directive("grpc-cascade", CascadeDirective)
    app.add_directive("grpc-bindings", BindingsDirective)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
