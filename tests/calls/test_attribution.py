"""Which test a call belongs to: the test running when it starts, whether the call is made in a
fixture, at import or from a thread an earlier test left running; rerun attempts; and the
recorder's sessions."""

from __future__ import annotations

import pytest

from pytest_grpc_deadlines import CallLog, ClientCall, GrpcTestServer
from pytest_grpc_deadlines.calls._recorder import Recorder
from pytest_grpc_deadlines.probe import ProbeRequest
from tests.calls.sites import line as _line
from tests.calls.sites import site as _site

pytest_plugins = ["pytester"]

QUIET = ("-p", "no:cacheprovider", "-p", "no:hypothesispytest", "-p", "no:asyncio")


# --- the test running when the call starts --------------------------------------------------------


@pytest.fixture
def called_in_a_fixture(grpc_test_server: GrpcTestServer) -> int:
    _, line = grpc_test_server.probe().Unary(ProbeRequest(), timeout=5), _line()
    return line


def test_call_made_in_a_fixture_is_in_the_tests_log(
    called_in_a_fixture: int, grpc_calls: CallLog, request: pytest.FixtureRequest
) -> None:
    [call] = grpc_calls
    assert call.test == request.node.nodeid
    assert call.site == _site(called_in_a_fixture)


def test_calls_belong_to_the_test_running_when_they_start(pytester: pytest.Pytester) -> None:
    """A channel created at import of the test module records; each test sees only its own calls."""
    pytester.makepyfile(
        """
        import grpc
        import pytest
        from pytest_grpc_deadlines.probe import ProbeRequest, ProbeStub
        from pytest_grpc_deadlines.servers._sync import GrpcTestServer

        SERVER = GrpcTestServer().start()
        CHANNEL = grpc.insecure_channel(SERVER.target)  # at import

        @pytest.fixture(scope="module", autouse=True)
        def stop_server():
            yield
            CHANNEL.close()
            SERVER.close()

        def test_first(grpc_calls, request):
            ProbeStub(CHANNEL).Unary(ProbeRequest(), timeout=5)
            ProbeStub(CHANNEL).Unary(ProbeRequest(), timeout=6)
            assert [c.timeout for c in grpc_calls] == [5, 6]
            assert {c.test for c in grpc_calls} == {request.node.nodeid}

        def test_second(grpc_calls):
            assert list(grpc_calls) == []
            ProbeStub(CHANNEL).Unary(ProbeRequest(), timeout=7)
            assert [c.timeout for c in grpc_calls] == [7]
        """
    )
    result = pytester.runpytest("-p", "no:cacheprovider", "-p", "no:hypothesispytest", "-p", "no:asyncio")
    result.assert_outcomes(passed=2)


# --- threads and reruns ---------------------------------------------------------------------------


def test_a_thread_an_earlier_test_left_running_is_not_blamed_on_the_next(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import threading

        import grpc
        import pytest
        from pytest_grpc_deadlines.probe import ProbeRequest, ProbeStub

        stop, called = threading.Event(), threading.Semaphore(0)

        def poll(target):
            with grpc.insecure_channel(target) as channel:
                stub = ProbeStub(channel)
                while not stop.is_set():
                    try:
                        stub.Unary(ProbeRequest())  # no deadline, from a thread
                    except grpc.RpcError:  # in flight across the reset between two tests
                        continue
                    called.release()

        def test_starts_a_poller(grpc_test_server, grpc_calls):
            threading.Thread(target=poll, args=(grpc_test_server.target,), name="poller").start()
            assert called.acquire(timeout=10)
            assert grpc_calls[0].thread == "poller"  # started during this test: this test's call

        @pytest.mark.grpc_require_deadlines
        def test_innocent(grpc_test_server, grpc_calls):
            for _ in range(3):  # the poller calls while this test runs
                assert called.acquire(timeout=10)
            grpc_test_server.probe().Unary(ProbeRequest(), timeout=5)
            assert [c.thread for c in grpc_calls] == [threading.current_thread().name]

        def test_stops_the_poller():
            stop.set()
            for thread in threading.enumerate():
                if thread.name == "poller":
                    thread.join(10)
        """
    )
    result = pytester.runpytest(*QUIET, "-p", "no:randomly", "--grpc-deadlines-report")
    result.assert_outcomes(passed=3)
    result.stdout.fnmatch_lines(
        ["background calls (from threads older than the test): *", "  thread poller: *"]
    )


def test_a_rerun_attempt_starts_with_no_calls(pytester: pytest.Pytester) -> None:
    pytest.importorskip("pytest_rerunfailures")
    pytester.makepyfile(
        """
        from pytest_grpc_deadlines.probe import ProbeRequest

        attempts = []

        def test_flaky(grpc_test_server, grpc_calls):
            attempts.append(1)
            grpc_test_server.probe().Unary(ProbeRequest(), timeout=5)
            [call] = grpc_calls
            assert len(attempts) == 2, "the first attempt fails"
        """
    )
    # A process of its own, as users run it. (Run inline, the dropped pool outlived the inner
    # session and grpcio 1.44 hung this suite's exit stopping it from the garbage collector: the
    # pool's exit hook is for that.)
    result = pytester.runpytest_subprocess(*QUIET, "-p", "rerunfailures", "--reruns", "1", timeout=120)
    assert result.parseoutcomes() == {"passed": 1, "rerun": 1}


# --- the recorder ---------------------------------------------------------------------------------


def _record(method: str, test: str | None) -> ClientCall:
    return ClientCall(method=method, target="127.0.0.1:1", timeout=1.0, site="t.py:1", test=test)


def test_popping_the_outermost_session_keeps_recording() -> None:
    recorder = Recorder()
    recorder.pop()
    recorder.start_test("t.py::test_a")
    recorder.add(_record("a.S/A", "t.py::test_a"))
    assert [c.method for c in CallLog("t.py::test_a", recorder)] == ["a.S/A"]


def test_all_calls_spans_tests_while_a_log_holds_its_own_tests_calls() -> None:
    recorder = Recorder()
    recorder.start_test("t.py::test_a")
    recorder.add(_record("a.S/A", "t.py::test_a"))
    recorder.add(_record("a.S/B", "t.py::test_b"))  # a call still attributed to another test
    assert [c.method for c in recorder.all_calls()] == ["a.S/A", "a.S/B"]
    assert [c.method for c in CallLog("t.py::test_a", recorder)] == ["a.S/A"]
