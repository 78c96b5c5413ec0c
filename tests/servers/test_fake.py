"""The fake-clock server (grpcio-testing): deadlines without sleeping, shapes, metadata, errors."""

from __future__ import annotations

import logging
import math
import queue
import threading
import time
from typing import Any

import grpc
import pytest

from pytest_grpc_deadlines import FakeRpc, FakeServer, MethodError
from pytest_grpc_deadlines.probe import (
    PROBE_SERVICE,
    PROBE_SERVICE_NAME,
    ProbeRequest,
    ProbeResponse,
    ProbeServicer,
    add_ProbeServicer_to_server,
)
from pytest_grpc_deadlines.servers._fake import Metadatum

UNARY = f"{PROBE_SERVICE_NAME}/Unary"
SERVER_STREAM = f"{PROBE_SERVICE_NAME}/ServerStream"
CLIENT_STREAM = f"{PROBE_SERVICE_NAME}/ClientStream"
BIDI = f"{PROBE_SERVICE_NAME}/Bidi"

OK = grpc.StatusCode.OK
DEADLINE_EXCEEDED = grpc.StatusCode.DEADLINE_EXCEEDED
CANCELLED = grpc.StatusCode.CANCELLED

#: Real seconds to wait for something that happens at once (a handler thread starting or
#: returning after the fake clock moved). # margin: it takes well under 1 ms idle.
PROMPT = 5.0

_INNER = ("-p", "no:cacheprovider", "-p", "no:hypothesispytest", "-p", "no:asyncio")

pytestmark = pytest.mark.needs_grpc_testing


class BackendWaiter(ProbeServicer):
    """Unary waits for a backend that never answers, giving up only when the call ends: no real
    timeout anywhere, so only the fake deadline (or a cancel) can end it."""

    def __init__(self) -> None:
        self.entered = threading.Event()
        self.remaining: list[float | None] = []
        self.active_after_wait: bool | None = None

    def Unary(self, request: Any, context: Any) -> Any:
        self.remaining.append(context.time_remaining())
        ended = threading.Event()
        registered = context.add_callback(ended.set)
        self.entered.set()
        if registered:
            ended.wait()
        self.active_after_wait = context.is_active()
        self.remaining.append(context.time_remaining())
        return ProbeResponse(index=1)  # too late: the client never sees it


def _entered(servicer: BackendWaiter) -> None:
    assert servicer.entered.wait(PROMPT)


def _new_threads(before: set[threading.Thread]) -> list[str]:
    """Threads started since ``before`` still alive after a short grace (grpcio-testing runs a
    servicer's add_callback callbacks on a thread of their own that ends just after)."""
    give_up = time.monotonic() + PROMPT
    while True:
        alive = [t.name for t in threading.enumerate() if t not in before and t.is_alive()]
        if not alive or time.monotonic() > give_up:
            return alive
        time.sleep(0.001)  # margin: a poll step only; the loop ends on the condition or give_up


# --- deadlines on the fake clock ----------------------------------------------------------------


def test_a_30_s_deadline_expires_with_zero_real_sleeping() -> None:
    servicer = BackendWaiter()
    started = time.perf_counter()
    with FakeServer((PROBE_SERVICE, servicer)) as fake:
        rpc = fake.invoke_unary(UNARY, ProbeRequest(), timeout=30)
        _entered(servicer)
        fake.advance(29)
        assert not rpc.wait_handler(wait=0)  # 1 s left: still waiting
        assert fake.advance(2) == 31.0
        response, code, _ = rpc.termination()
        assert rpc.wait_handler(wait=PROMPT)
    elapsed = time.perf_counter() - started
    assert (response, code) == (None, DEADLINE_EXCEEDED)
    assert servicer.remaining == [30.0, 0.0]
    assert servicer.active_after_wait is False
    # margin: zero real sleeps: about 1 ms idle, 61 ms seen with both cores busy in CI; 1 s is
    # 30 times below the 30 s a real wait would take.
    assert elapsed < 1.0


def test_the_deadline_passes_exactly_when_the_clock_reaches_it() -> None:
    servicer = BackendWaiter()
    with FakeServer((PROBE_SERVICE, servicer), start=1000.0) as fake:
        rpc = fake.invoke_unary(UNARY, ProbeRequest(), timeout=30)
        _entered(servicer)
        fake.advance(29.5)
        assert not rpc.wait_handler(wait=0)
        fake.advance(0.5)
        assert fake.now() == 1030.0
        assert rpc.termination()[1] is DEADLINE_EXCEEDED


def test_the_probe_service_delay_ends_when_the_fake_deadline_passes(grpc_fake_server: FakeServer) -> None:
    """ProbeServicer waits on an event that add_callback sets: a delay far beyond the deadline
    ends when the fake clock passes it. Its shorter delays are real seconds, though."""
    assert grpc_fake_server.now() == 0.0
    for _ in range(20):
        rpc = grpc_fake_server.invoke_unary(UNARY, ProbeRequest(delay_seconds=3600), timeout=30)
        grpc_fake_server.advance(31)
        assert rpc.termination() == (None, DEADLINE_EXCEEDED, "Took too much time!")
        assert rpc.wait_handler(wait=PROMPT)


def test_a_call_that_ends_in_time_is_ok_and_sees_the_exact_fake_deadline(
    grpc_fake_server: FakeServer,
) -> None:
    grpc_fake_server.advance(100)
    response, code, details = grpc_fake_server.invoke_unary(UNARY, ProbeRequest(), timeout=30).termination()
    assert (code, details) == (OK, "")
    assert response.deadline_seconds == 30.0  # the fake clock did not move during the call


class Batcher(ProbeServicer):
    """Processes ``request.responses`` items, each finished when the test says so, and stops
    early (still OK) once less than 5 s of its deadline remain."""

    def __init__(self) -> None:
        self.finished: queue.Queue[None] = queue.Queue()
        self.checked: queue.Queue[None] = queue.Queue()

    def Unary(self, request: Any, context: Any) -> Any:
        done = 0
        for _ in range(request.responses):
            self.finished.get(timeout=PROMPT)
            enough = context.time_remaining() >= 5
            self.checked.put(None)
            if not enough:
                break
            done += 1
        return ProbeResponse(index=done, deadline_seconds=context.time_remaining())


@pytest.mark.parametrize(
    ("steps", "items", "done", "left"),
    [
        ([0, 10, 10], 3, 3, 10.0),  # all three items, with 10 s to spare
        ([0, 10, 10, 6], 5, 3, 4.0),  # the fourth finishes with 4 s left: stop there
    ],
)
def test_servicer_deadline_logic_runs_on_the_fake_clock(
    steps: list[float], items: int, done: int, left: float
) -> None:
    servicer = Batcher()
    with FakeServer((PROBE_SERVICE, servicer)) as fake:
        rpc = fake.invoke_unary(UNARY, ProbeRequest(responses=items), timeout=30)
        for step in steps:
            fake.advance(step)
            servicer.finished.put(None)
            servicer.checked.get(timeout=PROMPT)  # the servicer read the clock before it moves on
        response, code, _ = rpc.termination()
    assert code is OK
    assert (response.index, response.deadline_seconds) == (done, left)


class FakeSleeper(ProbeServicer):
    """Sleeps ``request.delay_seconds`` on the fake clock (``clock.call_in``), or until the call
    ends."""

    def __init__(self) -> None:
        self.clock: Any = None
        self.scheduled = threading.Event()

    def Unary(self, request: Any, context: Any) -> Any:
        woke = threading.Event()
        self.clock.call_in(woke.set, request.delay_seconds)
        context.add_callback(woke.set)
        self.scheduled.set()
        woke.wait()
        return ProbeResponse(deadline_seconds=context.time_remaining())


@pytest.mark.parametrize(("delay", "code"), [(10, OK), (29.999, OK), (30, DEADLINE_EXCEEDED)])
def test_a_servicer_can_sleep_on_the_fake_clock(delay: float, code: grpc.StatusCode) -> None:
    servicer = FakeSleeper()
    with FakeServer((PROBE_SERVICE, servicer)) as fake:
        servicer.clock = fake.time
        rpc = fake.invoke_unary(UNARY, ProbeRequest(delay_seconds=delay), timeout=30)
        assert servicer.scheduled.wait(PROMPT)
        fake.advance(delay)  # at 30 the deadline, scheduled first, expires first
        response, actual, _ = rpc.termination()
    assert actual is code
    if code is OK:
        assert response.deadline_seconds == pytest.approx(30 - delay)


def test_no_deadline_means_time_remaining_none_and_no_expiry() -> None:
    servicer = BackendWaiter()
    with FakeServer((PROBE_SERVICE, servicer)) as fake:
        rpc = fake.invoke_unary(UNARY, ProbeRequest())
        _entered(servicer)
        fake.advance(1e9)
        assert not rpc.wait_handler(wait=0)
        rpc.cancel()
        assert rpc.wait_handler(wait=PROMPT)
    assert servicer.remaining == [None, 0.0]


@pytest.mark.parametrize("timeout", [0, -1])
def test_a_deadline_of_zero_or_less_expires_before_the_handler_runs(timeout: float) -> None:
    servicer = BackendWaiter()
    with FakeServer((PROBE_SERVICE, servicer)) as fake:
        rpc = fake.invoke_unary(UNARY, ProbeRequest(), timeout=timeout)
        assert rpc.termination() == (None, DEADLINE_EXCEEDED, "Took too much time!")
        assert rpc.wait_handler(wait=0)
    assert not servicer.entered.is_set()


def test_cancel_ends_the_call_cancelled_and_wakes_the_handler() -> None:
    servicer = BackendWaiter()
    with FakeServer((PROBE_SERVICE, servicer)) as fake:
        rpc = fake.invoke_unary(UNARY, ProbeRequest(), timeout=30)
        _entered(servicer)
        rpc.cancel()
        assert rpc.termination() == (None, CANCELLED, "Locally cancelled by application!")
        assert rpc.trailing_metadata() == ()
        assert rpc.wait_handler(wait=PROMPT)
    assert servicer.active_after_wait is False


def test_cancel_after_the_call_ended_changes_nothing(grpc_fake_server: FakeServer) -> None:
    rpc = grpc_fake_server.invoke_unary(UNARY, ProbeRequest(), timeout=5)
    assert rpc.termination()[1:] == (OK, "")
    rpc.cancel()  # grpcio-testing 1.44 itself raises UnboundLocalError here
    assert rpc.termination()[1:] == (OK, "")


def test_a_late_response_is_dropped_as_a_real_client_drops_it() -> None:
    """grpcio-testing's own termination() may return the handler's late response alongside
    DEADLINE_EXCEEDED (racy; certain once the handler has returned). The plugin never does."""
    servicer = BackendWaiter()
    with FakeServer((PROBE_SERVICE, servicer)) as fake:
        rpc = fake.invoke_unary(UNARY, ProbeRequest(), timeout=30)
        _entered(servicer)
        fake.advance(31)
        assert rpc.wait_handler(wait=PROMPT)
        raw_response, _, raw_code, _ = rpc.raw.termination()
        assert (raw_response.index, raw_code) == (1, DEADLINE_EXCEEDED)
        assert rpc.termination()[0] is None


# --- metadata and status ----------------------------------------------------------------------


class MetadataServicer(ProbeServicer):
    def __init__(self) -> None:
        self.seen: tuple[Any, ...] = ()

    def Unary(self, request: Any, context: Any) -> Any:
        self.seen = tuple(context.invocation_metadata())
        context.send_initial_metadata((("x-initial", "1"),))
        context.set_trailing_metadata((("x-trailing", "2"),))
        return ProbeResponse(index=7)


def test_metadata_both_ways() -> None:
    servicer = MetadataServicer()
    with FakeServer((PROBE_SERVICE, servicer)) as fake:
        rpc = fake.invoke_unary(UNARY, ProbeRequest(), timeout=5, metadata=[("k", "v"), ("k-bin", b"\0")])
        response, code, _ = rpc.termination()
        initial, trailing = rpc.initial_metadata(), rpc.trailing_metadata()
    assert (response.index, code) == (7, OK)
    # exactly what the test sent (no user-agent), as (key, value) tuples with .key and .value
    assert all(isinstance(entry, Metadatum) for entry in servicer.seen)
    assert [entry.key for entry in servicer.seen] == ["k", "k-bin"]
    assert servicer.seen == (("k", "v"), ("k-bin", b"\0"))
    # grpcio-testing adds an entry of its own to what the server sends
    assert ("x-initial", "1") in initial
    assert ("x-trailing", "2") in trailing
    assert "grpc.metadata_added_by_runtime" in dict(initial)
    assert "grpc.metadata_added_by_runtime" in dict(trailing)


def test_abort_gives_its_status_and_grpc_testing_logs_it(
    grpc_fake_server: FakeServer, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.ERROR):
        rpc = grpc_fake_server.invoke_unary(
            UNARY, ProbeRequest(status_code=5, status_details="gone"), timeout=5
        )
        assert rpc.termination() == (None, grpc.StatusCode.NOT_FOUND, "gone")
        assert rpc.wait_handler(wait=PROMPT)
    assert rpc.initial_metadata() == ()  # nothing sent before the abort
    assert "Exception calling application!" in caplog.messages  # real grpc logs nothing here


# --- streaming shapes -------------------------------------------------------------------------


def test_server_stream_takes_responses_then_ends(grpc_fake_server: FakeServer) -> None:
    rpc = grpc_fake_server.invoke_server_stream(SERVER_STREAM, ProbeRequest(responses=3), timeout=30)
    assert [rpc.take_response().index for _ in range(3)] == [0, 1, 2]
    assert rpc.termination() == (None, OK, "")
    with pytest.raises(ValueError, match="No more responses"):
        rpc.take_response()


class Ticker(ProbeServicer):
    """One response, then wait for the call to end."""

    def ServerStream(self, request: Any, context: Any) -> Any:
        yield ProbeResponse(index=0)
        ended = threading.Event()
        if context.add_callback(ended.set):
            ended.wait()


def test_server_stream_deadline_after_the_first_response() -> None:
    with FakeServer((PROBE_SERVICE, Ticker())) as fake:
        rpc = fake.invoke_server_stream(SERVER_STREAM, ProbeRequest(), timeout=30)
        assert rpc.take_response().index == 0
        fake.advance(31)
        assert rpc.termination() == (None, DEADLINE_EXCEEDED, "Took too much time!")
        assert rpc.wait_handler(wait=PROMPT)
        with pytest.raises(ValueError, match="No more responses"):
            rpc.take_response()


def test_client_stream(grpc_fake_server: FakeServer) -> None:
    rpc = grpc_fake_server.invoke_client_stream(CLIENT_STREAM, timeout=30)
    rpc.send_request(ProbeRequest())
    rpc.send_request(ProbeRequest())
    rpc.requests_closed()
    response, code, _ = rpc.termination()
    assert (response.index, response.deadline_seconds, code) == (2, 30.0, OK)


def test_client_stream_deadline_while_the_handler_waits_for_requests(grpc_fake_server: FakeServer) -> None:
    rpc = grpc_fake_server.invoke_client_stream(CLIENT_STREAM, timeout=30)
    rpc.send_request(ProbeRequest())
    grpc_fake_server.advance(31)
    assert rpc.termination() == (None, DEADLINE_EXCEEDED, "Took too much time!")
    assert rpc.wait_handler(wait=PROMPT)  # its request iterator raised


def test_bidi(grpc_fake_server: FakeServer) -> None:
    rpc = grpc_fake_server.invoke_bidi(BIDI, timeout=30)
    for index in range(2):
        rpc.send_request(ProbeRequest())
        assert rpc.take_response().index == index
    rpc.requests_closed()
    assert rpc.termination() == (None, OK, "")


def _start(fake: FakeServer, method: str) -> FakeRpc:
    if method == UNARY:
        return fake.invoke_unary(method, ProbeRequest(), timeout=5)
    if method == SERVER_STREAM:
        return fake.invoke_server_stream(method, ProbeRequest(), timeout=5)
    if method == CLIENT_STREAM:
        return fake.invoke_client_stream(method, timeout=5)
    return fake.invoke_bidi(method, timeout=5)


@pytest.mark.parametrize(
    ("method", "call", "applies"),
    [
        (UNARY, "send_request", False),
        (UNARY, "requests_closed", False),
        (UNARY, "take_response", False),
        (SERVER_STREAM, "send_request", False),
        (CLIENT_STREAM, "take_response", False),
        (BIDI, "requests_closed", True),
    ],
)
def test_methods_that_do_not_apply_to_a_shape_raise_type_error(
    grpc_fake_server: FakeServer, method: str, call: str, applies: bool
) -> None:
    rpc = _start(grpc_fake_server, method)
    args = (ProbeRequest(),) if call == "send_request" else ()
    if applies:
        getattr(rpc, call)(*args)
    else:
        with pytest.raises(TypeError, match=f"{call}\\(\\) does not apply to .*, a "):
            getattr(rpc, call)(*args)


# --- names and arguments ----------------------------------------------------------------------


def test_unknown_method_lists_the_hosted_ones(grpc_fake_server: FakeServer) -> None:
    with pytest.raises(MethodError) as info:
        grpc_fake_server.invoke_unary("nope.Svc/X", ProbeRequest())
    assert isinstance(info.value, ValueError)
    assert str(info.value) == (
        f"unknown method 'nope.Svc/X'; this server hosts: {BIDI}, {CLIENT_STREAM}, {SERVER_STREAM}, {UNARY}"
    )


def test_a_leading_slash_is_accepted(grpc_fake_server: FakeServer) -> None:
    assert grpc_fake_server.invoke_unary(f"/{UNARY}", ProbeRequest()).termination()[1] is OK


def test_the_wrong_invoke_for_a_method_names_the_right_one(grpc_fake_server: FakeServer) -> None:
    with pytest.raises(
        MethodError, match=r"is a unary-stream method: start it with FakeServer.invoke_server_stream\(\)"
    ):
        grpc_fake_server.invoke_unary(SERVER_STREAM, ProbeRequest())


@pytest.mark.parametrize("seconds", [-1, math.nan, math.inf, True, "1"])
def test_advance_refuses_bad_seconds(grpc_fake_server: FakeServer, seconds: Any) -> None:
    with pytest.raises(ValueError, match="seconds="):
        grpc_fake_server.advance(seconds)


@pytest.mark.parametrize("timeout", [math.inf, math.nan, "5"])
def test_invoke_refuses_a_timeout_that_is_not_a_finite_number(
    grpc_fake_server: FakeServer, timeout: Any
) -> None:
    with pytest.raises(ValueError, match="timeout="):
        grpc_fake_server.invoke_unary(UNARY, ProbeRequest(), timeout=timeout)


@pytest.mark.parametrize("metadata", [[("k",)], [(1, "v")], [("k", 1)], ["kv"]])
def test_invoke_refuses_bad_metadata(grpc_fake_server: FakeServer, metadata: Any) -> None:
    with pytest.raises(ValueError, match="metadata"):
        grpc_fake_server.invoke_unary(UNARY, ProbeRequest(), metadata=metadata)


def test_bad_servicer_pairs_are_refused() -> None:
    with pytest.raises(ValueError, match="at least one"):
        FakeServer()
    with pytest.raises(TypeError, match="not add_FooServicer_to_server"):
        FakeServer((add_ProbeServicer_to_server, ProbeServicer()))
    with pytest.raises(TypeError, match="pairs such as"):
        FakeServer(PROBE_SERVICE)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="given twice"):
        FakeServer((PROBE_SERVICE, ProbeServicer()), (PROBE_SERVICE, ProbeServicer()))
    with pytest.raises(ValueError, match="object does not implement Unary, ServerStream, ClientStream, Bidi"):
        FakeServer((PROBE_SERVICE, object()))


# --- waiting, closing, leaks ------------------------------------------------------------------


def test_a_blocking_wait_on_a_call_that_cannot_end_raises_instead_of_hanging() -> None:
    servicer = BackendWaiter()
    with FakeServer((PROBE_SERVICE, servicer)) as fake:
        rpc = fake.invoke_unary(UNARY, ProbeRequest(), timeout=30)
        with pytest.raises(TimeoutError, match=r"termination\(\) waited 0.02 s .*advance the fake clock"):
            rpc.termination(wait=0.02)


def test_close_cancels_running_calls_and_leaves_no_threads() -> None:
    before = set(threading.enumerate())
    servicer = BackendWaiter()
    fake = FakeServer((PROBE_SERVICE, servicer))
    rpc = fake.invoke_unary(UNARY, ProbeRequest())
    stream = fake.invoke_bidi(BIDI)
    _entered(servicer)
    with pytest.raises(TimeoutError):
        stream.take_response(wait=0.01)  # leaves a waiting thread behind until close()
    fake.close()
    fake.close()  # idempotent
    assert rpc.termination() == (None, CANCELLED, "Cancelled: the FakeServer was closed")
    assert stream.termination()[1] is CANCELLED
    assert servicer.active_after_wait is False
    assert _new_threads(before) == []
    with pytest.raises(RuntimeError, match="closed"):
        fake.invoke_unary(UNARY, ProbeRequest())


class Deaf(ProbeServicer):
    """Ignores the call ending; only the test's ``release`` ends it."""

    def __init__(self) -> None:
        self.release = threading.Event()

    def Unary(self, request: Any, context: Any) -> Any:
        self.release.wait(PROMPT)
        return ProbeResponse()


def test_close_names_a_handler_that_ignores_cancellation() -> None:
    servicer = Deaf()
    fake = FakeServer((PROBE_SERVICE, servicer))
    rpc = fake.invoke_unary(UNARY, ProbeRequest(), timeout=30)
    try:
        with pytest.raises(RuntimeError, match=rf"1 handler\(s\) still running .*\({UNARY}\)"):
            fake.close(wait=0.02)
    finally:
        servicer.release.set()
    assert rpc.wait_handler(wait=PROMPT)


# --- the fixtures from the outside --------------------------------------------------------------


def test_grpc_fake_servicers_override_and_fixture_teardown(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import threading

        import grpc
        import pytest
        from pytest_grpc_deadlines.probe import PROBE_SERVICE, ProbeResponse, ProbeServicer

        UNARY = "pytest_grpc_deadlines.probe.v1.Probe/Unary"
        BEFORE = set(threading.enumerate())

        class Mine(ProbeServicer):
            def Unary(self, request, context):
                ended = threading.Event()
                if context.add_callback(ended.set):
                    ended.wait()
                return ProbeResponse(index=9)

        @pytest.fixture(scope="module")
        def grpc_fake_servicers():
            return [(PROBE_SERVICE, Mine())]

        def test_leaves_a_call_running(grpc_fake_server):
            grpc_fake_server.invoke_unary(UNARY, None)

        def test_next_test_gets_a_fresh_clock_and_no_leftover_thread(grpc_fake_server):
            assert grpc_fake_server.now() == 0.0
            for _ in range(1000):
                if not [t for t in threading.enumerate() if t not in BEFORE]:
                    break
                threading.Event().wait(0.001)
            assert [t.name for t in threading.enumerate() if t not in BEFORE] == []
        """
    )
    pytester.runpytest(*_INNER).assert_outcomes(passed=2)
