"""GRPC_SIMPLE_STUBS against grpc's own ``grpc/_simple_stubs.py`` (``tox -e simple-stubs`` on the
newest grpcio; every other env on its own). The module reads its variables once, at import: each
resolver executes a fresh copy of it, not registered in ``sys.modules``, and reads what it kept.
"""

from __future__ import annotations

import datetime
import importlib.util
import inspect
import os
import sys
from collections.abc import Callable
from types import ModuleType

import grpc
import pytest

from pytest_grpc_deadlines import GRPC_SIMPLE_STUBS, assert_cascade_conforms
from pytest_grpc_deadlines.cascade._environment import AppliedSettings, plan
from pytest_grpc_deadlines.cascade._overrides import parse_marker

STUBS = "grpc._simple_stubs"


def fresh_stubs() -> ModuleType:
    """grpc's simple-stubs module executed now, with the environment of the moment."""
    spec = importlib.util.find_spec(STUBS)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def kept(attribute: str, convert: Callable[[object], object] = lambda v: v) -> Callable[[], object]:
    return lambda: convert(getattr(fresh_stubs(), attribute))


def _seconds(period: object) -> object:
    assert isinstance(period, datetime.timedelta)
    return period.total_seconds()


def test_grpc_simple_stubs_cascade_conforms_to_grpcs_own_module() -> None:
    resolvers = {
        "default_timeout": kept("_DEFAULT_TIMEOUT"),
        "eviction_seconds": kept("_EVICTION_PERIOD", _seconds),
        "maximum_channels": kept("_MAXIMUM_CHANNELS"),
    }
    assert_cascade_conforms(GRPC_SIMPLE_STUBS, resolvers, max_examples=1000)


def test_the_copies_grpc_keeps_follow_a_tests_settings_and_come_back() -> None:
    stubs = importlib.import_module(STUBS)
    before = (stubs._DEFAULT_TIMEOUT, stubs._EVICTION_PERIOD, stubs._MAXIMUM_CHANNELS)
    default_before = inspect.unwrap(stubs.unary_unary).__defaults__
    layer = parse_marker(
        GRPC_SIMPLE_STUBS,
        (),
        {"default_timeout": 5, "eviction_seconds": 1.5, "maximum_channels": 3},
        "marker on test_x",
    )
    applied = AppliedSettings(plan(GRPC_SIMPLE_STUBS, [layer], os.environ))
    resolved = applied.apply()
    try:
        assert (resolved.default_timeout, resolved.eviction_seconds, resolved.maximum_channels) == (
            5.0,
            1.5,
            3,
        )
        assert stubs._DEFAULT_TIMEOUT == 5.0
        assert datetime.timedelta(seconds=1.5) == stubs._EVICTION_PERIOD
        assert stubs._MAXIMUM_CHANNELS == 3
        # the stubs' own default argument, taken at import, follows too
        stub = inspect.unwrap(stubs.unary_unary)
        assert 5.0 in (stub.__defaults__ or ()) + tuple((stubs.unary_unary.__kwdefaults__ or {}).values())
    finally:
        applied.restore()
    assert before == (stubs._DEFAULT_TIMEOUT, stubs._EVICTION_PERIOD, stubs._MAXIMUM_CHANNELS)
    assert inspect.unwrap(stubs.unary_unary).__defaults__ == default_before


@pytest.mark.skipif(STUBS not in sys.modules and not hasattr(grpc, "experimental"), reason="no simple stubs")
def test_the_modelled_module_is_grpcs() -> None:
    assert fresh_stubs().__name__ == STUBS
