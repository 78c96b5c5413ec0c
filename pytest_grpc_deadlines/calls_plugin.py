"""Hooks for client call records, the deadline audit and the suite report."""

from __future__ import annotations

import warnings
from collections.abc import Generator
from typing import Any

import pytest

from . import client
from .audit import AuditPolicy, finding, parse_marker_policy, report
from .client import RECORDER
from .errors import GrpcDeadlinesWarning
from .overrides import OverrideError
from .report import SuiteReport
from .verdicts import CallLog

__all__ = ["CallsPlugin"]

_AUDITED = pytest.StashKey[int]()
_POLICY = pytest.StashKey[AuditPolicy]()


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
        policy = item.stash.get(_POLICY, None)
        if policy is None:  # setup did not get as far as reading the markers
            return
        calls = RECORDER.calls_of(item.nodeid)
        start = item.stash.get(_AUDITED, 0)
        item.stash[_AUDITED] = len(calls)
        message = report(calls[start:], policy, item.nodeid)
        if message is None:
            return
        if policy.mode == "warn":
            # Shown at the first flagged call's line, not at this one.
            site = next(c.site for c in calls[start:] if finding(c, policy) is not None)
            filename, _, line = site.rpartition(":")
            lineno = int(line) if line.isdigit() else 0
            warnings.warn_explicit(GrpcDeadlinesWarning(message), GrpcDeadlinesWarning, filename, lineno)
        else:
            raise pytest.fail.Exception(message, pytrace=False)

    @pytest.hookimpl(wrapper=True, tryfirst=True)
    def pytest_runtest_protocol(self, item: pytest.Item) -> Generator[None, object, object]:
        RECORDER.start_test(item.nodeid)
        try:
            return (yield)
        finally:
            log = CallLog(item.nodeid)
            # A handler released at teardown ends within microseconds; 0.2 s bounds the wait
            # for one that does not (its pair then counts as running, not as a disagreement).
            self.report.add(log, log.pairs(timeout=0.2))
            RECORDER.start_test(None)

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_setup(self, item: pytest.Item) -> None:
        # A bad marker errors the test at setup, before it runs (as grpc_timeouts markers do).
        item.stash[_POLICY] = self._policy(item)

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
