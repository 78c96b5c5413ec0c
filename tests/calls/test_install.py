"""Installing the recording: installs are counted, ini can turn it off, and a grpc that lacks a
hook the recording needs is reported rather than guessed at."""

from __future__ import annotations

import grpc
import grpc.aio
import pytest
import wrapt
from grpc import _channel as grpc_channel_module

from pytest_grpc_deadlines import CallLog, GrpcTestServer
from pytest_grpc_deadlines.calls import _recording as recording
from pytest_grpc_deadlines.probe import PROBE_SERVICE_NAME, ProbeRequest, ProbeStub

pytest_plugins = ["pytester"]

UNARY = f"{PROBE_SERVICE_NAME}/Unary"
QUIET = ("-p", "no:cacheprovider", "-p", "no:hypothesispytest", "-p", "no:asyncio")


def test_uninstalling_more_often_than_installing_is_harmless(
    grpc_test_server: GrpcTestServer, grpc_calls: CallLog
) -> None:
    """Installs are counted; an extra uninstall does nothing, and a later install records again.
    Uninstalled, grpc's classes hold grpc's own functions again."""
    depth = recording._depth
    try:
        for _ in range(depth):
            recording.uninstall()
        recording.uninstall()  # nothing left to undo
        assert not recording.installed()
        for name in ("__init__", "unary_unary", "unary_stream", "stream_unary", "stream_stream"):
            assert not isinstance(vars(grpc_channel_module.Channel)[name], wrapt.FunctionWrapper)
        with grpc.insecure_channel(grpc_test_server.target) as channel:
            ProbeStub(channel).Unary(ProbeRequest(), timeout=5)
        assert list(grpc_calls) == []
    finally:
        for _ in range(depth):
            recording.install()
    with grpc.insecure_channel(grpc_test_server.target) as channel:
        ProbeStub(channel).Unary(ProbeRequest(), timeout=6)
    [call] = grpc_calls
    assert (call.method, call.timeout) == (UNARY, 6.0)


def test_recording_can_be_turned_off_in_ini(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\ngrpc_record_calls = false\n")
    pytester.makepyfile(
        """
        from pytest_grpc_deadlines.probe import ProbeRequest

        def test_nothing_recorded(grpc_test_server, grpc_calls):
            grpc_test_server.probe().Unary(ProbeRequest())
            assert list(grpc_calls) == []
        """
    )
    pytester.runpytest_subprocess(*QUIET).assert_outcomes(passed=1)


def test_the_audit_marker_without_recording_fails_the_test_saying_why(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\ngrpc_record_calls = false\n")
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.grpc_require_deadlines
        def test_audited():
            pass
        """
    )
    result = pytester.runpytest_subprocess(*QUIET)
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(
        [
            "*grpc_require_deadlines on test_audited needs call recording, which ini "
            "grpc_record_calls = false turns off"
        ]
    )


def test_every_hook_the_recording_needs_is_in_this_grpc() -> None:
    """The guard for a grpc release that moves the classes the recording wraps."""
    assert recording.installed()
    assert recording.missing() == ()


def test_grpc_calls_says_so_when_this_grpc_does_not_fit(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(recording, "_missing", ["grpc._channel.Channel.unary_unary"])
    pytester.makepyfile("def test_calls(grpc_calls):\n    pass\n")
    result = pytester.runpytest(*QUIET)
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(
        [
            f"*grpc_calls: call recording does not fit grpcio {grpc.__version__}, which lacks "
            "grpc._channel.Channel.unary_unary; no calls can be recorded"
        ]
    )
