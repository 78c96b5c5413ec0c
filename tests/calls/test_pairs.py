"""Client records paired with the server's records of real calls: the verdicts, waiting for running
handlers, and the pairing header that links the two, sent to the plugin's servers only."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from concurrent import futures
from typing import Any

import grpc
import grpc.aio
import pytest

from pytest_grpc_deadlines import AioGrpcTestServer, CallLog, GrpcTestServer
from pytest_grpc_deadlines.calls._recorder import CALL_ID_HEADER
from pytest_grpc_deadlines.probe import (
    PROBE_SERVICE_NAME,
    ProbeRequest,
    ProbeServicer,
    ProbeStub,
    add_ProbeServicer_to_server,
)
from tests.timing import ENTRY_BOUND, REACHES_SERVER

UNARY = f"{PROBE_SERVICE_NAME}/Unary"


@pytest.fixture
def raw_server() -> Iterator[tuple[str, list[tuple[tuple[str, Any], ...]]]]:
    """A plain grpc server (not the plugin's) hosting the probe; yields its target and the
    request metadata of each call it received."""
    seen: list[tuple[tuple[str, Any], ...]] = []

    class Record(grpc.ServerInterceptor):
        def intercept_service(self, continuation: Callable[[Any], Any], details: Any) -> Any:
            seen.append(tuple(details.invocation_metadata))
            return continuation(details)

    executor = futures.ThreadPoolExecutor(2)
    server = grpc.server(executor, interceptors=(Record(),))  # type: ignore[arg-type]
    add_ProbeServicer_to_server(ProbeServicer(), server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        yield f"127.0.0.1:{port}", seen
    finally:
        server.stop(None)
        executor.shutdown(wait=False)


# --- verdicts of real calls -----------------------------------------------------------------------


def test_pairs_agreed_ok(
    grpc_test_server: GrpcTestServer, channel: grpc.Channel, grpc_calls: CallLog
) -> None:
    ProbeStub(channel).Unary(ProbeRequest(), timeout=5)
    [(client_call, server_call, verdict)] = grpc_calls.pairs()
    assert client_call is grpc_calls[0]
    assert server_call is grpc_test_server.calls[0]
    assert verdict == "agreed-ok"
    grpc_calls.assert_no_violations()


def test_pairs_agreed_failure_for_a_fault(
    grpc_test_server: GrpcTestServer, channel: grpc.Channel, grpc_calls: CallLog
) -> None:
    grpc_test_server.fail(UNARY, grpc.StatusCode.UNAVAILABLE, "down")
    with pytest.raises(grpc.RpcError):
        ProbeStub(channel).Unary(ProbeRequest(), timeout=5)
    [(_, server_call, verdict)] = grpc_calls.pairs()
    assert server_call is not None
    assert (server_call.outcome, verdict) == ("aborted", "agreed-failure")
    grpc_calls.assert_no_violations()


def test_pairs_disagreement_when_the_server_finishes_after_the_client_gave_up(
    grpc_test_server: GrpcTestServer, channel: grpc.Channel, grpc_calls: CallLog
) -> None:
    gate = grpc_test_server.hold(UNARY)
    with pytest.raises(grpc.RpcError) as info:
        ProbeStub(channel).Unary(ProbeRequest(), timeout=REACHES_SERVER)
    assert info.value.code() is grpc.StatusCode.DEADLINE_EXCEEDED
    assert gate.wait_entered(ENTRY_BOUND)
    assert gate.wait_cancelled(10)
    gate.release()
    [(client_call, server_call, verdict)] = grpc_calls.pairs(timeout=10)
    assert client_call.code is grpc.StatusCode.DEADLINE_EXCEEDED
    assert server_call is not None
    assert (server_call.outcome, server_call.cancelled) == ("ok", True)
    assert verdict == "disagreement"
    grpc_calls.assert_no_violations()  # a disagreement is not a violation


def test_pairs_unpaired_for_a_server_that_is_not_the_plugins(
    raw_server: tuple[str, Any], grpc_calls: CallLog
) -> None:
    with grpc.insecure_channel(raw_server[0]) as other:
        ProbeStub(other).Unary(ProbeRequest(), timeout=5)
    [(_, server_call, verdict)] = grpc_calls.pairs()
    assert (server_call, verdict) == (None, "unpaired")
    grpc_calls.assert_no_violations()


@pytest.mark.asyncio
async def test_aio_pairs_agreed_ok(grpc_aio_test_server: AioGrpcTestServer, grpc_calls: CallLog) -> None:
    await grpc_aio_test_server.probe().Unary(ProbeRequest(), timeout=5)
    [(_, server_call, verdict)] = grpc_calls.pairs()
    assert server_call is grpc_aio_test_server.calls[0]
    assert verdict == "agreed-ok"


def test_pairs_waits_at_most_its_timeout_in_all(
    grpc_test_server: GrpcTestServer, channel: grpc.Channel, grpc_calls: CallLog
) -> None:
    gate = grpc_test_server.hold(UNARY)
    stub = ProbeStub(channel)
    futures = [stub.Unary.future(ProbeRequest(), timeout=30) for _ in range(10)]
    deadline = time.monotonic() + 10
    while gate.entered < len(futures) and time.monotonic() < deadline:
        gate.wait_entered(0.05)
    assert gate.entered == len(futures)
    began = time.monotonic()
    pairs = grpc_calls.pairs(timeout=0.2)
    # margin: ten running handlers waited for one after another would take 2 s; in all it is
    # 0.2 s, and 1.5 s leaves room for a loaded machine.
    assert time.monotonic() - began < 1.5
    assert [p.verdict for p in pairs] == ["running"] * len(futures)
    gate.release()
    for future in futures:
        future.result(timeout=10)


# --- the pairing header ---------------------------------------------------------------------------


def test_pairing_header_goes_only_to_the_plugins_servers(
    grpc_test_server: GrpcTestServer,
    channel: grpc.Channel,
    raw_server: tuple[str, list[tuple[tuple[str, Any], ...]]],
    grpc_calls: CallLog,
) -> None:
    ProbeStub(channel).Unary(ProbeRequest(), timeout=5)
    target, seen = raw_server
    with grpc.insecure_channel(target) as other:
        ProbeStub(other).Unary(ProbeRequest(), timeout=5)
    ours, theirs = grpc_calls
    assert ours.call_id is not None
    assert [value for key, value in grpc_test_server.calls[0].metadata if key == CALL_ID_HEADER] == [
        ours.call_id
    ]
    assert theirs.call_id is None
    [metadata] = seen
    assert CALL_ID_HEADER not in [key for key, _ in metadata]
