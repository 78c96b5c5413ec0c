"""Client records at the edges: calls grpc refuses, channels the plugin did not create,
connectivity, targets spelled ``localhost``, and aio interceptors of every shape."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from typing import Any

import grpc
import grpc.aio
import pytest
import wrapt
from grpc import _channel as grpc_channel_module

from pytest_grpc_deadlines.calls import _recording as recording
from pytest_grpc_deadlines.calls._hooks import MOVED as READ_BACK
from pytest_grpc_deadlines.calls._recorder import ClientCall, Recorder
from pytest_grpc_deadlines.calls._verdicts import CallLog
from pytest_grpc_deadlines.probe import PROBE_SERVICE_NAME, ProbeAioStub, ProbeRequest, ProbeStub
from pytest_grpc_deadlines.servers._aio import AioGrpcTestServer
from pytest_grpc_deadlines.servers._sync import GrpcTestServer

UNARY = f"{PROBE_SERVICE_NAME}/Unary"
SERVER_STREAM = f"{PROBE_SERVICE_NAME}/ServerStream"
CLIENT_STREAM = f"{PROBE_SERVICE_NAME}/ClientStream"
BIDI = f"{PROBE_SERVICE_NAME}/Bidi"
#: Not a ProbeRequest: the probe's serializer cannot encode it, so grpc refuses the call.
NOT_A_MESSAGE: Any = b"not a message"


@pytest.fixture
def channel(grpc_test_server: GrpcTestServer) -> Iterator[grpc.Channel]:
    with grpc.insecure_channel(grpc_test_server.target) as channel:
        yield channel


# --- calls grpc refuses are finished, not left running --------------------------------------


@pytest.mark.parametrize("shape", ["stream", "future"])
def test_a_call_grpc_refuses_to_start_is_recorded_with_its_status(
    channel: grpc.Channel, grpc_calls: CallLog, shape: str
) -> None:
    stub = ProbeStub(channel)
    with pytest.raises(grpc.RpcError) as info:
        if shape == "stream":
            stub.ServerStream(NOT_A_MESSAGE, timeout=5)
        else:
            stub.Unary.future(NOT_A_MESSAGE, timeout=5)
    assert info.value.code() is grpc.StatusCode.INTERNAL
    [call] = grpc_calls
    assert call.done
    assert (call.code, call.details) == (grpc.StatusCode.INTERNAL, info.value.details())


def test_a_call_grpc_rejects_with_an_exception_is_recorded_and_the_exception_passes_through(
    channel: grpc.Channel, grpc_calls: CallLog
) -> None:
    with pytest.raises(TypeError) as info:
        ProbeStub(channel).Unary(ProbeRequest(), timeout=5, metadata=[("x-count", 5)])
    [call] = grpc_calls
    assert call.done
    assert (call.code, call.details) == (None, f"TypeError: {info.value}")


@pytest.mark.parametrize("shape", ["unary", "stream", "future"])
def test_a_call_on_a_closed_channel_is_recorded_as_ended_without_a_status(
    grpc_test_server: GrpcTestServer, grpc_calls: CallLog, shape: str
) -> None:
    channel = grpc.insecure_channel(grpc_test_server.target)
    stub = ProbeStub(channel)
    channel.close()
    call = {"unary": stub.Unary, "stream": stub.ServerStream, "future": stub.Unary.future}[shape]
    with pytest.raises(ValueError, match=r"[Cc]losed") as info:
        call(ProbeRequest(), timeout=5)
    [record] = grpc_calls
    assert (record.done, record.code, record.details) == (True, None, f"ValueError: {info.value}")
    assert ", no status, at " in repr(record)


@pytest.mark.asyncio
async def test_an_aio_call_grpc_rejects_at_once_is_recorded_and_the_exception_passes_through(
    grpc_calls: CallLog,
) -> None:
    async with grpc.aio.insecure_channel("127.0.0.1:1") as channel:  # never dialled
        with pytest.raises(TypeError) as info:
            channel.unary_unary("/tests.Nowhere/Call")(b"", timeout=5, metadata=5)
    [call] = grpc_calls
    assert (call.method, call.done, call.code) == ("tests.Nowhere/Call", True, None)
    assert call.details == f"TypeError: {info.value}"


# --- channels ------------------------------------------------------------------------------


def test_channel_ready_future_works_on_a_recording_channel(channel: grpc.Channel) -> None:
    """grpc.channel_ready_future subscribes to the channel's connectivity and unsubscribes."""
    assert type(channel) is grpc_channel_module.Channel
    states: list[grpc.ChannelConnectivity] = []
    channel.subscribe(states.append)
    grpc.channel_ready_future(channel).result(timeout=10)
    channel.unsubscribe(states.append)
    assert grpc.ChannelConnectivity.READY in states


class _Details(grpc.ClientCallDetails):  # type: ignore[misc]
    def __init__(self, details: Any, metadata: Any) -> None:
        self.method = details.method
        self.timeout = details.timeout
        self.metadata = metadata
        self.credentials = details.credentials
        self.wait_for_ready = details.wait_for_ready
        self.compression = getattr(details, "compression", None)


class _Stamp(grpc.UnaryUnaryClientInterceptor):  # type: ignore[misc]
    """A user interceptor that adds a header."""

    def intercept_unary_unary(self, continuation: Any, details: Any, request: Any) -> Any:
        metadata = (*(details.metadata or ()), ("x-stamp", "1"))
        return continuation(_Details(details, metadata), request)


def test_intercept_channel_over_a_channel_that_records_nothing_still_records_nothing(
    grpc_test_server: GrpcTestServer, grpc_calls: CallLog
) -> None:
    """A channel made while recording was off (as one made before the plugin loaded would be)
    stays unrecorded when intercepted: the plugin never inspects objects it did not make."""
    raw = recording.raw_insecure_channel(grpc_test_server.target)
    try:
        intercepted = grpc.intercept_channel(raw, _Stamp())
        assert ProbeStub(intercepted).Unary(ProbeRequest(), timeout=5).index == 0
    finally:
        raw.close()
    assert list(grpc_calls) == []
    [seen] = grpc_test_server.calls
    assert ("x-stamp", "1") in seen.metadata


def test_intercept_channel_over_a_recorded_channel_records_each_call_once_with_the_sent_timeout(
    channel: grpc.Channel, grpc_test_server: GrpcTestServer, grpc_calls: CallLog
) -> None:
    intercepted = grpc.intercept_channel(channel, _Stamp(), _Stamp())
    assert ProbeStub(intercepted).Unary(ProbeRequest(), timeout=5).index == 0
    [call] = grpc_calls
    assert (call.method, call.timeout, call.timeout_source, call.code) == (
        UNARY,
        5.0,
        "call",
        grpc.StatusCode.OK,
    )
    [seen] = grpc_test_server.calls
    assert [kv for kv in seen.metadata if kv[0] == "x-stamp"] == [("x-stamp", "1")] * 2


def test_a_localhost_target_is_recorded_as_127_0_0_1_and_paired(
    grpc_test_server: GrpcTestServer, grpc_calls: CallLog
) -> None:
    port = grpc_test_server.target.rpartition(":")[2]
    with grpc.insecure_channel(f"localhost:{port}") as channel:
        ProbeStub(channel).Unary(ProbeRequest(), timeout=5)
    [call] = grpc_calls
    assert call.target == grpc_test_server.target
    [pair] = grpc_calls.pairs()
    assert pair.server is grpc_test_server.calls[0]
    assert pair.verdict == "agreed-ok"


def test_client_streaming_with_call_and_future_are_recorded(
    channel: grpc.Channel, grpc_calls: CallLog
) -> None:
    stub = ProbeStub(channel)
    response, call = stub.ClientStream.with_call(iter([ProbeRequest()] * 2), timeout=6)
    assert (response.index, call.code()) == (2, grpc.StatusCode.OK)
    assert stub.ClientStream.future(iter([ProbeRequest()] * 3), timeout=7).result(timeout=10).index == 3
    [first, second] = grpc_calls
    assert [(c.method, c.timeout, c.code) for c in (first, second)] == [
        (CLIENT_STREAM, 6.0, grpc.StatusCode.OK),
        (CLIENT_STREAM, 7.0, grpc.StatusCode.OK),
    ]


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


# --- the recorder -----------------------------------------------------------------------------


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


# --- asyncio --------------------------------------------------------------------------------


def _aio_details(details: Any, timeout: float) -> Any:
    return grpc.aio.ClientCallDetails(
        details.method, timeout, details.metadata, details.credentials, details.wait_for_ready
    )


class _AioUnaryStreamTimeout(grpc.aio.UnaryStreamClientInterceptor):  # type: ignore[misc]
    """User interceptors that send every streaming call with a 4.5 s timeout (one class per
    kind: grpc.aio files an interceptor under the first kind it implements only)."""

    async def intercept_unary_stream(self, continuation: Any, details: Any, request: Any) -> Any:
        return await continuation(_aio_details(details, 4.5), request)


class _AioStreamUnaryTimeout(grpc.aio.StreamUnaryClientInterceptor):  # type: ignore[misc]
    async def intercept_stream_unary(self, continuation: Any, details: Any, requests: Any) -> Any:
        return await continuation(_aio_details(details, 4.5), requests)


class _AioStreamStreamTimeout(grpc.aio.StreamStreamClientInterceptor):  # type: ignore[misc]
    async def intercept_stream_stream(self, continuation: Any, details: Any, requests: Any) -> Any:
        return await continuation(_aio_details(details, 4.5), requests)


async def _requests(count: int) -> AsyncIterator[Any]:
    for _ in range(count):
        yield ProbeRequest()


@pytest.mark.asyncio
async def test_aio_streaming_calls_record_the_timeout_their_interceptor_sent(
    grpc_aio_test_server: AioGrpcTestServer, grpc_calls: CallLog
) -> None:
    async with grpc.aio.insecure_channel(
        grpc_aio_test_server.target,
        interceptors=[_AioUnaryStreamTimeout(), _AioStreamUnaryTimeout(), _AioStreamStreamTimeout()],
    ) as channel:
        stub = ProbeAioStub(channel)
        assert [r.index async for r in stub.ServerStream(ProbeRequest(responses=2), timeout=30)] == [0, 1]
        assert (await stub.ClientStream(_requests(2), timeout=30)).index == 2
        assert [r.index async for r in stub.Bidi(_requests(2))] == [0, 1]
        assert (await stub.Unary(ProbeRequest(), timeout=30)).index == 0  # not intercepted
    # margin: a timeout an aio interceptor set is read back from the call's deadline, exact to the
    # millisecond idle and a few ms late if the thread is descheduled in between (READ_BACK)
    assert [(c.method, c.timeout, c.code) for c in grpc_calls] == [
        (SERVER_STREAM, pytest.approx(4.5, abs=READ_BACK), grpc.StatusCode.OK),
        (CLIENT_STREAM, pytest.approx(4.5, abs=READ_BACK), grpc.StatusCode.OK),
        (BIDI, pytest.approx(4.5, abs=READ_BACK), grpc.StatusCode.OK),
        (UNARY, 30.0, grpc.StatusCode.OK),
    ]
    for seen in grpc_aio_test_server.calls[:3]:  # margin: grpc rounds a deadline up by some milliseconds
        assert seen.deadline is not None
        assert 3.5 < seen.deadline < 5


@pytest.mark.asyncio
async def test_an_aio_call_is_listed_as_running_until_it_ends(
    grpc_aio_test_server: AioGrpcTestServer, grpc_calls: CallLog
) -> None:
    gate = grpc_aio_test_server.hold(UNARY)
    async with grpc.aio.insecure_channel(grpc_aio_test_server.target) as channel:
        call = asyncio.ensure_future(ProbeAioStub(channel).Unary(ProbeRequest(), timeout=30))
        assert await gate.wait_entered(10)
        [record] = grpc_calls
        assert (record.done, record.code) == (False, None)
        assert [p.verdict for p in grpc_calls.pairs(timeout=0)] == ["running"]
        gate.release()
        assert (await call).index == 0
    [record] = grpc_calls
    assert (record.done, record.code) == (True, grpc.StatusCode.OK)
