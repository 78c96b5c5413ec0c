"""The plugin observes calls and changes nothing: code under test gets grpc's own objects, errors,
messages and metadata.

Most tests here are cases that other projects' suites hit (Google's generated clients and
google-api-core, OpenTelemetry, pytest-grpc), checked against a real server.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from typing import Any
from unittest import mock

import grpc
import grpc.aio
import pytest
import wrapt
from grpc import _channel as grpc_channel
from grpc.aio import _channel as grpc_aio_channel

from pytest_grpc_deadlines import AioGrpcTestServer, CallLog, GrpcTestServer
from pytest_grpc_deadlines.calls import _recording as recording
from pytest_grpc_deadlines.calls._hooks import MOVED
from pytest_grpc_deadlines.calls._recorder import CALL_ID_HEADER
from pytest_grpc_deadlines.probe import PROBE_SERVICE_NAME, ProbeAioStub, ProbeRequest, ProbeStub
from pytest_grpc_deadlines.servers._pool import ServerFactory
from tests.rpc import unary_stream

pytest_plugins = ["pytester"]

UNARY = f"{PROBE_SERVICE_NAME}/Unary"
QUIET = ("-p", "no:cacheprovider", "-p", "no:hypothesispytest", "-p", "no:asyncio")
SERVER_STREAM = f"{PROBE_SERVICE_NAME}/ServerStream"
META = "tests.Meta/Echo"


class _Details(grpc.ClientCallDetails):
    def __init__(self, details: Any, timeout: float | None) -> None:
        self.method = details.method
        self.timeout = timeout
        self.metadata = details.metadata
        self.credentials = details.credentials
        self.wait_for_ready = details.wait_for_ready
        self.compression = getattr(details, "compression", None)


class _SetTimeout(grpc.UnaryUnaryClientInterceptor):
    def intercept_unary_unary(self, continuation: Any, details: Any, request: Any) -> Any:
        return continuation(_Details(details, 3.0), request)


# --- grpc's own types -----------------------------------------------------------------------------


def test_a_sync_channel_and_its_multicallables_are_grpcs_own(
    channel: grpc.Channel, raw: grpc.Channel
) -> None:
    assert type(channel) is type(raw) is grpc_channel.Channel
    for kind in ("unary_unary", "unary_stream", "stream_unary", "stream_stream"):
        recorded, plain = getattr(channel, kind)("/a/b"), getattr(raw, kind)("/a/b")
        assert type(recorded) is type(plain)
    assert type(channel._channel) is type(raw._channel)  # grpc's own private attribute, untouched


@pytest.mark.asyncio
async def test_an_aio_channel_and_its_multicallables_are_grpcs_own(
    grpc_aio_test_server: AioGrpcTestServer, grpc_calls: CallLog
) -> None:
    async with grpc.aio.insecure_channel(grpc_aio_test_server.target) as channel:
        channel_type: type = type(channel)
        assert channel_type is grpc_aio_channel.Channel
        assert isinstance(channel, grpc.aio.Channel)
        assert isinstance(channel.unary_unary("/a/b"), grpc.aio.UnaryUnaryMultiCallable)
        assert isinstance(channel.unary_stream("/a/b"), grpc.aio.UnaryStreamMultiCallable)
        assert isinstance(channel.stream_unary("/a/b"), grpc.aio.StreamUnaryMultiCallable)
        assert isinstance(channel.stream_stream("/a/b"), grpc.aio.StreamStreamMultiCallable)
        call = ProbeAioStub(channel).ServerStream(ProbeRequest(responses=2), timeout=5)
        assert type(call).__name__ == "UnaryStreamCall"  # not an intercepted call: no interceptor added
        assert [m.index async for m in call] == [0, 1]
    [record] = grpc_calls
    assert (record.timeout, record.code) == (5.0, grpc.StatusCode.OK)


@pytest.mark.asyncio
async def test_patching_an_aio_channels_class_works(grpc_aio_test_server: AioGrpcTestServer) -> None:
    channel = grpc.aio.insecure_channel(grpc_aio_test_server.target)
    with mock.patch.object(type(channel), "close") as close:
        await channel.close()
    close.assert_called_once()
    await channel.close()


# --- errors, streams and metadata pass through ----------------------------------------------------


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
    handler: grpc.RpcMethodHandler[Any, Any] = grpc.unary_unary_rpc_method_handler(servicer.Echo)
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler("tests.Meta", {"Echo": handler}),))


def test_metadata_passes_through_and_only_the_pairing_header_is_added(
    grpc_test_server_factory: ServerFactory,
) -> None:
    server = grpc_test_server_factory((_add_meta, _MetaServicer()))

    def call(chan: grpc.Channel) -> tuple[list[str], Any, Any]:
        echo: grpc.UnaryUnaryMultiCallable[bytes, bytes] = chan.unary_unary(f"/{META}")
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


@pytest.mark.asyncio
async def test_the_callers_own_aio_metadata_object_is_left_as_it_was(
    grpc_aio_test_server: AioGrpcTestServer, grpc_calls: CallLog
) -> None:
    metadata = grpc.aio.Metadata(("x-user", "1"))
    stub = grpc_aio_test_server.probe()
    for _ in range(2):
        await stub.Unary(ProbeRequest(), timeout=5, metadata=metadata)
    assert list(metadata) == [("x-user", "1")]  # the pairing header went on a copy
    assert len(grpc_calls) == 2


# --- Google's generated clients and google-api-core -----------------------------------------------


def test_intercept_channel_over_a_mock_does_not_follow_it(grpc_calls: CallLog) -> None:
    """GAPIC transports do this in their tests; nothing walks the mock's attributes."""
    began = time.monotonic()
    inner = mock.Mock()
    channel = grpc.intercept_channel(inner, _SetTimeout())
    unary_stream(channel, "/a/b")(b"", timeout=5)
    inner.unary_stream.assert_called_once()
    assert time.monotonic() - began < 5  # margin: it returns in microseconds; a walk never does
    assert list(grpc_calls) == []


@pytest.mark.asyncio
async def test_google_api_core_wrap_errors_streams_from_a_plugin_server(
    grpc_aio_test_server: AioGrpcTestServer, grpc_calls: CallLog
) -> None:
    grpc_helpers_async = pytest.importorskip("google.api_core.grpc_helpers_async")
    stub = grpc_aio_test_server.probe()
    wrapped = grpc_helpers_async.wrap_errors(stub.ServerStream)  # dispatches on grpc.aio's types
    call = await wrapped(ProbeRequest(responses=3), timeout=5)
    assert [m.index async for m in call] == [0, 1, 2]
    [record] = grpc_calls
    assert (record.method, record.timeout, record.code) == (
        "pytest_grpc_deadlines.probe.v1.Probe/ServerStream",
        5.0,
        grpc.StatusCode.OK,
    )


# --- deadlines set elsewhere ----------------------------------------------------------------------


def test_a_deadline_an_interceptor_sets_is_the_one_recorded(
    channel: grpc.Channel, grpc_calls: CallLog, grpc_test_server: GrpcTestServer
) -> None:
    ProbeStub(grpc.intercept_channel(channel, _SetTimeout())).Unary(ProbeRequest())
    [call] = grpc_calls
    assert (call.timeout, call.code) == (3.0, grpc.StatusCode.OK)
    [seen] = grpc_test_server.calls
    assert seen.deadline is not None
    assert seen.deadline <= 3.1  # margin: grpc's timeout header rounds 1-5 s up by up to 9 ms


class _AioSetTimeout(grpc.aio.UnaryUnaryClientInterceptor):
    async def intercept_unary_unary(self, continuation: Any, details: Any, request: Any) -> Any:
        return await continuation(details._replace(timeout=3.0), request)


@pytest.mark.asyncio
async def test_an_aio_interceptor_appended_after_the_channel_was_made_is_seen(
    grpc_aio_test_server: AioGrpcTestServer, grpc_calls: CallLog
) -> None:
    """Google's generated asyncio transports append their interceptor to a channel they are given."""
    async with grpc.aio.insecure_channel(grpc_aio_test_server.target) as channel:
        channel._unary_unary_interceptors.append(_AioSetTimeout())  # type: ignore[attr-defined]
        await ProbeAioStub(channel).Unary(ProbeRequest())
    [call] = grpc_calls
    assert call.timeout is not None
    # margin: read back from the call's deadline, microseconds off idle, milliseconds if the
    # thread is descheduled in between on a loaded machine
    assert abs(call.timeout - 3.0) <= MOVED
    assert (call.timeout_source, call.code) == ("interceptor", grpc.StatusCode.OK)


# --- other gRPC plugins and instrumentation -------------------------------------------------------


def test_pytest_grpcs_own_example_passes_beside_this_plugin(pytester: pytest.Pytester) -> None:
    pytest.importorskip("pytest_grpc")
    pytester.makepyfile(
        """
        import pytest
        from pytest_grpc_deadlines.probe import ProbeRequest, ProbeServicer, ProbeStub
        from pytest_grpc_deadlines.probe import add_ProbeServicer_to_server

        @pytest.fixture(scope="module")
        def grpc_add_to_server():
            return add_ProbeServicer_to_server

        @pytest.fixture(scope="module")
        def grpc_servicer():
            return ProbeServicer()

        @pytest.fixture(scope="module")
        def grpc_stub_cls(grpc_channel):
            return ProbeStub

        def test_pytest_grpc(grpc_stub):
            assert grpc_stub.Unary(ProbeRequest(), timeout=5).index == 0

        def test_ours(grpc_test_server):
            assert grpc_test_server.probe().Unary(ProbeRequest(), timeout=5).index == 0
        """
    )
    # pytest-grpc's grpc_addr leaves its port-probing socket open: its ResourceWarning is not ours.
    result = pytester.runpytest(
        *QUIET, "-p", "pytest_grpc", "-W", "ignore::pytest.PytestUnraisableExceptionWarning"
    )
    result.assert_outcomes(passed=2)


def _unwind() -> int:
    depth = recording._depth
    for _ in range(depth):
        recording.uninstall()
    return depth


def _rewind(depth: int) -> None:
    for _ in range(depth):
        recording.install()


@pytest.mark.parametrize("order", ["otel-first", "plugin-first"])
def test_opentelemetry_instruments_and_uninstruments_around_the_plugin(
    grpc_test_server: GrpcTestServer, grpc_calls: CallLog, order: str
) -> None:
    otel = pytest.importorskip("opentelemetry.instrumentation.grpc")
    original = grpc.insecure_channel
    client = otel.GrpcInstrumentorClient()
    depth = _unwind() if order == "otel-first" else 0
    try:
        client.instrument()
        _rewind(depth)
        with grpc.insecure_channel(grpc_test_server.target) as channel:
            assert type(channel) is not grpc_channel.Channel  # OpenTelemetry's interceptor is on it
            ProbeStub(channel).Unary(ProbeRequest(), timeout=5)
    finally:
        client.uninstrument()
    assert grpc.insecure_channel is original  # uninstrument worked
    with grpc.insecure_channel(grpc_test_server.target) as channel:
        assert type(channel) is grpc_channel.Channel
        ProbeStub(channel).Unary(ProbeRequest(), timeout=6)
    assert [c.timeout for c in grpc_calls] == [5.0, 6.0]  # recorded both times, once each


@pytest.mark.parametrize("order", ["otel-first", "plugin-first"])
@pytest.mark.asyncio
async def test_opentelemetry_aio_instruments_and_uninstruments_around_the_plugin(
    grpc_aio_test_server: AioGrpcTestServer, grpc_calls: CallLog, order: str
) -> None:
    otel = pytest.importorskip("opentelemetry.instrumentation.grpc")
    original = grpc.aio.insecure_channel
    client = otel.GrpcAioInstrumentorClient()
    depth = _unwind() if order == "otel-first" else 0
    try:
        client.instrument()
        _rewind(depth)
        async with grpc.aio.insecure_channel(grpc_aio_test_server.target) as channel:
            await ProbeAioStub(channel).Unary(ProbeRequest(), timeout=5)
    finally:
        client.uninstrument()
    assert grpc.aio.insecure_channel is original
    async with grpc.aio.insecure_channel(grpc_aio_test_server.target) as channel:
        await ProbeAioStub(channel).Unary(ProbeRequest(), timeout=6)
    assert [c.timeout for c in grpc_calls] == [5.0, 6.0]


def test_uninstall_leaves_a_wrapper_another_library_put_over_ours(grpc_test_server: GrpcTestServer) -> None:
    """Another wrapt wrapper on top of ours: our uninstall splices ours out and leaves theirs."""
    depth = _unwind()
    seen: list[str] = []

    def theirs(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
        seen.append("theirs")
        return wrapped(*args, **kwargs)

    original = vars(grpc_channel.Channel)["unary_unary"]
    try:
        recording.install()
        wrapt.wrap_function_wrapper(grpc_channel, "Channel.unary_unary", theirs)
        recording.uninstall()
        top = vars(grpc_channel.Channel)["unary_unary"]
        assert isinstance(top, wrapt.FunctionWrapper)
        assert top.__wrapped__ is original
        with grpc.insecure_channel(grpc_test_server.target) as channel:
            channel.unary_unary("/a/b")
        assert seen == ["theirs"]
    finally:
        grpc_channel.Channel.unary_unary = original  # type: ignore[method-assign]
        _rewind(depth)


@pytest.mark.asyncio
async def test_aio_streaming_requests_take_timeout_and_metadata_by_position(
    grpc_aio_test_server: AioGrpcTestServer, grpc_calls: CallLog
) -> None:
    """grpc.aio's client-streaming and bidi calls take ``timeout`` and ``metadata`` after the
    request iterator, by position: the call is made and recorded as given."""
    stub = grpc_aio_test_server.probe()
    reply = await stub.ClientStream(iter([ProbeRequest(), ProbeRequest()]), 5, (("x-user", "1"),))
    assert reply is not None
    bidi = stub.Bidi(iter([ProbeRequest()]), 5, (("x-user", "2"),))
    assert len([message async for message in bidi]) == 1
    recorded = [(call.timeout, call.timeout_source, call.code) for call in grpc_calls]
    assert recorded == [(5.0, "call", grpc.StatusCode.OK)] * 2
    users = [dict(served.metadata)["x-user"] for served in grpc_aio_test_server.calls]
    assert users == ["1", "2"]
    assert all(client.attempts for client in grpc_calls)  # each paired with the server's record
