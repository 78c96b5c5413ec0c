"""Calls that grpc's retry policy sends more than once: every attempt is recorded and reachable
from its client record and its pair, and a server's behaviour can pick the attempts it applies
to (``times=``, ``skip=``)."""

from __future__ import annotations

import json

import grpc
import pytest

from pytest_grpc_deadlines import ArgumentError, CallLog, GrpcTestServer, ServerCall
from pytest_grpc_deadlines.calls._recorder import Recorder
from pytest_grpc_deadlines.calls._verdicts import verdict
from pytest_grpc_deadlines.probe import PROBE_SERVICE_NAME, ProbeRequest, ProbeStub
from tests.calls.test_verdicts import TEST, client_call, server_call
from tests.rpc import status_code
from tests.timing import REACHES_SERVER

UNARY = f"{PROBE_SERVICE_NAME}/Unary"
WAIT = 10.0  # margin: bounds waits for what happens in milliseconds
RETRY = json.dumps(
    {
        "methodConfig": [
            {
                "name": [{"service": PROBE_SERVICE_NAME}],
                "retryPolicy": {
                    "maxAttempts": 3,
                    "initialBackoff": "0.01s",
                    "maxBackoff": "0.01s",
                    "backoffMultiplier": 1,
                    "retryableStatusCodes": ["UNAVAILABLE"],
                },
            }
        ]
    }
)


def _retrying(server: GrpcTestServer) -> ProbeStub:
    return server.probe(service_config=RETRY, enable_retries=1)


def test_every_attempt_is_recorded_and_reachable_from_the_client(
    grpc_test_server: GrpcTestServer, grpc_calls: CallLog
) -> None:
    grpc_test_server.fail(UNARY, grpc.StatusCode.UNAVAILABLE, "try again", times=2)
    _retrying(grpc_test_server).Unary(ProbeRequest(), timeout=WAIT)
    [client] = grpc_calls
    [pair] = grpc_calls.pairs(timeout=WAIT)
    attempts = grpc_test_server.calls
    assert [a.outcome for a in attempts] == ["aborted", "aborted", "ok"]
    assert client.attempts == pair.attempts == tuple(attempts)
    assert (pair.server, pair.verdict) == (attempts[-1], "agreed-ok")


def test_a_gate_can_hold_only_a_later_attempt(grpc_test_server: GrpcTestServer, grpc_calls: CallLog) -> None:
    grpc_test_server.fail(UNARY, grpc.StatusCode.UNAVAILABLE, times=1)
    gate = grpc_test_server.hold(UNARY, skip=1, times=1)
    future = _retrying(grpc_test_server).Unary.future(ProbeRequest(), timeout=WAIT)
    assert gate.wait_entered(WAIT)
    first, second = grpc_test_server.calls
    assert (first.outcome, second.outcome, gate.entered) == ("aborted", "running", 1)
    gate.release()
    assert future.result() is not None
    [pair] = grpc_calls.pairs(timeout=WAIT)
    assert [a.outcome for a in pair.attempts] == ["aborted", "ok"]
    assert pair.verdict == "agreed-ok"


def test_times_and_skip_choose_calls_for_hold_delay_and_fail(grpc_test_server: GrpcTestServer) -> None:
    stub = grpc_test_server.probe()
    gate = grpc_test_server.hold(UNARY, skip=1, times=1)
    stub.Unary(ProbeRequest(), timeout=WAIT)  # the first passes
    held = stub.Unary.future(ProbeRequest(), timeout=WAIT)
    assert gate.wait_entered(WAIT)
    stub.Unary(ProbeRequest(), timeout=WAIT)  # the third passes while the second is held
    gate.release()
    held.result()
    assert gate.entered == 1

    grpc_test_server.reset()
    grpc_test_server.delay(UNARY, 60, times=1)  # the first call's delay outlasts its deadline
    assert status_code(lambda: stub.Unary(ProbeRequest(), timeout=REACHES_SERVER)) is (
        grpc.StatusCode.DEADLINE_EXCEEDED
    )
    stub.Unary(ProbeRequest(), timeout=WAIT)  # the second is not delayed

    grpc_test_server.reset()
    grpc_test_server.fail(UNARY, grpc.StatusCode.NOT_FOUND, skip=1)
    stub.Unary(ProbeRequest(), timeout=WAIT)
    for _ in range(2):
        assert status_code(lambda: stub.Unary(ProbeRequest(), timeout=WAIT)) is grpc.StatusCode.NOT_FOUND


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"times": 0}, "times=0 must be None (every call) or a positive int"),
        ({"times": True}, "times=True must be None (every call) or a positive int"),
        ({"skip": -1}, "skip=-1 must be an int >= 0 (the calls to let through first)"),
        ({"skip": 1.5}, "skip=1.5 must be an int >= 0 (the calls to let through first)"),
    ],
)
def test_bad_times_and_skip_are_refused(
    grpc_test_server: GrpcTestServer, kwargs: dict[str, object], message: str
) -> None:
    for apply in (
        lambda: grpc_test_server.hold(UNARY, **kwargs),  # type: ignore[arg-type]
        lambda: grpc_test_server.delay(UNARY, 1, **kwargs),  # type: ignore[arg-type]
        lambda: grpc_test_server.fail(UNARY, grpc.StatusCode.INTERNAL, **kwargs),  # type: ignore[arg-type]
    ):
        with pytest.raises(ArgumentError) as info:
            apply()
        assert str(info.value) == message


def test_an_earlier_attempt_that_did_the_work_makes_a_disagreement() -> None:
    """The client saw UNAVAILABLE after its retries, but the first attempt's handler ended OK:
    the work was done and the client does not know it."""
    recorder = Recorder()
    recorder.start_test(TEST)
    client = client_call(grpc.StatusCode.UNAVAILABLE, call_id="1")
    client._recorder = recorder
    recorder.add(client)
    done, lost = server_call("ok"), server_call("aborted", grpc.StatusCode.UNAVAILABLE)
    recorder.add_server_call("1", done)
    recorder.add_server_call("1", lost)
    [pair] = CallLog(TEST, recorder).pairs()
    assert (pair.verdict, pair.server, pair.attempts) == ("disagreement", done, (done, lost))
    assert verdict(client, lost) == "agreed-failure"  # the last attempt alone hides it
    assert verdict(client, lost, (done, lost)) == "disagreement"


def test_a_running_earlier_attempt_keeps_the_pair_running() -> None:
    client = client_call(grpc.StatusCode.OK)
    running: ServerCall = server_call("running")
    assert verdict(client, server_call("ok"), (running,)) == "running"
