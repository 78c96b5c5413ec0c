"""``grpc_calls``: what the client side of every RPC a test makes looks like, for every shape of
call, sync and asyncio, on insecure and secure channels; and how a record ends.

The plugin is loaded for this run, so every channel these tests create records its calls.
"""

from __future__ import annotations

import asyncio
import gc
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import grpc
import grpc.aio
import pytest
from grpc import _channel as grpc_channel_module

from pytest_grpc_deadlines import AioGrpcTestServer, CallLog, ClientCall, GrpcTestServer
from pytest_grpc_deadlines.calls import _hooks as hooks
from pytest_grpc_deadlines.probe import PROBE_SERVICE_NAME, ProbeAioStub, ProbeRequest, ProbeStub
from tests.calls.sites import line as _line
from tests.calls.sites import site as _site
from tests.timing import ENTRY_BOUND

UNARY = f"{PROBE_SERVICE_NAME}/Unary"
SERVER_STREAM = f"{PROBE_SERVICE_NAME}/ServerStream"
CLIENT_STREAM = f"{PROBE_SERVICE_NAME}/ClientStream"
BIDI = f"{PROBE_SERVICE_NAME}/Bidi"


# --- what a record holds --------------------------------------------------------------------------


def test_unary_call_on_a_channel_the_test_creates_is_recorded(
    grpc_test_server: GrpcTestServer, channel: grpc.Channel, grpc_calls: CallLog
) -> None:
    stub = ProbeStub(channel)
    before = time.monotonic()
    response, line = stub.Unary(ProbeRequest(), timeout=5), _line()
    after = time.monotonic()
    assert response.index == 0
    [call] = grpc_calls
    assert isinstance(call, ClientCall)
    assert (call.method, call.target, call.timeout) == (UNARY, grpc_test_server.target, 5.0)
    assert (call.code, call.details) == (grpc.StatusCode.OK, None)
    assert call.site == _site(line)
    assert before <= call.started <= after
    assert call.elapsed is not None
    assert 0 <= call.elapsed <= after - call.started


def test_server_streaming_call_is_recorded_when_the_stream_ends(
    channel: grpc.Channel, grpc_calls: CallLog
) -> None:
    responses, line = ProbeStub(channel).ServerStream(ProbeRequest(responses=3), timeout=5), _line()
    assert [r.index for r in responses] == [0, 1, 2]
    [call] = grpc_calls
    assert (call.method, call.timeout, call.code, call.site) == (
        SERVER_STREAM,
        5.0,
        grpc.StatusCode.OK,
        _site(line),
    )


def _requests(count: int) -> Iterator[Any]:
    return iter([ProbeRequest(payload=b"%d" % i) for i in range(count)])


def test_client_streaming_call_is_recorded(channel: grpc.Channel, grpc_calls: CallLog) -> None:
    response, line = ProbeStub(channel).ClientStream(_requests(3), timeout=5), _line()
    assert response.index == 3
    [call] = grpc_calls
    assert (call.method, call.timeout, call.code, call.site) == (
        CLIENT_STREAM,
        5.0,
        grpc.StatusCode.OK,
        _site(line),
    )


def test_bidi_streaming_call_is_recorded(channel: grpc.Channel, grpc_calls: CallLog) -> None:
    responses, line = ProbeStub(channel).Bidi(_requests(2), timeout=5), _line()
    assert [r.index for r in responses] == [0, 1]
    [call] = grpc_calls
    assert (call.method, call.timeout, call.code, call.site) == (
        BIDI,
        5.0,
        grpc.StatusCode.OK,
        _site(line),
    )


def test_with_call_is_recorded(channel: grpc.Channel, grpc_calls: CallLog) -> None:
    (response, rpc), line = ProbeStub(channel).Unary.with_call(ProbeRequest(), timeout=5), _line()
    assert (response.index, rpc.code()) == (0, grpc.StatusCode.OK)
    [call] = grpc_calls
    assert (call.method, call.timeout, call.code, call.site) == (
        UNARY,
        5.0,
        grpc.StatusCode.OK,
        _site(line),
    )


def test_future_is_recorded_when_it_completes(channel: grpc.Channel, grpc_calls: CallLog) -> None:
    future, line = ProbeStub(channel).Unary.future(ProbeRequest(), timeout=5), _line()
    assert future.result().index == 0
    [call] = grpc_calls
    assert (call.method, call.timeout, call.code, call.site) == (
        UNARY,
        5.0,
        grpc.StatusCode.OK,
        _site(line),
    )


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


def test_positional_timeout_is_recorded(channel: grpc.Channel, grpc_calls: CallLog) -> None:
    ProbeStub(channel).Unary(ProbeRequest(), 7)
    assert grpc_calls[0].timeout == 7.0


def test_call_without_a_timeout_is_recorded_with_none(channel: grpc.Channel, grpc_calls: CallLog) -> None:
    ProbeStub(channel).Unary(ProbeRequest())
    assert grpc_calls[0].timeout is None


def test_calls_are_recorded_in_call_order(channel: grpc.Channel, grpc_calls: CallLog) -> None:
    stub = ProbeStub(channel)
    stub.Unary(ProbeRequest(), timeout=1)
    list(stub.ServerStream(ProbeRequest(responses=1), timeout=2))
    stub.ClientStream(_requests(1), timeout=3)
    assert [(c.method, c.timeout) for c in grpc_calls] == [
        (UNARY, 1.0),
        (SERVER_STREAM, 2.0),
        (CLIENT_STREAM, 3.0),
    ]
    assert len(grpc_calls) == 3
    assert grpc_calls[-1].method == CLIENT_STREAM
    assert [c.method for c in grpc_calls[1:]] == [SERVER_STREAM, CLIENT_STREAM]


def test_calls_through_the_servers_own_channel_are_recorded(
    grpc_test_server: GrpcTestServer, grpc_calls: CallLog
) -> None:
    _, line = grpc_test_server.probe().Unary(ProbeRequest(), timeout=5), _line()
    [call] = grpc_calls
    assert (call.method, call.site) == (UNARY, _site(line))


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


# --- channels -------------------------------------------------------------------------------------


def test_channel_ready_future_works_on_a_recording_channel(channel: grpc.Channel) -> None:
    """grpc.channel_ready_future subscribes to the channel's connectivity and unsubscribes."""
    assert type(channel) is grpc_channel_module.Channel
    states: list[grpc.ChannelConnectivity] = []
    channel.subscribe(states.append)
    grpc.channel_ready_future(channel).result(timeout=10)
    channel.unsubscribe(states.append)
    assert grpc.ChannelConnectivity.READY in states


def test_secure_channel_calls_are_recorded(local_server: str, grpc_calls: CallLog) -> None:
    credentials = grpc.local_channel_credentials(grpc.LocalConnectionType.LOCAL_TCP)
    with grpc.secure_channel(local_server, credentials) as channel:
        _, line = ProbeStub(channel).Unary(ProbeRequest(), timeout=5), _line()
    [call] = grpc_calls
    assert (call.method, call.target, call.timeout, call.code, call.site) == (
        UNARY,
        local_server,
        5.0,
        grpc.StatusCode.OK,
        _site(line),
    )


@pytest.mark.asyncio
async def test_aio_secure_channel_calls_are_recorded(local_server: str, grpc_calls: CallLog) -> None:
    credentials = grpc.local_channel_credentials(grpc.LocalConnectionType.LOCAL_TCP)
    async with grpc.aio.secure_channel(local_server, credentials) as channel:
        _, line = await ProbeAioStub(channel).Unary(ProbeRequest(), timeout=5), _line()
    [call] = grpc_calls
    assert (call.target, call.timeout, call.code, call.site, call.aio) == (
        local_server,
        5.0,
        grpc.StatusCode.OK,
        _site(line),
        True,
    )


# --- asyncio --------------------------------------------------------------------------------------


async def _aio_requests(count: int) -> AsyncIterator[Any]:
    for i in range(count):
        yield ProbeRequest(payload=b"%d" % i)


@pytest.mark.asyncio
async def test_aio_calls_of_every_shape_are_recorded(
    grpc_aio_test_server: AioGrpcTestServer, grpc_calls: CallLog
) -> None:
    async with grpc.aio.insecure_channel(grpc_aio_test_server.target) as channel:
        stub = ProbeAioStub(channel)
        _, unary = await stub.Unary(ProbeRequest(), timeout=1), _line()
        _, stream = [r.index async for r in stub.ServerStream(ProbeRequest(responses=2), timeout=2)], _line()
        _, client_stream = await stub.ClientStream(_aio_requests(2), timeout=3), _line()
        _, bidi = [r.index async for r in stub.Bidi(_aio_requests(2))], _line()
    assert [(c.method, c.target, c.timeout, c.code, c.site, c.aio) for c in grpc_calls] == [
        (UNARY, grpc_aio_test_server.target, 1.0, grpc.StatusCode.OK, _site(unary), True),
        (SERVER_STREAM, grpc_aio_test_server.target, 2.0, grpc.StatusCode.OK, _site(stream), True),
        (CLIENT_STREAM, grpc_aio_test_server.target, 3.0, grpc.StatusCode.OK, _site(client_stream), True),
        (BIDI, grpc_aio_test_server.target, None, grpc.StatusCode.OK, _site(bidi), True),
    ]


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


# --- how a record ends ----------------------------------------------------------------------------


def test_a_dropped_stream_is_still_cancelled(
    grpc_test_server: GrpcTestServer, channel: grpc.Channel, grpc_calls: CallLog
) -> None:
    """grpc cancels a call object that is garbage collected; the record must not keep it alive."""
    gate = grpc_test_server.hold(SERVER_STREAM)
    stream = ProbeStub(channel).ServerStream(ProbeRequest(responses=1), timeout=30)
    assert gate.wait_entered(ENTRY_BOUND)
    del stream
    gc.collect()
    assert gate.wait_cancelled(10)
    assert grpc_calls[0].code is grpc.StatusCode.CANCELLED


def _record() -> ClientCall:
    return ClientCall(method="s.S/M", target="t", timeout=None, site="t.py:1", test=None)


def test_a_call_object_without_a_status_finishes_cancelled() -> None:
    class Broken:
        def code(self) -> Any:
            raise RuntimeError("no status")

    record = _record()
    hooks._finish_from(record)(Broken())
    assert record.code is grpc.StatusCode.CANCELLED
    record = _record()
    hooks.aio_done(record, Broken())
    assert record.code is grpc.StatusCode.CANCELLED


def test_an_aio_record_is_finished_from_the_status_grpc_set_as_grpcs_own_code_would_say() -> None:
    class Status:
        def __init__(self, number: int) -> None:
            self.number = number

        def code(self) -> int:
            return self.number

        def details(self) -> str:
            return "why"

    class Call:
        def __init__(self, number: int) -> None:
            self._cython_call = type("CythonCall", (), {"_status": Status(number)})()

        async def code(self) -> grpc.StatusCode:
            raise KeyError(self._cython_call._status.number)  # grpc's own, for a number it lacks

        async def details(self) -> str:
            return "why"

    record = _record()
    hooks.aio_done(record, Call(grpc.StatusCode.DEADLINE_EXCEEDED.value[0]))
    assert (record.code, record.details) == (grpc.StatusCode.DEADLINE_EXCEEDED, "why")
    record = _record()
    hooks.aio_done(record, Call(99))  # no such code: as the call's own code() fails
    assert (record.code, record.details) == (grpc.StatusCode.CANCELLED, None)


def test_watch_settles_a_call_that_ended_before_its_callback_ran() -> None:
    class Done:
        def __init__(self) -> None:
            self.callbacks: list[Any] = []

        def add_done_callback(self, fn: Any) -> None:
            self.callbacks.append(fn)

        def done(self) -> bool:
            return True

        def code(self) -> grpc.StatusCode:
            return grpc.StatusCode.OK

        def details(self) -> str:
            return ""

    record, call = _record(), Done()
    hooks.watch(record, call, hooks._finish_from(record))
    record.settle()
    assert record.code is grpc.StatusCode.OK


def test_an_error_that_is_not_grpcs_finishes_without_a_status() -> None:
    record = _record()
    hooks.finish_from_error(record, ValueError("closed"))
    assert (record.code, record.details) == (None, "ValueError: closed")
