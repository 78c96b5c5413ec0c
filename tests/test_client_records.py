"""``grpc_calls``: what the client side of every RPC a test makes looks like, and what it pairs with.

The plugin is loaded for this run, so every channel these tests create records its calls.
"""

from __future__ import annotations

import collections
import functools
import gc
import os
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterator
from concurrent import futures
from typing import Any

import grpc
import grpc.aio
import pytest

from pytest_grpc_deadlines.calls import _recording as recording
from pytest_grpc_deadlines.calls._hooks import MOVED as READ_BACK
from pytest_grpc_deadlines.calls._recorder import CALL_ID_HEADER, ClientCall
from pytest_grpc_deadlines.calls._verdicts import CallLog
from pytest_grpc_deadlines.probe import (
    PROBE_SERVICE_NAME,
    ProbeAioStub,
    ProbeRequest,
    ProbeServicer,
    ProbeStub,
    add_ProbeServicer_to_server,
)
from pytest_grpc_deadlines.servers._aio import AioGrpcTestServer
from pytest_grpc_deadlines.servers._pool import ServerFactory
from pytest_grpc_deadlines.servers._sync import GrpcTestServer
from tests.timing import ENTRY_BOUND, REACHES_SERVER

pytest_plugins = ["pytester"]

UNARY = f"{PROBE_SERVICE_NAME}/Unary"
SERVER_STREAM = f"{PROBE_SERVICE_NAME}/ServerStream"
CLIENT_STREAM = f"{PROBE_SERVICE_NAME}/ClientStream"
BIDI = f"{PROBE_SERVICE_NAME}/Bidi"
META = "tests.Meta/Echo"


def _line() -> int:
    """The caller's line: call it on the line that makes the RPC."""
    return sys._getframe(1).f_lineno


def _site(line: int) -> str:
    return f"{os.path.relpath(__file__)}:{line}"


@pytest.fixture
def channel(grpc_test_server: GrpcTestServer) -> Iterator[grpc.Channel]:
    """A channel the test creates itself, as code under test would."""
    with grpc.insecure_channel(grpc_test_server.target) as channel:
        yield channel


@pytest.fixture
def raw_server() -> Iterator[tuple[str, list[tuple[tuple[str, Any], ...]]]]:
    """A plain grpc server (not the plugin's) hosting the probe; yields its target and the
    request metadata of each call it received."""
    seen: list[tuple[tuple[str, Any], ...]] = []

    class Record(grpc.ServerInterceptor):  # type: ignore[misc]
        def intercept_service(self, continuation: Callable[[Any], Any], details: Any) -> Any:
            seen.append(tuple(details.invocation_metadata))
            return continuation(details)

    executor = futures.ThreadPoolExecutor(2)
    server = grpc.server(executor, interceptors=(Record(),))
    add_ProbeServicer_to_server(ProbeServicer(), server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        yield f"127.0.0.1:{port}", seen
    finally:
        server.stop(None)
        executor.shutdown(wait=False)


def _requests(count: int) -> Iterator[Any]:
    return iter([ProbeRequest(payload=b"%d" % i) for i in range(count)])


# --- what a record holds ------------------------------------------------------------------


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


def test_failed_call_records_its_code_and_details(
    grpc_test_server: GrpcTestServer, channel: grpc.Channel, grpc_calls: CallLog
) -> None:
    grpc_test_server.fail(UNARY, grpc.StatusCode.NOT_FOUND, "no such thing")
    with pytest.raises(grpc.RpcError):
        ProbeStub(channel).Unary(ProbeRequest(), timeout=5)
    [call] = grpc_calls
    assert (call.code, call.details) == (grpc.StatusCode.NOT_FOUND, "no such thing")
    assert call.elapsed is not None


def test_call_to_an_address_nothing_serves_is_recorded_unavailable(grpc_calls: CallLog) -> None:
    # A unix socket path in a directory that does not exist: nothing can listen there.
    target = "unix:/nonexistent-grpc-deadlines-dir/socket"
    with grpc.insecure_channel(target) as channel, pytest.raises(grpc.RpcError) as info:
        ProbeStub(channel).Unary(ProbeRequest(), timeout=5)
    assert info.value.code() is grpc.StatusCode.UNAVAILABLE
    [call] = grpc_calls
    assert (call.target, call.code) == (target, grpc.StatusCode.UNAVAILABLE)


# --- the caller's own interceptors ----------------------------------------------------------


class _Details(
    collections.namedtuple(
        "_Details", ["method", "timeout", "metadata", "credentials", "wait_for_ready", "compression"]
    ),
    grpc.ClientCallDetails,  # type: ignore[misc]
):
    pass


class _SetTimeout(
    grpc.UnaryUnaryClientInterceptor,  # type: ignore[misc]
    grpc.UnaryStreamClientInterceptor,  # type: ignore[misc]
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


# --- secure channels ------------------------------------------------------------------------


@pytest.fixture
def local_server() -> Iterator[str]:
    """A plain grpc server with local (loopback) credentials: TLS-free secure channels."""
    executor = futures.ThreadPoolExecutor(2)
    server = grpc.server(executor)
    add_ProbeServicer_to_server(ProbeServicer(), server)
    credentials = grpc.local_server_credentials(grpc.LocalConnectionType.LOCAL_TCP)
    port = server.add_secure_port("127.0.0.1:0", credentials)
    server.start()
    try:
        yield f"127.0.0.1:{port}"
    finally:
        server.stop(None)
        executor.shutdown(wait=False)


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


# --- asyncio --------------------------------------------------------------------------------


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
async def test_aio_failed_call_records_its_code_and_passes_the_error_through(
    grpc_aio_test_server: AioGrpcTestServer, grpc_calls: CallLog
) -> None:
    grpc_aio_test_server.fail(UNARY, grpc.StatusCode.PERMISSION_DENIED, "no")
    async with grpc.aio.insecure_channel(grpc_aio_test_server.target) as channel:
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await ProbeAioStub(channel).Unary(ProbeRequest(), timeout=5)
    assert (info.value.code(), info.value.details()) == (grpc.StatusCode.PERMISSION_DENIED, "no")
    [call] = grpc_calls
    assert (call.code, call.details) == (grpc.StatusCode.PERMISSION_DENIED, "no")


class _AioSetTimeout(grpc.aio.UnaryUnaryClientInterceptor):  # type: ignore[misc]
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


# --- attribution ----------------------------------------------------------------------------


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


# --- recording changes nothing --------------------------------------------------------------


def _raw(target: str) -> grpc.Channel:
    return recording.raw_insecure_channel(target)


def _error(call: Callable[[], object]) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as info:
        call()
    return info.value


def test_errors_pass_through_with_the_same_type_code_and_details(
    grpc_test_server: GrpcTestServer, channel: grpc.Channel
) -> None:
    grpc_test_server.fail(UNARY, grpc.StatusCode.FAILED_PRECONDITION, "not now")
    raw = _raw(grpc_test_server.target)
    try:
        for method in ("__call__", "with_call"):
            expected = _error(functools.partial(getattr(ProbeStub(raw).Unary, method), ProbeRequest(), 5))
            got = _error(functools.partial(getattr(ProbeStub(channel).Unary, method), ProbeRequest(), 5))
            assert type(got) is type(expected)
            assert (got.code(), got.details()) == (expected.code(), expected.details())
        expected_future = ProbeStub(raw).Unary.future(ProbeRequest(), timeout=5)
        got_future = ProbeStub(channel).Unary.future(ProbeRequest(), timeout=5)
        assert type(got_future) is type(expected_future)
        assert type(got_future.exception()) is type(expected_future.exception())
        assert got_future.code() is expected_future.code() is grpc.StatusCode.FAILED_PRECONDITION
    finally:
        raw.close()


def test_a_failing_stream_passes_its_messages_and_error_through(
    grpc_test_server: GrpcTestServer, channel: grpc.Channel, grpc_calls: CallLog
) -> None:
    grpc_test_server.fail(SERVER_STREAM, grpc.StatusCode.DATA_LOSS, "cut", after_messages=2)

    def collect(chan: grpc.Channel) -> tuple[list[int], grpc.RpcError]:
        messages: list[int] = []
        with pytest.raises(grpc.RpcError) as info:
            for response in ProbeStub(chan).ServerStream(ProbeRequest(responses=5), timeout=5):
                messages.append(response.index)
        return messages, info.value

    raw = _raw(grpc_test_server.target)
    try:
        expected_messages, expected = collect(raw)
    finally:
        raw.close()
    messages, got = collect(channel)
    assert messages == expected_messages == [0, 1]
    assert type(got) is type(expected)
    assert (got.code(), got.details()) == (expected.code(), expected.details())
    assert (grpc_calls[0].code, grpc_calls[0].details) == (grpc.StatusCode.DATA_LOSS, "cut")


class _MetaServicer:
    """Sends initial and trailing metadata; answers with the request header names it saw."""

    def Echo(self, request: bytes, context: Any) -> bytes:
        context.send_initial_metadata((("x-initial", "i"),))
        context.set_trailing_metadata((("x-trailer", "t"),))
        return ",".join(key for key, _ in context.invocation_metadata()).encode()


def _add_meta(servicer: _MetaServicer, server: Any) -> None:
    handler = grpc.unary_unary_rpc_method_handler(servicer.Echo)
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler("tests.Meta", {"Echo": handler}),))


def test_metadata_passes_through_and_only_the_pairing_header_is_added(
    grpc_test_server_factory: ServerFactory,
) -> None:
    server = grpc_test_server_factory((_add_meta, _MetaServicer()))

    def call(chan: grpc.Channel) -> tuple[list[str], Any, Any]:
        echo = chan.unary_unary(f"/{META}")
        response, rpc = echo.with_call(b"", timeout=5, metadata=(("x-caller", "c"),))
        return response.decode().split(","), tuple(rpc.initial_metadata()), tuple(rpc.trailing_metadata())

    raw = _raw(server.target)
    try:
        expected_keys, expected_initial, expected_trailing = call(raw)
    finally:
        raw.close()
    keys, initial, trailing = call(server.channel())
    assert "x-caller" in expected_keys
    assert sorted(keys) == sorted([*expected_keys, CALL_ID_HEADER])
    assert ("x-initial", "i") in initial
    assert ("x-trailer", "t") in trailing
    assert (initial, trailing) == (expected_initial, expected_trailing)


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


# --- pairs and verdicts ---------------------------------------------------------------------


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
