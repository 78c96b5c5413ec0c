"""The plugin observes calls and changes nothing: code under test gets grpc's own objects and errors.

Each test here is a case that other projects' suites hit (Google's generated clients and
google-api-core, OpenTelemetry, pytest-grpc, threads and reruns), checked against a real server.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any
from unittest import mock

import grpc
import grpc.aio
import pytest
import wrapt
from grpc import _channel as grpc_channel
from grpc.aio import _channel as grpc_aio_channel

from pytest_grpc_deadlines.calls import _recording as recording
from pytest_grpc_deadlines.calls._hooks import MOVED
from pytest_grpc_deadlines.calls._verdicts import CallLog
from pytest_grpc_deadlines.probe import ProbeAioStub, ProbeRequest, ProbeStub
from pytest_grpc_deadlines.servers._aio import AioGrpcTestServer
from pytest_grpc_deadlines.servers._sync import GrpcTestServer

pytest_plugins = ["pytester"]

UNARY = "pytest_grpc_deadlines.probe.v1.Probe/Unary"
QUIET = ("-p", "no:cacheprovider", "-p", "no:hypothesispytest", "-p", "no:asyncio")


@pytest.fixture
def channel(grpc_test_server: GrpcTestServer) -> Iterator[grpc.Channel]:
    with grpc.insecure_channel(grpc_test_server.target) as channel:
        yield channel


@pytest.fixture
def raw(grpc_test_server: GrpcTestServer) -> Iterator[grpc.Channel]:
    """A channel whose calls are not recorded: grpc's behaviour without the plugin."""
    channel = recording.raw_insecure_channel(grpc_test_server.target)
    try:
        yield channel
    finally:
        channel.close()


# --- grpc's own types -------------------------------------------------------------------------


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
        assert type(channel) is grpc_aio_channel.Channel
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


# --- arguments and errors as grpc gives them ----------------------------------------------------


def test_keyword_request_iterator_is_accepted(channel: grpc.Channel, grpc_calls: CallLog) -> None:
    reply = ProbeStub(channel).ClientStream(request_iterator=iter([ProbeRequest()] * 2), timeout=5)
    assert reply.index == 2
    [call] = grpc_calls
    assert (call.timeout, call.code) == (5.0, grpc.StatusCode.OK)


def _error(call: Any) -> tuple[type[BaseException], str]:
    try:
        call()
    except BaseException as error:  # what grpc raises, whatever it is
        return type(error), str(error)
    raise AssertionError("no error")


@pytest.mark.parametrize(
    "bad",
    [
        pytest.param(lambda stub: stub.Unary(ProbeRequest(), timeout="abc"), id="timeout-str"),
        pytest.param(lambda stub: stub.Unary(ProbeRequest(), 5, None, None, None, None, "extra"), id="extra"),
        pytest.param(lambda stub: stub.Unary(ProbeRequest(), metadata=5, timeout=5), id="metadata-int"),
        pytest.param(lambda stub: stub.Unary(ProbeRequest(), timeout=5, nonsense=1), id="unknown-kw"),
        pytest.param(lambda stub: stub.Unary.future(ProbeRequest(), timeout="abc").result(), id="future"),
        pytest.param(lambda stub: next(stub.ServerStream(b"not a message", timeout=5)), id="stream"),
    ],
)
def test_errors_are_grpcs_own(channel: grpc.Channel, raw: grpc.Channel, bad: Any) -> None:
    assert _error(lambda: bad(ProbeStub(channel))) == _error(lambda: bad(ProbeStub(raw)))


def test_a_stream_grpc_refuses_raises_at_the_call_as_without_the_plugin(
    channel: grpc.Channel, raw: grpc.Channel
) -> None:
    """No interceptor machinery in between: grpc raises where it raises, not at iteration."""
    for each in (channel, raw):
        with pytest.raises(grpc.RpcError):
            ProbeStub(each).ServerStream(b"not a message", timeout=5)


@pytest.mark.asyncio
async def test_an_aio_error_surfaces_where_grpc_raises_it(grpc_aio_test_server: AioGrpcTestServer) -> None:
    async with grpc.aio.insecure_channel(grpc_aio_test_server.target) as channel:
        with pytest.raises(TypeError):  # at the call, not at the await
            channel.unary_unary("/a/b")(b"", timeout=5, metadata=5)


# --- Google's generated clients and google-api-core -----------------------------------------------


def test_intercept_channel_over_a_mock_does_not_follow_it(grpc_calls: CallLog) -> None:
    """GAPIC transports do this in their tests; nothing walks the mock's attributes."""
    began = time.monotonic()
    inner = mock.Mock()
    channel = grpc.intercept_channel(inner, _SetTimeout())
    channel.unary_stream("/a/b")(b"", timeout=5)
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


class _Details(grpc.ClientCallDetails):  # type: ignore[misc]
    def __init__(self, details: Any, timeout: float | None) -> None:
        self.method = details.method
        self.timeout = timeout
        self.metadata = details.metadata
        self.credentials = details.credentials
        self.wait_for_ready = details.wait_for_ready
        self.compression = getattr(details, "compression", None)


class _SetTimeout(grpc.UnaryUnaryClientInterceptor):  # type: ignore[misc]
    def intercept_unary_unary(self, continuation: Any, details: Any, request: Any) -> Any:
        return continuation(_Details(details, 3.0), request)


class _AioSetTimeout(grpc.aio.UnaryUnaryClientInterceptor):  # type: ignore[misc]
    async def intercept_unary_unary(self, continuation: Any, details: Any, request: Any) -> Any:
        return await continuation(details._replace(timeout=3.0), request)


def test_a_deadline_an_interceptor_sets_is_the_one_recorded(
    channel: grpc.Channel, grpc_calls: CallLog, grpc_test_server: GrpcTestServer
) -> None:
    ProbeStub(grpc.intercept_channel(channel, _SetTimeout())).Unary(ProbeRequest())
    [call] = grpc_calls
    assert (call.timeout, call.code) == (3.0, grpc.StatusCode.OK)
    [seen] = grpc_test_server.calls
    assert seen.deadline is not None
    assert seen.deadline <= 3.1  # margin: grpc's timeout header rounds 1-5 s up by up to 9 ms


@pytest.mark.asyncio
async def test_an_aio_interceptor_appended_after_the_channel_was_made_is_seen(
    grpc_aio_test_server: AioGrpcTestServer, grpc_calls: CallLog
) -> None:
    """Google's generated asyncio transports append their interceptor to a channel they are given."""
    async with grpc.aio.insecure_channel(grpc_aio_test_server.target) as channel:
        channel._unary_unary_interceptors.append(_AioSetTimeout())
        await ProbeAioStub(channel).Unary(ProbeRequest())
    [call] = grpc_calls
    assert call.timeout is not None
    # margin: read back from the call's deadline, microseconds off idle, milliseconds if the
    # thread is descheduled in between on a loaded machine
    assert abs(call.timeout - 3.0) <= MOVED
    assert (call.timeout_source, call.code) == ("interceptor", grpc.StatusCode.OK)


# grpcio enforces a service config timeout on the client only (the server sees no deadline), and
# one under about 2 s failed calls at once in a measurement (grpcio 1.85): these tests use 30 s.
# grpcio enforces a service config timeout on the client only (the server sees no deadline), and
# one under about 2 s failed calls at once in a measurement (grpcio 1.85): these tests use 30 s.
SERVICE_CONFIG = json.dumps(
    {"methodConfig": [{"name": [{"service": "pytest_grpc_deadlines.probe.v1.Probe"}], "timeout": "30s"}]}
)


def test_a_service_config_timeout_is_recorded_with_its_source(
    grpc_test_server: GrpcTestServer, grpc_calls: CallLog
) -> None:
    options = [("grpc.service_config", SERVICE_CONFIG)]
    with grpc.insecure_channel(grpc_test_server.target, options=options) as channel:
        ProbeStub(channel).Unary(ProbeRequest())
        ProbeStub(channel).Unary(ProbeRequest(), timeout=60)
        ProbeStub(channel).Unary(ProbeRequest(), timeout=5)
    assert [(c.timeout, c.timeout_source, c.code) for c in grpc_calls] == [
        (30.0, "service config", grpc.StatusCode.OK),
        (30.0, "service config", grpc.StatusCode.OK),
        (5.0, "call", grpc.StatusCode.OK),
    ]


def test_the_audit_passes_a_deadline_from_an_interceptor_or_the_service_config(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(
        f"""
        import grpc
        import pytest
        from pytest_grpc_deadlines.probe import ProbeRequest, ProbeStub
        from test_transparency_helpers import SetTimeout

        @pytest.mark.grpc_require_deadlines
        def test_interceptor(grpc_test_server):
            ProbeStub(grpc.intercept_channel(grpc_test_server.channel(), SetTimeout())).Unary(ProbeRequest())

        @pytest.mark.grpc_require_deadlines
        def test_service_config(grpc_test_server):
            options = [("grpc.service_config", {SERVICE_CONFIG!r})]
            with grpc.insecure_channel(grpc_test_server.target, options=options) as channel:
                ProbeStub(channel).Unary(ProbeRequest())
        """
    )
    pytester.makepyfile(
        test_transparency_helpers="""
        import grpc

        class Details(grpc.ClientCallDetails):
            def __init__(self, details):
                self.method, self.timeout, self.metadata = details.method, 3.0, details.metadata
                self.credentials, self.wait_for_ready = details.credentials, details.wait_for_ready
                self.compression = getattr(details, "compression", None)

        class SetTimeout(grpc.UnaryUnaryClientInterceptor):
            def intercept_unary_unary(self, continuation, details, request):
                return continuation(Details(details), request)
        """
    )
    pytester.runpytest(*QUIET).assert_outcomes(passed=2)


# --- call sites ---------------------------------------------------------------------------------


def test_a_call_through_an_installed_interceptor_library_is_sited_at_the_users_line(
    channel: grpc.Channel, grpc_calls: CallLog
) -> None:
    otel = pytest.importorskip("opentelemetry.instrumentation.grpc")
    intercepted = otel.grpcext.intercept_channel(channel, otel.client_interceptor())
    ProbeStub(intercepted).Unary(ProbeRequest(), timeout=5)
    line = _line() - 1
    [call] = grpc_calls
    assert call.site == f"tests/test_transparency.py:{line}"
    assert call.library_site is not None
    assert "opentelemetry" in call.library_site  # the interceptor library's frame, shown beside it


def _line() -> int:
    import sys

    return sys._getframe(1).f_lineno


def test_a_library_named_in_ini_is_skipped_and_shown_beside_the_users_line(pytester: pytest.Pytester) -> None:
    pytester.mkpydir("mylib")
    pytester.path.joinpath("mylib", "rpc.py").write_text(
        "from pytest_grpc_deadlines.probe import ProbeRequest\n"
        "\n"
        "def fetch(stub):\n"
        "    return stub.Unary(ProbeRequest())  # the library's line\n"
    )
    pytester.makeini("[pytest]\ngrpc_call_site_skip =\n    mylib\n")
    pytester.makepyfile(
        """
        import pytest
        from mylib.rpc import fetch

        @pytest.mark.grpc_require_deadlines
        def test_fetch(grpc_test_server):
            fetch(grpc_test_server.probe())  # the user's line
        """
    )
    result = pytester.runpytest(*QUIET)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "*pytest_grpc_deadlines.probe.v1.Probe/Unary to 127.0.0.1:* with no deadline, at "
            "test_a_library_named_in_ini_is_skipped_and_shown_beside_the_users_line.py:6 (via mylib/rpc.py:4)"
        ]
    )


# --- threads and reruns -------------------------------------------------------------------------


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
                    stub.Unary(ProbeRequest())  # no deadline, from a thread
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
        grpc_channel.Channel.unary_unary = original
        _rewind(depth)


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
