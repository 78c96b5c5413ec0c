"""The caller's own interceptors, sync and asyncio: each call recorded once, with the timeout the
interceptor sent, at the caller's line; and a channel the plugin did not make stays unrecorded."""

from __future__ import annotations

import collections
from collections.abc import AsyncIterator
from typing import Any

import grpc
import grpc.aio
import pytest

from pytest_grpc_deadlines import AioGrpcTestServer, CallLog, GrpcTestServer
from pytest_grpc_deadlines.calls import _recording as recording
from pytest_grpc_deadlines.calls._hooks import MOVED as READ_BACK
from pytest_grpc_deadlines.calls._recorder import CALL_ID_HEADER
from pytest_grpc_deadlines.probe import PROBE_SERVICE_NAME, ProbeAioStub, ProbeRequest, ProbeStub
from tests.calls.sites import line as _line
from tests.calls.sites import site as _site

UNARY = f"{PROBE_SERVICE_NAME}/Unary"
SERVER_STREAM = f"{PROBE_SERVICE_NAME}/ServerStream"
CLIENT_STREAM = f"{PROBE_SERVICE_NAME}/ClientStream"
BIDI = f"{PROBE_SERVICE_NAME}/Bidi"


# --- sync interceptors ----------------------------------------------------------------------------


class _Details(
    collections.namedtuple(
        "_Details", ["method", "timeout", "metadata", "credentials", "wait_for_ready", "compression"]
    ),
    grpc.ClientCallDetails,
):
    pass


class _SetTimeout(
    grpc.UnaryUnaryClientInterceptor,
    grpc.UnaryStreamClientInterceptor,
):
    """A user interceptor that replaces the timeout and adds a header."""

    def __init__(self, timeout: float) -> None:
        self.timeout = timeout

    def _details(self, details: Any) -> _Details:
        metadata = (*(details.metadata or ()), ("x-user", "added"))
        return _Details(
            details.method,
            self.timeout,
            metadata,
            details.credentials,
            details.wait_for_ready,
            getattr(details, "compression", None),
        )

    def intercept_unary_unary(self, continuation: Any, details: Any, request: Any) -> Any:
        return continuation(self._details(details), request)

    def intercept_unary_stream(self, continuation: Any, details: Any, request: Any) -> Any:
        return continuation(self._details(details), request)


def test_intercept_channel_records_the_timeout_its_interceptor_sent(
    grpc_test_server: GrpcTestServer, channel: grpc.Channel, grpc_calls: CallLog
) -> None:
    stub = ProbeStub(grpc.intercept_channel(channel, _SetTimeout(4)))
    stub.Unary(ProbeRequest())
    stub.Unary(ProbeRequest(), timeout=30)
    stub.Unary.with_call(ProbeRequest(), timeout=30)
    stub.Unary.future(ProbeRequest()).result()
    list(stub.ServerStream(ProbeRequest(responses=1)))
    assert [c.timeout for c in grpc_calls] == [4.0] * 5
    assert [c.code for c in grpc_calls] == [grpc.StatusCode.OK] * 5
    for seen in grpc_test_server.calls:  # margin: grpc rounds a deadline up by some milliseconds
        assert seen.deadline is not None
        assert 3 < seen.deadline < 5


def test_intercept_channel_metadata_reaches_the_server(
    grpc_test_server: GrpcTestServer, channel: grpc.Channel, grpc_calls: CallLog
) -> None:
    stub = ProbeStub(grpc.intercept_channel(channel, _SetTimeout(4)))
    stub.Unary(ProbeRequest(), metadata=(("x-caller", "1"),))
    [seen] = grpc_test_server.calls
    assert ("x-caller", "1") in seen.metadata
    assert ("x-user", "added") in seen.metadata
    assert (CALL_ID_HEADER, grpc_calls[0].call_id) in seen.metadata


def test_site_is_the_callers_line_not_the_interceptors(channel: grpc.Channel, grpc_calls: CallLog) -> None:
    stub = ProbeStub(grpc.intercept_channel(channel, _SetTimeout(4)))
    _, unary = stub.Unary(ProbeRequest()), _line()
    _, future = stub.Unary.future(ProbeRequest()).result(), _line()
    _, stream = list(stub.ServerStream(ProbeRequest(responses=1))), _line()
    assert [c.site for c in grpc_calls] == [_site(unary), _site(future), _site(stream)]


def test_nested_intercept_channels_record_each_call_once(channel: grpc.Channel, grpc_calls: CallLog) -> None:
    inner = grpc.intercept_channel(channel, _SetTimeout(9))
    outer = grpc.intercept_channel(inner, _SetTimeout(8))
    ProbeStub(outer).Unary(ProbeRequest())
    [call] = grpc_calls
    assert call.timeout == 9.0  # the innermost interceptor has the last word


class _StampDetails(grpc.ClientCallDetails):
    def __init__(self, details: Any, metadata: Any) -> None:
        self.method = details.method
        self.timeout = details.timeout
        self.metadata = metadata
        self.credentials = details.credentials
        self.wait_for_ready = details.wait_for_ready
        self.compression = getattr(details, "compression", None)


class _Stamp(grpc.UnaryUnaryClientInterceptor):
    """A user interceptor that adds a header."""

    def intercept_unary_unary(self, continuation: Any, details: Any, request: Any) -> Any:
        metadata = (*(details.metadata or ()), ("x-stamp", "1"))
        return continuation(_StampDetails(details, metadata), request)


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


# --- asyncio interceptors -------------------------------------------------------------------------


class _AioSetTimeout(grpc.aio.UnaryUnaryClientInterceptor):
    async def intercept_unary_unary(self, continuation: Any, details: Any, request: Any) -> Any:
        metadata = grpc.aio.Metadata(*(details.metadata or ()), ("x-user", "added"))
        changed = grpc.aio.ClientCallDetails(
            details.method, 3.5, metadata, details.credentials, details.wait_for_ready
        )
        return await continuation(changed, request)


@pytest.mark.asyncio
async def test_aio_interceptor_timeout_is_the_one_recorded(
    grpc_aio_test_server: AioGrpcTestServer, grpc_calls: CallLog
) -> None:
    async with grpc.aio.insecure_channel(
        grpc_aio_test_server.target, interceptors=[_AioSetTimeout()]
    ) as channel:
        stub = ProbeAioStub(channel)
        _, line = await stub.Unary(ProbeRequest()), _line()
        await stub.Unary(ProbeRequest(), timeout=30)
        # Server streaming has no interceptor of its own here: its timeout is the one given.
        [_ async for _ in stub.ServerStream(ProbeRequest(responses=1), timeout=2)]
    # margin: a timeout an aio interceptor set is read back from the call's deadline, exact to the
    # millisecond idle and a few ms late if the thread is descheduled in between (READ_BACK)
    assert [(c.timeout, c.code) for c in grpc_calls] == [
        (pytest.approx(3.5, abs=READ_BACK), grpc.StatusCode.OK),
        (pytest.approx(3.5, abs=READ_BACK), grpc.StatusCode.OK),
        (2.0, grpc.StatusCode.OK),
    ]
    assert grpc_calls[0].site == _site(line)
    first = grpc_aio_test_server.calls[0]
    assert ("x-user", "added") in first.metadata
    assert (CALL_ID_HEADER, grpc_calls[0].call_id) in first.metadata


@pytest.mark.asyncio
async def test_aio_secure_channel_keeps_positional_interceptors(
    local_server: str, grpc_calls: CallLog
) -> None:
    credentials = grpc.local_channel_credentials(grpc.LocalConnectionType.LOCAL_TCP)
    channel = grpc.aio.secure_channel(local_server, credentials, None, None, [_AioSetTimeout()])
    async with channel:
        await ProbeAioStub(channel).Unary(ProbeRequest())
    assert grpc_calls[0].timeout == pytest.approx(3.5, abs=READ_BACK)  # margin: see above


async def _requests(count: int) -> AsyncIterator[Any]:
    for _ in range(count):
        yield ProbeRequest()


def _aio_details(details: Any, timeout: float) -> Any:
    return grpc.aio.ClientCallDetails(
        details.method, timeout, details.metadata, details.credentials, details.wait_for_ready
    )


class _AioUnaryStreamTimeout(grpc.aio.UnaryStreamClientInterceptor):
    """User interceptors that send every streaming call with a 4.5 s timeout (one class per
    kind: grpc.aio files an interceptor under the first kind it implements only)."""

    async def intercept_unary_stream(self, continuation: Any, details: Any, request: Any) -> Any:
        return await continuation(_aio_details(details, 4.5), request)


class _AioStreamUnaryTimeout(grpc.aio.StreamUnaryClientInterceptor):
    async def intercept_stream_unary(self, continuation: Any, details: Any, requests: Any) -> Any:
        return await continuation(_aio_details(details, 4.5), requests)


class _AioStreamStreamTimeout(grpc.aio.StreamStreamClientInterceptor):
    async def intercept_stream_stream(self, continuation: Any, details: Any, requests: Any) -> Any:
        return await continuation(_aio_details(details, 4.5), requests)


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
