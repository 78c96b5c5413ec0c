"""Hooks for client call records, the deadline audit and the suite report."""

from __future__ import annotations

import warnings
from collections.abc import Generator
from typing import Any

import pytest

from . import client
from .audit import AuditPolicy, parse_marker_policy, report
from .client import RECORDER
from .errors import GrpcDeadlinesWarning
from .overrides import OverrideError
from .report import SuiteReport
from .verdicts import CallLog

__all__ = ["CallsPlugin"]

_AUDITED = pytest.StashKey[int]()


class CallsPlugin:
    """Registered by the plugin at configure time; one per pytest session."""

    def __init__(self, config: pytest.Config, policy: AuditPolicy) -> None:
        self.config = config
        self.policy = policy
        self.report = SuiteReport()
        client.install()
        RECORDER.push()

    def close(self) -> None:
        RECORDER.pop()
        client.uninstall()

    # per test -----------------------------------------------------------------------------------
    def _policy(self, item: pytest.Item) -> AuditPolicy:
        policy = self.policy
        for mark in reversed(list(item.iter_markers("grpc_require_deadlines"))):
            try:
                policy = parse_marker_policy(policy, mark.args, mark.kwargs, f"on {item.name}")
            except OverrideError as exc:
                raise pytest.fail.Exception(str(exc), pytrace=False) from None
        return policy

    def _audit(self, item: pytest.Item) -> None:
        calls = RECORDER.calls_of(item.nodeid)
        start = item.stash.get(_AUDITED, 0)
        item.stash[_AUDITED] = len(calls)
        policy = self._policy(item)
        message = report(calls[start:], policy, item.nodeid)
        if message is None:
            return
        if policy.mode == "warn":
            warnings.warn(GrpcDeadlinesWarning(message), stacklevel=1)
        else:
            raise pytest.fail.Exception(message, pytrace=False)

    @pytest.hookimpl(wrapper=True, tryfirst=True)
    def pytest_runtest_protocol(self, item: pytest.Item) -> Generator[None, object, object]:
        RECORDER.start_test(item.nodeid)
        try:
            return (yield)
        finally:
            log = CallLog(item.nodeid)
            self.report.add(log, log.pairs(timeout=0))
            RECORDER.start_test(None)

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_call(self, item: pytest.Item) -> Generator[None, object, object]:
        result = yield
        self._audit(item)
        return result

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_teardown(self, item: pytest.Item) -> Generator[None, object, object]:
        result = yield
        if item.stash.get(_AUDITED, None) is not None:
            self._audit(item)
        return result

    # the suite ----------------------------------------------------------------------------------
    @pytest.hookimpl(optionalhook=True)
    def pytest_testnodedown(self, node: Any, error: Any) -> None:
        data = getattr(node, "workeroutput", {}).get("grpc_deadlines")
        if data:
            self.report.merge(data)

    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        workeroutput = getattr(self.config, "workeroutput", None)
        if workeroutput is not None:  # an xdist worker: the controller reports
            workeroutput["grpc_deadlines"] = self.report.to_dict()
            return
        path = self.config.getoption("grpc_deadlines_json")
        if path:
            self.report.write_json(path)

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if getattr(self.config, "workeroutput", None) is not None:
            return
        if not self.report.calls and not self.config.getoption("grpc_deadlines_report"):
            return
        terminalreporter.section("gRPC deadlines")
        for line in self.report.lines():
            terminalreporter.write_line(line)
