"""The ``grpc_timeouts`` marker: applied around each test, and the fixture that reads it."""

from __future__ import annotations

import os
from collections.abc import Generator

import pytest
from _pytest.nodes import Node

from ..cascade._cascade import Resolved
from ..cascade._environment import AppliedSettings, plan
from ..cascade._overrides import Layer, OverrideError, parse_marker
from ._state import STATE, State

__all__ = ["grpc_timeouts", "pytest_runtest_setup", "pytest_runtest_teardown"]

_APPLIED = pytest.StashKey[AppliedSettings]()
_RESOLVED = pytest.StashKey[Resolved]()


def _marker_origin(node: Node, item: pytest.Item) -> str:
    if node is item:
        return f"marker on {item.name}"
    if isinstance(node, pytest.Class):
        return f"marker on class {node.name}"
    if isinstance(node, pytest.Module):
        return f"marker on module {node.name}"
    return f"marker on {node.nodeid}"


def _layers(item: pytest.Item, state: State) -> list[Layer]:
    layers = list(state.base_layers)
    marks = list(item.iter_markers_with_node("grpc_timeouts"))
    for node, mark in reversed(marks):
        try:
            layers.append(parse_marker(state.cascade, mark.args, mark.kwargs, _marker_origin(node, item)))
        except OverrideError as exc:
            # ``from None``: shown once, without "During handling of the above exception".
            raise pytest.fail.Exception(str(exc), pytrace=False) from None
    return layers


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    state = item.config.stash[STATE]
    layers = _layers(item, state)
    if not layers:
        return
    applied = AppliedSettings(plan(state.cascade, layers, os.environ))
    item.stash[_APPLIED] = applied
    item.stash[_RESOLVED] = applied.apply()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_teardown(item: pytest.Item) -> Generator[None, None, None]:
    try:
        return (yield)
    finally:
        applied = item.stash.get(_APPLIED, None)
        if applied is not None:
            applied.restore()
            del item.stash[_APPLIED]


@pytest.fixture
def grpc_timeouts(request: pytest.FixtureRequest) -> Resolved:
    """The test's timeout cascade, resolved: values by attribute or key, ``.source(name)``.

    For a test that a marker, ``--grpc-timeout`` or ini ``grpc_timeouts`` touches, these are the
    values it runs with (sources name the marker or option); otherwise the current environment.
    """
    resolved: Resolved | None = request.node.stash.get(_RESOLVED, None)
    if resolved is not None:
        return resolved
    return request.config.stash[STATE].cascade.resolve(os.environ)
