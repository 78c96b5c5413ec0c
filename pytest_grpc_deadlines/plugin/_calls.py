"""Hooks for client call records, the deadline audit and the suite report, and the
``grpc_calls`` fixture."""

from __future__ import annotations

import os
import sys
import warnings
from collections.abc import Generator
from typing import TYPE_CHECKING, Any

import pytest

from .._errors import GrpcDeadlinesWarning, OverrideError
from ..calls import _deferred as deferred
from ..calls._audit import AuditPolicy, audit, exempt_method, parse_marker_policy
from ..calls._recorder import RECORDER
from ._markers import RESOLVED, Marks, begin, end, end_session, session_depth

if TYPE_CHECKING:  # grpc is imported when a test first uses it, not when the plugin loads
    from ..calls._hops import Mode as PropagationMode
    from ..calls._report import SuiteReport
    from ..calls._verdicts import CallLog
    from ..cascade._cascade import Resolved

__all__ = ["FIXTURES", "CallsPlugin", "grpc_calls"]

_AUDITED = pytest.StashKey[int]()
_POLICY = pytest.StashKey[AuditPolicy]()
_PROPAGATION: pytest.StashKey[PropagationMode] = pytest.StashKey()
_RESOLVED_AT_CALL: pytest.StashKey[Resolved] = pytest.StashKey()

#: A test that uses any of these (or any of the plugin's markers) used the plugin: the summary is
#: printed for the run.
FIXTURES = frozenset(
    {
        "grpc_timeouts",
        "grpc_calls",
        "grpc_dagster_code_server",
        "grpc_dagster_proxy",
        "grpc_test_server",
        "grpc_test_server_factory",
        "grpc_test_servicers",
        "grpc_aio_test_server",
        "grpc_aio_test_server_factory",
        "grpc_fake_server",
        "grpc_wire_proxy",
        "grpc_wire_proxy_factory",
    }
)
#: A pairs() wait at the end of each test for handlers still running, in all: a handler
#: released at teardown ends within microseconds; one that does not counts as running.
_PAIR_WAIT = 0.2


class CallsPlugin:
    """Registered by the plugin at configure time; one per pytest session."""

    def __init__(
        self,
        config: pytest.Config,
        policy: AuditPolicy,
        *,
        record: bool,
        used: bool,
        propagation: PropagationMode = "off",
    ) -> None:
        self.config = config
        self.policy = policy
        self.propagation: PropagationMode = propagation
        self.record = record
        self._used = used or bool(config.getoption("grpc_deadlines_report"))
        self._report: SuiteReport | None = None  # made when there is something to report
        #: tests' results are kept for the JSON report, by the process that writes it
        self._results = bool(config.getoption("grpc_deadlines_json")) and not hasattr(config, "workeroutput")
        self._json_error = ""
        if record:
            deferred.install()
        # call sites are relative to where pytest was invoked (as its own paths are)
        RECORDER.push(str(config.invocation_params.dir))
        self._depth = session_depth()

    @property
    def report(self) -> SuiteReport:
        if self._report is None:
            from ..calls._report import SuiteReport

            self._report = SuiteReport(used=self._used, run=self.config.getoption("grpc_deadlines_run"))
            self._report.max_deadline = self.policy.max_seconds
        return self._report

    @property
    def used(self) -> bool:
        """Whether the run used the plugin (here, or on an xdist worker)."""
        return self._used or (self._report is not None and self._report.used)

    def close(self) -> None:
        end_session(self._depth)
        RECORDER.pop()
        sites = sys.modules.get("pytest_grpc_deadlines.calls._sites")
        if sites is not None:  # loaded with grpc
            sites.forget()
        if self.record:
            deferred.uninstall()

    # per test -----------------------------------------------------------------------------------
    def _policy(self, item: pytest.Item, marks: Marks) -> AuditPolicy:
        policy = self.policy
        for mark in reversed(marks.deadlines):
            try:
                policy = parse_marker_policy(policy, mark.args, mark.kwargs, f"on {item.name}")
            except OverrideError as exc:
                raise pytest.fail.Exception(str(exc), pytrace=False) from None
        if policy.mode != "off" and not self.record:
            raise pytest.fail.Exception(
                f"grpc_require_deadlines on {item.name} needs call recording, which ini "
                "grpc_record_calls = false turns off",
                pytrace=False,
            )
        return policy

    def _propagation(self, item: pytest.Item, marks: Marks) -> PropagationMode:
        mode = self.propagation
        if marks.propagation:
            from ..calls._hops import parse_propagation_marker

            for mark in reversed(marks.propagation):
                try:
                    mode = parse_propagation_marker(mode, mark.args, mark.kwargs, f"on {item.name}")
                except OverrideError as exc:
                    raise pytest.fail.Exception(str(exc), pytrace=False) from None
        if mode != "off" and not self.record:
            raise pytest.fail.Exception(
                f"grpc_require_propagation on {item.name} needs call recording, which ini "
                "grpc_record_calls = false turns off",
                pytrace=False,
            )
        return mode

    def _audit(self, item: pytest.Item) -> None:
        policy = item.stash.get(_POLICY, None)
        if policy is None:  # setup did not get as far as reading the markers
            return
        start = item.stash.get(_AUDITED, 0)
        propagation = item.stash.get(_PROPAGATION, "off")
        if propagation == "off" and not RECORDER.recorded():  # no call yet: nothing to judge
            item.stash[_AUDITED] = start
            return
        calls = RECORDER.calls_of(item.nodeid)
        item.stash[_AUDITED] = len(calls)
        findings: list[tuple[str, str, str]] = []
        found = audit(calls[start:], policy, item.nodeid)
        if found is not None:
            findings.append((*found, policy.mode))
        if propagation != "off":
            from ..calls._hops import propagation_audit
            from ._state import configured_cascade

            cascade = configured_cascade(self.config)
            # the test's settings (with the markers and options that set them), else the
            # environment as the call phase saw it (teardown restores the environment)
            resolved = item.stash.get(RESOLVED, None) or item.stash.get(_RESOLVED_AT_CALL, None)
            if resolved is None:
                resolved = item.stash[_RESOLVED_AT_CALL] = cascade.resolve(os.environ)
            hops = propagation_audit(calls[start:], item.nodeid, cascade, resolved)
            if hops is not None:
                findings.append((*hops, propagation))
        failures = []
        for message, site, mode in findings:
            if mode == "warn":
                # Shown at the first flagged call's line, not at this one.
                filename, _, line = site.rpartition(":")
                lineno = int(line) if line.isdigit() else 0
                warnings.warn_explicit(GrpcDeadlinesWarning(message), GrpcDeadlinesWarning, filename, lineno)
            else:
                failures.append(message)
        if failures:
            raise pytest.fail.Exception("\n".join(failures), pytrace=False)

    def _note_use(self, item: pytest.Item, marks: Marks) -> None:
        if self._used:
            return
        names = getattr(item, "fixturenames", ())
        if FIXTURES.intersection(names) or marks.timeouts or marks.deadlines or marks.propagation:
            self._used = True
            if self._report is not None:
                self._report.used = True

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_setup(self, item: pytest.Item) -> None:
        # Each attempt starts afresh (pytest-rerunfailures runs setup, call and teardown again).
        marks = begin(item)
        RECORDER.start_test(item.nodeid)
        if _AUDITED in item.stash:
            del item.stash[_AUDITED]
        if _RESOLVED_AT_CALL in item.stash:
            del item.stash[_RESOLVED_AT_CALL]
        self._note_use(item, marks)
        # A bad marker errors the test at setup, before it runs (as grpc_timeouts markers do).
        item.stash[_POLICY] = self._policy(item, marks)
        item.stash[_PROPAGATION] = self._propagation(item, marks)

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_call(self, item: pytest.Item) -> Generator[None, object, object]:
        result = yield
        self._audit(item)
        return result

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_teardown(self, item: pytest.Item) -> Generator[None, object, object]:
        try:
            result = yield
            if item.stash.get(_AUDITED, None) is not None:
                self._audit(item)
            return result
        finally:
            try:
                if RECORDER.recorded() and RECORDER.calls_of(item.nodeid):  # else no grpc to import
                    from ..calls._verdicts import CallLog

                    log = CallLog(item.nodeid)
                    # read now: a marker the test added (request.applymarker) counts too
                    opted_out = any(
                        mark.args[:1] == (False,) for mark in item.iter_markers("grpc_require_deadlines")
                    )
                    self.report.add(
                        log,
                        log.pairs(timeout=_PAIR_WAIT),
                        exempt=lambda call: opted_out or exempt_method(call, self.policy),
                    )
                RECORDER.start_test(None)
                self._add_background()
            finally:
                end(item)

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        # each test's result, for the JSON report (xdist: the controller sees the workers')
        if self._results:
            from ..calls._report import test_result

            tests = self.report.tests
            result = test_result(
                tests.get(report.nodeid), report.when, report.outcome, hasattr(report, "wasxfail")
            )
            if result is not None:
                tests[report.nodeid] = result

    # the suite ----------------------------------------------------------------------------------
    @pytest.hookimpl(optionalhook=True)
    def pytest_testnodedown(self, node: Any, error: Any) -> None:
        data = getattr(node, "workeroutput", {}).get("grpc_deadlines")
        if data:
            self.report.merge(data)

    def _add_background(self) -> None:
        background = RECORDER.take_background()
        if background:
            self.report.add_background(background)

    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        self._add_background()
        workeroutput = getattr(self.config, "workeroutput", None)
        if workeroutput is not None:  # an xdist worker: the controller reports
            workeroutput["grpc_deadlines"] = {**self.report.to_dict(), "used": self.used}
            return
        path = self.config.getoption("grpc_deadlines_json")
        if path:
            try:
                self.report.write_json(path)
            except OSError as exc:  # a full disk, say: said plainly, and the run fails
                self._json_error = f"--grpc-deadlines-json {path}: the report could not be written: {exc}"
                session.exitstatus = pytest.ExitCode.USAGE_ERROR

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if getattr(self.config, "workeroutput", None) is not None:
            return
        if self._json_error:
            terminalreporter.write_line(f"ERROR: {self._json_error}", red=True)
        if not self.used:
            return
        terminalreporter.section("gRPC deadlines")
        for line in self.report.lines():
            terminalreporter.write_line(line)


@pytest.fixture
def grpc_calls(request: pytest.FixtureRequest) -> CallLog:
    """The client calls this test made (through any channel created after the plugin loaded),
    in call order, with ``pairs()`` and ``assert_no_violations()``."""
    from ..calls import _recording as recording
    from ..calls._verdicts import CallLog

    if recording.missing():
        import grpc

        pytest.fail(
            f"grpc_calls: call recording does not fit grpcio {grpc.__version__}, which lacks "
            f"{', '.join(recording.missing())}; no calls can be recorded",
            pytrace=False,
        )
    return CallLog(request.node.nodeid)
