"""The ``grpc_timeouts`` marker: put in force around each test by an autouse fixture, and the
``grpc_timeouts`` fixture that reads it."""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest
from _pytest.nodes import Node

from .._errors import GrpcDeadlinesWarning, OverrideError
from ._state import STATE, State

if TYPE_CHECKING:  # loaded when a test's settings are put in force, not at start-up
    from ..cascade._cascade import Resolved
    from ..cascade._overrides import Layer

__all__ = [
    "RESOLVED",
    "Marks",
    "_grpc_deadlines_settings",
    "begin",
    "end",
    "end_session",
    "grpc_timeouts",
    "pytest_runtest_call",
    "session_depth",
]


class Marks:
    """The plugin's markers on a test, gathered in one pass over its nodes as its setup starts.
    (A plain class: defined when the plugin loads, where a named tuple costs its definition.)"""

    __slots__ = ("deadlines", "markers", "propagation", "timeouts")

    def __init__(self) -> None:
        #: ``grpc_timeouts`` markers with the node each is on, the closest first
        self.timeouts: list[tuple[Node, pytest.Mark]] = []
        self.deadlines: list[pytest.Mark] = []  # grpc_require_deadlines, the closest first
        self.propagation: list[pytest.Mark] = []  # grpc_require_propagation, the closest first
        #: how many markers of any name the test's nodes had: one added later changes it
        self.markers = 0


#: the test's markers, as its setup started
MARKS = pytest.StashKey[Marks]()
#: the tests being set up and run, the innermost pytest session's last: the autouse fixture
#: takes no argument (one that takes ``request`` costs about as much again as the fixture)
_RUNNING: list[pytest.Item] = []
#: the test's settings as its markers, options and ini keys put them in force
RESOLVED: pytest.StashKey[Resolved] = pytest.StashKey()


def begin(item: pytest.Item) -> Marks:
    """The test's setup starts: note it for the autouse fixture, and read its markers."""
    _RUNNING.append(item)
    return gather_marks(item)


def end(item: pytest.Item) -> None:
    """The test's teardown is over (wherever it is on the stack: a nested session that stopped
    early, ``pytest.exit`` in an inner test, left its own above it)."""
    for index in range(len(_RUNNING) - 1, -1, -1):
        if _RUNNING[index] is item:
            del _RUNNING[index:]
            return


def session_depth() -> int:
    """How many tests are running in the pytest sessions around a session that starts now."""
    return len(_RUNNING)


def end_session(depth: int) -> None:
    """A session ends: forget its tests whose teardown never ran (``KeyboardInterrupt``,
    ``pytest.exit``), so no later fixture takes one of them for its own."""
    del _RUNNING[depth:]


def gather_marks(item: pytest.Item) -> Marks:
    """Read the test's markers once, for every hook and fixture of its run."""
    marks = item.stash[MARKS] = Marks()
    for node, mark in item.iter_markers_with_node():
        marks.markers += 1
        if mark.name == "grpc_timeouts":
            marks.timeouts.append((node, mark))
        elif mark.name == "grpc_require_deadlines":
            marks.deadlines.append(mark)
        elif mark.name == "grpc_require_propagation":
            marks.propagation.append(mark)
    return marks


def _count(item: pytest.Item) -> int:
    return sum(len(node.own_markers) for node in item.listchain())


def _marker_origin(node: Node, item: pytest.Item) -> str:
    if node is item:
        return f"marker on {item.name}"
    if isinstance(node, pytest.Class):
        return f"marker on class {node.name}"
    if isinstance(node, pytest.Module):
        return f"marker on module {node.name}"
    return f"marker on {node.nodeid}"


def _layers(item: pytest.Item, state: State, marks: list[tuple[Node, pytest.Mark]]) -> list[Layer]:
    layers = list(state.base_layers)
    if marks:
        from ..cascade._overrides import parse_marker
    for node, mark in reversed(marks):
        try:
            layers.append(parse_marker(state.cascade, mark.args, mark.kwargs, _marker_origin(node, item)))
        except OverrideError as exc:
            # ``from None``: shown once, without "During handling of the above exception".
            raise pytest.fail.Exception(str(exc), pytrace=False) from None
    return layers


@pytest.fixture(autouse=True)
def _grpc_deadlines_settings() -> Iterator[None]:
    """Put the test's cascade settings in force for it and its function-scoped fixtures.

    An autouse function-scoped fixture of the plugin: it runs after every session-, package-,
    module- and class-scoped fixture of the test, so what those set is the ambient environment
    the settings replace (or keep, with ``inherit=True``) and get back afterwards.
    """
    if not _RUNNING:  # pytest ran no setup hook for the test: nothing to put in force
        raise pytest.fail.Exception(
            "grpc_deadlines: a test's fixtures were set up outside pytest's runtest protocol "
            "(no pytest_runtest_setup call), so its grpc_timeouts settings cannot be put in force",
            pytrace=False,
        )
    item = _RUNNING[-1]
    state = item.config.stash[STATE]
    marks = item.stash[MARKS]
    if _count(item) != marks.markers:  # a fixture set up before this one added a marker
        marks = gather_marks(item)
    layers = _layers(item, state, marks.timeouts)
    if not layers:
        yield
        return
    from ..cascade._environment import AppliedSettings, plan

    applied = AppliedSettings(plan(state.cascade, layers, os.environ))
    item.stash[RESOLVED] = applied.apply()
    try:
        for notice in applied.notices:
            warnings.warn(GrpcDeadlinesWarning(notice), stacklevel=1)
    except GrpcDeadlinesWarning as exc:  # the run's warning filters make it an error
        applied.restore()
        del item.stash[RESOLVED]
        raise pytest.fail.Exception(f"GrpcDeadlinesWarning: {exc}", pytrace=False) from None
    try:
        yield
    finally:
        applied.restore()


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_call(item: pytest.Item) -> None:
    """Refuse a ``grpc_timeouts`` marker added after the settings were put in force."""
    marks = item.stash.get(MARKS, None)
    if marks is None or _count(item) == marks.markers:  # the common case: no marker added
        return
    seen = [id(mark) for _, mark in marks.timeouts]
    if [id(mark) for mark in item.iter_markers("grpc_timeouts")] != seen:
        raise pytest.fail.Exception(
            f"@pytest.mark.grpc_timeouts on {item.name}: the marker was added while the test's "
            "fixtures were set up (request.applymarker), after the plugin had put the test's "
            "settings in force, so it cannot take effect. Put the marker on the test, its class "
            "or its module (pytestmark), or add it in a pytest_collection_modifyitems hook.",
            pytrace=False,
        )


@pytest.fixture
def grpc_timeouts(request: pytest.FixtureRequest) -> Resolved:
    """The test's timeout cascade, resolved: values by attribute or key, ``.source(name)``.

    For a test that a marker, ``--grpc-timeout`` or ini ``grpc_timeouts`` touches, these are the
    values it runs with (sources name the marker or option); otherwise the current environment.
    """
    resolved: Resolved | None = request.node.stash.get(RESOLVED, None)
    if resolved is not None:
        return resolved
    return request.config.stash[STATE].cascade.resolve(os.environ)
