"""Sphinx configuration for pytest-grpc-deadlines."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from sphinx.application import Sphinx
from sphinx.errors import PycodeError
from sphinx.pycode import ModuleAnalyzer

import pytest_grpc_deadlines

sys.path.insert(0, str(Path(__file__).parent / "_ext"))

project = "pytest-grpc-deadlines"
author = "pytest-grpc-deadlines maintainers"
copyright = "pytest-grpc-deadlines maintainers"
release = pytest_grpc_deadlines.__version__
version = release
extensions = ["myst_parser", "sphinx.ext.autodoc", "plugin_reference"]
source_suffix = {".md": "markdown"}
exclude_patterns = ["_build", "_ext"]
autodoc_member_order = "bysource"
autodoc_typehints = "description"
myst_heading_anchors = 3
# Python blocks in these pages run as tests (tests/test_docs.py): keep them highlighted as such.
highlight_language = "python"

html_theme = "alabaster"
html_title = f"pytest-grpc-deadlines {release}"
html_theme_options = {
    "description": "Test how gRPC code behaves around deadlines",
    "fixed_sidebar": True,
    "show_relbars": True,
    "page_width": "1100px",
    "sidebar_width": "240px",
}
html_sidebars = {"**": ["about.html", "navigation.html", "relations.html", "searchbox.html"]}


def _defining_comment(app: Sphinx, what: str, name: str, obj: object, options: Any, lines: list[str]) -> None:
    """A constant documented at its public path (``pytest_grpc_deadlines.cascade.DAGSTER``) gets the
    ``#:`` comment written where it is defined, in a private module, not its type's docstring."""
    package, _, attribute = name.rpartition(".")
    if what != "data" or not package.startswith("pytest_grpc_deadlines"):
        return
    for module_name, module in sorted(sys.modules.items()):
        if not module_name.startswith("pytest_grpc_deadlines."):
            continue
        if getattr(module, attribute, None) is not obj:
            continue
        try:
            comment = ModuleAnalyzer.for_module(module_name).find_attr_docs().get(("", attribute))
        except PycodeError:
            continue
        if comment:
            lines[:] = [*comment]
            return


def setup(app: Sphinx) -> None:
    app.connect("autodoc-process-docstring", _defining_comment)
