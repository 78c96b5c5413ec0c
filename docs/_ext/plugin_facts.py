"""What the plugin registers, read from its own code: markers, fixtures, options, ini keys.

No Sphinx here: ``plugin_reference.py`` renders these lists into the docs, and
``tests/test_docs.py`` checks them against what pytest itself reports.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path
from typing import Any

PACKAGE = Path(__file__).resolve().parents[2] / "pytest_grpc_deadlines"
#: The plugin layer: its modules define every fixture, marker, option and ini key.
PLUGIN = PACKAGE / "plugin"
#: The modules whose fixtures the plugin registers (``pytest_grpc_deadlines.plugin`` itself, and
#: the modules its ``pytest_configure`` registers).
FIXTURE_MODULES = ("_markers.py", "_calls.py", "_servers.py", "_aio_servers.py", "_fake.py", "_wire.py")
#: The module whose ``pytest_configure`` registers the markers.
CONFIG_MODULE = "_config.py"
#: The order fixtures are listed in; any other fixture follows, in module order.
FIXTURE_ORDER = (
    "grpc_timeouts",
    "grpc_test_servicers",
    "grpc_test_server",
    "grpc_test_server_factory",
    "grpc_aio_test_server",
    "grpc_aio_test_server_factory",
    "grpc_calls",
    "grpc_fake_servicers",
    "grpc_fake_server",
    "grpc_wire_proxy",
    "grpc_wire_proxy_factory",
)


@dataclass(frozen=True)
class Fixture:
    name: str
    scope: str
    module: str
    doc: str
    asyncio: bool


def _decorator_fixture(decorator: ast.expr) -> tuple[bool, str] | None:
    """(is an asyncio fixture, scope) for ``@pytest.fixture(...)`` and friends; None otherwise."""
    call = decorator if isinstance(decorator, ast.Call) else None
    target = call.func if call is not None else decorator
    if not (isinstance(target, ast.Attribute) and target.attr == "fixture"):
        return None
    owner = target.value.id if isinstance(target.value, ast.Name) else ""
    if owner not in ("pytest", "pytest_asyncio"):
        return None
    scope = "function"
    for keyword in call.keywords if call is not None else []:
        if keyword.arg == "scope" and isinstance(keyword.value, ast.Constant):
            scope = str(keyword.value.value)
    return owner == "pytest_asyncio", scope


def fixtures(plugin: Path = PLUGIN) -> list[Fixture]:
    """Every public fixture defined in the plugin's fixture modules, in :data:`FIXTURE_ORDER`."""
    found: list[Fixture] = []
    for module in FIXTURE_MODULES:
        tree = ast.parse((plugin / module).read_text(encoding="utf-8"))
        for node in tree.body:
            if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) or node.name.startswith("_"):
                continue
            for decorator in node.decorator_list:
                info = _decorator_fixture(decorator)
                if info is not None:
                    doc = ast.get_docstring(node) or ""
                    found.append(Fixture(node.name, info[1], module, doc, info[0]))
    rank = {name: i for i, name in enumerate(FIXTURE_ORDER)}
    return sorted(found, key=lambda f: rank.get(f.name, len(rank)))


def markers(plugin: Path = PLUGIN) -> list[str]:
    """The marker lines the plugin's ``pytest_configure`` registers, for the built-in cascade."""
    from pytest_grpc_deadlines import DAGSTER
    from pytest_grpc_deadlines.plugin import _config

    tree = ast.parse((plugin / CONFIG_MODULE).read_text(encoding="utf-8"))
    lines: list[str] = []
    for node in ast.walk(tree):
        if not (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "addinivalue_line"
            and len(node.args) == 2
            and isinstance(node.args[0], ast.Constant)
            and node.args[0].value == "markers"
        ):
            continue
        text = node.args[1]
        if isinstance(text, ast.Constant) and isinstance(text.value, str):
            lines.append(text.value)
        elif isinstance(text, ast.Call) and isinstance(text.func, ast.Name):
            lines.append(str(getattr(_config, text.func.id)(DAGSTER)))
        else:  # pragma: no cover - a new form of registration
            raise ValueError(f"cannot read the marker registered at plugin/{CONFIG_MODULE}:{node.lineno}")
    return lines


@dataclass(frozen=True)
class Option:
    names: tuple[str, ...]
    metavar: str | None
    help: str
    repeatable: bool


@dataclass(frozen=True)
class IniKey:
    name: str
    type: str
    default: object
    help: str


class _RecordingParser:
    """Stands in for ``pytest.Parser`` to record what ``pytest_addoption`` adds."""

    def __init__(self) -> None:
        self.options: list[Option] = []
        self.ini: list[IniKey] = []

    def getgroup(self, name: str, description: str = "") -> _RecordingParser:
        return self

    def addoption(self, *names: str, **attrs: Any) -> None:
        self.options.append(
            Option(names, attrs.get("metavar"), str(attrs.get("help", "")), attrs.get("action") == "append")
        )

    def addini(self, name: str, help: str, type: str | None = None, default: object = None) -> None:
        self.ini.append(IniKey(name, type or "string", default, help))


def options_and_ini() -> tuple[list[Option], list[IniKey]]:
    from pytest_grpc_deadlines import plugin

    parser = _RecordingParser()
    plugin.pytest_addoption(parser)  # type: ignore[arg-type]
    return parser.options, parser.ini
