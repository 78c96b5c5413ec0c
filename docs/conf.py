"""Sphinx configuration for pytest-grpc-deadlines."""

from __future__ import annotations

import pytest_grpc_deadlines

project = "pytest-grpc-deadlines"
author = "pytest-grpc-deadlines maintainers"
release = pytest_grpc_deadlines.__version__
extensions = ["myst_parser", "sphinx.ext.autodoc"]
source_suffix = {".md": "markdown"}
exclude_patterns = ["_build"]
autodoc_member_order = "bysource"
autodoc_typehints = "description"
html_theme = "alabaster"
myst_heading_anchors = 3
