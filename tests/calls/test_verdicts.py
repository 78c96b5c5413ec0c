"""Verdicts and the call log over hand-made records: pure data, no server, no channel."""

from __future__ import annotations

import threading

import grpc
import pytest

from pytest_grpc_deadlines import CallLog, ClientCall, Pair, ServerCall
from pytest_grpc_deadlines.calls._recorder import Recorder
from pytest_grpc_deadlines.calls._verdicts import Verdict, verdict
from pytest_grpc_deadlines.servers._records import Outcome

METHOD = "pkg.Service/Method"
TEST = "test_mod.py::test_it"


def client_call(
    code: grpc.StatusCode | None = grpc.StatusCode.OK,
    *,
    test: str | None = TEST,
    call_id: str | None = None,
    timeout: float | None = 5.0,
) -> ClientCall:
    """A client record; ``code`` None leaves it running."""
    call = ClientCall(
        method=METHOD,
        target="127.0.0.1:50051",
        timeout=timeout,
        site="test_mod.py:7",
        test=test,
        call_id=call_id,
        started=100.0,
    )
    if code is not None:
        call.code, call.elapsed = code, 0.5
    return call


def server_call(outcome: Outcome = "ok", code: grpc.StatusCode | None = None) -> ServerCall:
    """A server record; outcome "running" leaves it running."""
    call = ServerCall(method=METHOD, metadata=(), deadline=4.0)
    if outcome != "running":
        call.finish(outcome, code if code is not None else grpc.StatusCode.OK)
    return call


# --- verdict() ------------------------------------------------------------------------------


def test_both_ok_is_agreed_ok() -> None:
    assert verdict(client_call(), server_call("ok")) == "agreed-ok"


@pytest.mark.parametrize(
    ("outcome", "code"),
    [
        ("aborted", grpc.StatusCode.NOT_FOUND),
        ("raised", grpc.StatusCode.UNKNOWN),
        ("abandoned", grpc.StatusCode.CANCELLED),
    ],
)
def test_server_failure_with_client_failure_is_agreed_failure(
    outcome: Outcome, code: grpc.StatusCode
) -> None:
    assert verdict(client_call(code), server_call(outcome, code)) == "agreed-failure"


@pytest.mark.parametrize(
    "code",
    [
        grpc.StatusCode.DEADLINE_EXCEEDED,
        grpc.StatusCode.CANCELLED,
        grpc.StatusCode.UNAVAILABLE,
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        grpc.StatusCode.INTERNAL,
        grpc.StatusCode.NOT_FOUND,
    ],
)
def test_server_ok_with_any_client_failure_is_a_disagreement(code: grpc.StatusCode) -> None:
    assert verdict(client_call(code), server_call("ok")) == "disagreement"


@pytest.mark.parametrize("outcome", ["aborted", "raised", "abandoned"])
def test_client_ok_with_server_not_ok_is_a_violation(outcome: Outcome) -> None:
    assert verdict(client_call(), server_call(outcome, grpc.StatusCode.INTERNAL)) == "violation"


@pytest.mark.parametrize("code", [grpc.StatusCode.OK, grpc.StatusCode.DEADLINE_EXCEEDED, None])
def test_no_server_record_is_unpaired(code: grpc.StatusCode | None) -> None:
    assert verdict(client_call(code), None) == "unpaired"


def test_a_running_client_call_is_running() -> None:
    assert verdict(client_call(None), server_call("ok")) == "running"


def test_a_running_server_handler_is_running() -> None:
    assert verdict(client_call(), server_call("running")) == "running"


# --- CallLog --------------------------------------------------------------------------------


@pytest.fixture
def recorder() -> Recorder:
    recorder = Recorder()
    recorder.start_test(TEST)
    return recorder


def test_log_is_a_sequence_of_the_tests_calls_in_call_order(recorder: Recorder) -> None:
    calls = [client_call(timeout=t) for t in (1, 2, 3)]
    for call in calls:
        recorder.add(call)
    log = CallLog(TEST, recorder)
    assert list(log) == calls
    assert len(log) == 3
    assert (log[0], log[-1]) == (calls[0], calls[2])
    assert list(log[1:]) == calls[1:]
    assert calls[1] in log


def test_log_leaves_out_calls_of_other_tests(recorder: Recorder) -> None:
    ours = client_call()
    recorder.add(ours)
    recorder.add(client_call(test="test_mod.py::test_other"))
    recorder.add(client_call(test=None))
    assert list(CallLog(TEST, recorder)) == [ours]


def test_a_new_test_starts_with_an_empty_log(recorder: Recorder) -> None:
    recorder.add(client_call())
    recorder.start_test("test_mod.py::test_next")
    assert list(CallLog(TEST, recorder)) == []
    assert list(CallLog("test_mod.py::test_next", recorder)) == []


def test_log_settles_a_call_whose_done_callback_has_not_run(recorder: Recorder) -> None:
    """grpc wakes the caller before it runs done callbacks; reading the log must not show a
    call that already ended as running."""
    call = client_call(None)
    call._settle = lambda: call.finish(grpc.StatusCode.OK, None)
    recorder.add(call)
    [seen] = CallLog(TEST, recorder)
    assert (seen.code, seen.done) == (grpc.StatusCode.OK, True)


def test_pairs_match_client_and_server_records_by_call_id(recorder: Recorder) -> None:
    ok, failed, lost = (
        client_call(call_id="1"),
        client_call(grpc.StatusCode.INTERNAL, call_id="2"),
        client_call(),
    )
    for call in (ok, failed, lost):
        recorder.add(call)
    served_ok, served_failed = server_call("ok"), server_call("raised", grpc.StatusCode.UNKNOWN)
    recorder.add_server_call("2", served_failed)
    recorder.add_server_call("1", served_ok)
    assert CallLog(TEST, recorder).pairs() == [
        Pair(ok, served_ok, "agreed-ok"),
        Pair(failed, served_failed, "agreed-failure"),
        Pair(lost, None, "unpaired"),
    ]


def test_pairs_timeout_zero_does_not_wait_for_a_running_handler(recorder: Recorder) -> None:
    recorder.add(client_call(grpc.StatusCode.DEADLINE_EXCEEDED, call_id="1"))
    recorder.add_server_call("1", server_call("running"))
    [pair] = CallLog(TEST, recorder).pairs(timeout=0)
    assert pair.verdict == "running"


def test_pairs_waits_for_a_running_handler_to_end(recorder: Recorder) -> None:
    recorder.add(client_call(grpc.StatusCode.DEADLINE_EXCEEDED, call_id="1"))
    handler = server_call("running")
    recorder.add_server_call("1", handler)
    # Whether the handler ends before or after pairs() starts waiting, the verdict is the same.
    ender = threading.Timer(0.05, handler.finish, ("ok", grpc.StatusCode.OK))
    ender.start()
    try:
        [pair] = CallLog(TEST, recorder).pairs(timeout=10)
    finally:
        ender.join()
    assert pair.verdict == "disagreement"


def test_server_records_of_an_outer_session_still_pair(recorder: Recorder) -> None:
    """A pytester run nests a session: a server started outside it still pairs its calls."""
    handler = server_call("ok")
    recorder.add_server_call("1", handler)
    recorder.push()
    recorder.start_test(TEST)
    call = client_call(call_id="1")
    recorder.add(call)
    assert CallLog(TEST, recorder).pairs() == [Pair(call, handler, "agreed-ok")]
    recorder.pop()


@pytest.mark.parametrize(
    ("code", "outcome", "expected"),
    [
        (grpc.StatusCode.OK, "ok", "agreed-ok"),
        (grpc.StatusCode.DEADLINE_EXCEEDED, "ok", "disagreement"),
        (grpc.StatusCode.ABORTED, "aborted", "agreed-failure"),
    ],
)
def test_assert_no_violations_passes_without_a_violation(
    recorder: Recorder, code: grpc.StatusCode, outcome: Outcome, expected: Verdict
) -> None:
    recorder.add(client_call(code, call_id="1"))
    recorder.add_server_call("1", server_call(outcome, code))
    recorder.add(client_call())  # unpaired
    log = CallLog(TEST, recorder)
    assert [p.verdict for p in log.pairs()] == [expected, "unpaired"]
    log.assert_no_violations()


def test_assert_no_violations_names_both_records(recorder: Recorder) -> None:
    recorder.add(client_call(call_id="1"))
    recorder.add_server_call("1", server_call("aborted", grpc.StatusCode.INTERNAL))
    with pytest.raises(AssertionError) as info:
        CallLog(TEST, recorder).assert_no_violations()
    assert str(info.value) == (
        "a client call succeeded while the server's handler did not end OK:\n"
        "  client ClientCall(pkg.Service/Method -> 127.0.0.1:50051, timeout=5s, OK, at test_mod.py:7)\n"
        "  server ServerCall(pkg.Service/Method, outcome='aborted', code=INTERNAL, cancelled=False, "
        "deadline=4.000s)"
    )


def test_client_call_repr_shows_no_deadline_and_running() -> None:
    assert repr(client_call(None, timeout=None)) == (
        "ClientCall(pkg.Service/Method -> 127.0.0.1:50051, timeout=none, running, at test_mod.py:7)"
    )


def test_client_call_keeps_its_first_ending() -> None:
    call = client_call(None)
    call.finish(grpc.StatusCode.DEADLINE_EXCEEDED, "Deadline Exceeded")
    call.finish(grpc.StatusCode.CANCELLED, None)
    assert (call.code, call.details) == (grpc.StatusCode.DEADLINE_EXCEEDED, "Deadline Exceeded")
