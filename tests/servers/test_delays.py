"""Delays, jitter and stream intervals, sync and asyncio: what the client and the record show when
a handler is slow, and a reset that abandons a waiting call."""

from __future__ import annotations

import asyncio
import re
import time
from typing import Any, cast

import grpc
import grpc.aio
import pytest

from pytest_grpc_deadlines import AioGrpcTestServer, GrpcTestServer, jitter
from pytest_grpc_deadlines.probe import PROBE_SERVICE_NAME, ProbeRequest
from pytest_grpc_deadlines.servers._pool import ServerFactory
from tests.echo_service import SAY, EchoServicer, add_EchoServicer_to_server, say
from tests.rpc import future_error
from tests.rpc import rpc_error as _error
from tests.rpc import status_code as _code
from tests.timing import REACHES_SERVER

UNARY = f"{PROBE_SERVICE_NAME}/Unary"
STREAM = f"{PROBE_SERVICE_NAME}/ServerStream"
RESET = "the test server was reset"


# --- delays ---------------------------------------------------------------------------------------


def test_before_delay_wakes_on_the_deadline_and_abandons_the_call(
    grpc_test_server_factory: ServerFactory,
) -> None:
    servicer = EchoServicer()
    server = grpc_test_server_factory((add_EchoServicer_to_server, servicer))
    server.delay(SAY, 30)
    assert (
        _code(lambda: say(server.channel(), b"hi", timeout=REACHES_SERVER))
        is grpc.StatusCode.DEADLINE_EXCEEDED
    )
    [call] = server.calls
    assert call.wait(5), "a cancellation-aware delay kept sleeping"
    assert (call.outcome, call.cancelled) == ("abandoned", True)
    assert servicer.said == []


def test_after_delay_runs_the_servicer_and_records_ok(grpc_test_server_factory: ServerFactory) -> None:
    servicer = EchoServicer()
    server = grpc_test_server_factory((add_EchoServicer_to_server, servicer))
    server.delay(SAY, 30, when="after")
    assert (
        _code(lambda: say(server.channel(), b"hi", timeout=REACHES_SERVER))
        is grpc.StatusCode.DEADLINE_EXCEEDED
    )
    [call] = server.calls
    assert call.wait(5)
    assert (call.outcome, call.cancelled) == ("ok", True)
    assert servicer.said == [b"hi"]


def test_delay_ignoring_cancellation_sleeps_its_full_time(server: GrpcTestServer) -> None:
    # A gate ahead of the delay, released only once the server has seen the client go: the
    # delay then starts after the cancellation, whatever the machine's load. (A delay 100 ms
    # past the deadline, on its own, let a response through first when a soak on a loaded
    # machine stalled the process for 570 ms.)
    gate = server.hold(UNARY)
    server.delay(UNARY, 0.1, honor_cancellation=False)
    assert (
        _code(lambda: server.probe().Unary(ProbeRequest(), timeout=REACHES_SERVER))
        is grpc.StatusCode.DEADLINE_EXCEEDED
    )
    assert gate.wait_cancelled(5)
    released = time.monotonic()
    gate.release()
    [call] = server.calls
    assert call.wait(5)
    assert call.outcome == "ok"
    assert call.cancelled
    assert call.ended is not None
    assert call.ended - released >= 0.1  # the whole delay, though the client was long gone


def test_delay_shorter_than_the_deadline_succeeds(server: GrpcTestServer) -> None:
    # margin: 20 ms of delay against a 5 s deadline
    server.delay(UNARY, 0.02)
    assert server.probe().Unary(ProbeRequest(), timeout=5).index == 0
    [call] = server.calls
    duration = call.duration
    assert duration is not None
    assert duration >= 0.02


def test_delay_sequence_gives_one_value_per_call_and_the_last_repeats(server: GrpcTestServer) -> None:
    server.delay(UNARY, [0, 30, 0])
    stub = server.probe()
    timeouts = (5, REACHES_SERVER, 5, 5)
    codes = [_code(lambda t=t: stub.Unary(ProbeRequest(), timeout=t)) for t in timeouts]
    assert codes == [
        grpc.StatusCode.OK,
        grpc.StatusCode.DEADLINE_EXCEEDED,
        grpc.StatusCode.OK,
        grpc.StatusCode.OK,
    ]


def test_jitter_is_seeded_and_bounded() -> None:
    from pytest_grpc_deadlines.servers._behaviour import Delay

    first = Delay(jitter(0.1, 0.05, seed=7), "before", True)
    second = Delay(jitter(0.1, 0.05, seed=7), "before", True)
    values = [first.next() for _ in range(50)]
    assert values == [second.next() for _ in range(50)]
    assert all(0.05 <= v <= 0.15 for v in values)
    assert len(set(values)) > 1


@pytest.mark.asyncio
async def test_before_delay_abandons_on_the_deadline(grpc_aio_test_server: AioGrpcTestServer) -> None:
    grpc_aio_test_server.delay(UNARY, 30)
    assert await _code(grpc_aio_test_server.probe().Unary(ProbeRequest(), timeout=REACHES_SERVER)) is (
        grpc.StatusCode.DEADLINE_EXCEEDED
    )
    [call] = grpc_aio_test_server.calls
    assert await call.wait_async(5)
    assert (call.outcome, call.cancelled) == ("abandoned", True)


@pytest.mark.asyncio
async def test_after_delay_records_ok(grpc_aio_test_server: AioGrpcTestServer) -> None:
    grpc_aio_test_server.delay(UNARY, 30, when="after")
    assert await _code(grpc_aio_test_server.probe().Unary(ProbeRequest(), timeout=REACHES_SERVER)) is (
        grpc.StatusCode.DEADLINE_EXCEEDED
    )
    [call] = grpc_aio_test_server.calls
    assert await call.wait_async(5)
    assert (call.outcome, call.cancelled) == ("ok", True)


@pytest.mark.asyncio
async def test_a_delay_shorter_than_the_deadline_only_slows_the_call(
    grpc_aio_test_server: AioGrpcTestServer,
) -> None:
    grpc_aio_test_server.delay(UNARY, 0.05)  # margin: 50 ms against a 30 s deadline
    assert (await grpc_aio_test_server.probe().Unary(ProbeRequest(), timeout=30)).index == 0
    [record] = grpc_aio_test_server.calls
    assert (record.outcome, record.cancelled) == ("ok", False)
    assert record.duration is not None
    assert record.duration >= 0.05


@pytest.mark.asyncio
async def test_a_cancellation_aware_delay_behind_a_gate_abandons_a_call_whose_client_left(
    grpc_aio_test_server: AioGrpcTestServer,
) -> None:
    """The gate ignores the client leaving; the delay after it does not, so the servicer
    never runs once the gate opens."""
    gate = grpc_aio_test_server.hold(UNARY)
    grpc_aio_test_server.delay(UNARY, 30)
    call = grpc_aio_test_server.probe().Unary(ProbeRequest(), timeout=REACHES_SERVER)
    assert (await _error(call)).code() is grpc.StatusCode.DEADLINE_EXCEEDED
    assert await gate.wait_cancelled(10)
    gate.release()
    [record] = grpc_aio_test_server.calls
    assert await record.wait_async(10), "the delay slept although the client had left"
    assert (record.outcome, record.cancelled) == ("abandoned", True)


# --- stream intervals -----------------------------------------------------------------------------


def test_stream_interval_spaces_messages_and_the_deadline_cuts_them(server: GrpcTestServer) -> None:
    """# margin: messages at 0.3, 0.6, 0.9 s against a 1.05 s deadline, 150 ms each side: the
    intervals' lateness adds up (up to ~40 ms each with the CPUs oversubscribed), and grpc's
    deadline error comes late too; 50 ms failed under a loaded tox run."""
    server.stream_interval(STREAM, 0.3)
    received = []
    with pytest.raises(grpc.RpcError) as info:
        for response in server.probe().ServerStream(ProbeRequest(responses=10), timeout=1.05):
            received.append(response.index)
    assert info.value.code() is grpc.StatusCode.DEADLINE_EXCEEDED
    assert received == [0, 1, 2]
    [call] = server.calls
    assert call.wait(5)
    assert (call.outcome, call.cancelled) == ("abandoned", True)


def test_stream_interval_abandons_the_stream_when_the_deadline_passes(
    grpc_test_server_factory: ServerFactory,
) -> None:
    server = grpc_test_server_factory()
    server.stream_interval(STREAM, 30)
    stream = server.probe().ServerStream(ProbeRequest(responses=3), timeout=REACHES_SERVER)
    error = _error(lambda: list(stream))
    assert error.code() is grpc.StatusCode.DEADLINE_EXCEEDED
    [call] = server.calls
    assert call.wait(10), "the interval kept sleeping after the client left"
    assert (call.outcome, call.cancelled) == ("abandoned", True)


@pytest.mark.asyncio
async def test_stream_interval_and_deadline(grpc_aio_test_server: AioGrpcTestServer) -> None:
    """# margin: messages at 0.3, 0.6, 0.9 s against a 1.05 s deadline, 150 ms each side: the
    intervals' lateness adds up (up to ~40 ms each with the CPUs oversubscribed), and grpc's
    deadline error comes late too; 50 ms failed under a loaded tox run."""
    grpc_aio_test_server.stream_interval(STREAM, 0.3)
    received = []
    with pytest.raises(grpc.RpcError) as info:
        async for response in grpc_aio_test_server.probe().ServerStream(
            ProbeRequest(responses=10), timeout=1.05
        ):
            received.append(response.index)
    assert info.value.code() is grpc.StatusCode.DEADLINE_EXCEEDED
    assert received == [0, 1, 2]


# --- a reset abandons waiting calls: CANCELLED, never OK ------------------------------------------


@pytest.mark.parametrize("method", [UNARY, STREAM])
def test_reset_during_a_delay_ends_the_call_cancelled_without_running_the_servicer(
    grpc_test_server_factory: ServerFactory, method: str
) -> None:
    """The gate makes the moment deterministic: the handler has read its delay and waits at the
    gate; reset releases it and the delay, from an older generation, abandons the call."""
    server = grpc_test_server_factory()
    gate = server.hold(method)
    server.delay(method, 30)
    stub = server.probe()
    request = ProbeRequest(responses=2)
    # a response stream is a grpc.Future too: exception() waits for its end
    future = cast(
        "grpc.Future[Any]",
        stub.Unary.future(request, timeout=30) if method == UNARY else stub.ServerStream(request, timeout=30),
    )
    assert gate.wait_entered(10)
    [call] = server.calls
    server.reset()
    error = future_error(future, 10)
    assert (error.code(), error.details()) == (grpc.StatusCode.CANCELLED, RESET)
    assert call.wait(10)
    assert call.outcome == "abandoned"
    assert server.calls == []


async def _first_call(server: AioGrpcTestServer) -> Any:
    """The first call's record, once its handler is suspended in the server: it shares this loop,
    so by the time the record shows, the handler has read its delays and waits."""

    async def arrived() -> Any:
        while not server.calls:
            await asyncio.sleep(0.001)
        return server.calls[0]

    return await asyncio.wait_for(arrived(), 10)


@pytest.mark.asyncio
async def test_reset_during_a_delay_ends_a_unary_call_cancelled(
    grpc_aio_test_server: AioGrpcTestServer,
) -> None:
    grpc_aio_test_server.delay(UNARY, 30)
    call = asyncio.ensure_future(grpc_aio_test_server.probe().Unary(ProbeRequest(), timeout=30))
    record = await _first_call(grpc_aio_test_server)
    grpc_aio_test_server.reset()
    error = await _error(call)
    assert (error.code(), error.details()) == (grpc.StatusCode.CANCELLED, RESET)
    assert record.outcome == "abandoned"


async def _messages(stream: Any) -> list[Any]:
    return [message async for message in stream]


@pytest.mark.parametrize("how", ["delay", "stream_interval"])
@pytest.mark.asyncio
async def test_reset_ends_a_waiting_response_stream_cancelled_not_short(
    grpc_aio_test_server: AioGrpcTestServer, how: str
) -> None:
    getattr(grpc_aio_test_server, how)(STREAM, 30)
    stream = grpc_aio_test_server.probe().ServerStream(ProbeRequest(responses=3), timeout=30)
    read = asyncio.ensure_future(_messages(stream))
    record = await _first_call(grpc_aio_test_server)
    grpc_aio_test_server.reset()
    error = await _error(read)
    assert (error.code(), error.details()) == (grpc.StatusCode.CANCELLED, RESET)
    assert record.outcome == "abandoned"


# --- waits longer than the platform can wait, and numbers that are not numbers --------------------


@pytest.mark.parametrize(
    "configure",
    [
        pytest.param(lambda s: s.delay(SAY, 1e10), id="delay-1e10"),
        pytest.param(lambda s: s.delay(SAY, float("inf")), id="delay-inf"),
        pytest.param(lambda s: s.delay(SAY, 10**400), id="delay-10**400"),
        pytest.param(lambda s: s.delay(SAY, jitter(1e20, 0)), id="jitter-1e20"),
    ],
)
def test_a_delay_past_what_the_platform_can_wait_lasts_until_the_call_ends(
    grpc_test_server_factory: ServerFactory, configure: Any
) -> None:
    servicer = EchoServicer()
    server = grpc_test_server_factory((add_EchoServicer_to_server, servicer))
    configure(server)
    code = _code(lambda: say(server.channel(), b"hi", timeout=REACHES_SERVER))
    assert code is grpc.StatusCode.DEADLINE_EXCEEDED
    [call] = server.calls
    assert call.wait(5)
    assert (call.outcome, call.cancelled) == ("abandoned", True)  # not "raised" by the wait
    assert servicer.said == []


@pytest.mark.parametrize("seconds", [float("inf"), 1e300, 10**400])
def test_a_stream_interval_past_what_the_platform_can_wait_lasts_until_the_call_ends(
    server: GrpcTestServer, seconds: float
) -> None:
    server.stream_interval(STREAM, seconds)
    stream = server.probe().ServerStream(ProbeRequest(responses=2), timeout=REACHES_SERVER)
    assert _code(lambda: list(stream)) is grpc.StatusCode.DEADLINE_EXCEEDED
    [call] = server.calls
    assert call.wait(5)
    assert call.outcome == "abandoned"


@pytest.mark.parametrize(
    ("configure", "message"),
    [
        (lambda s: s.stream_interval(STREAM, float("nan")), "stream_interval seconds=nan is not a number"),
        (lambda s: s.delay(UNARY, float("nan")), "delay=nan is not a number of seconds; give a number >= 0"),
        (lambda s: s.delay(UNARY, [1, float("nan")]), "delay=nan is not a number of seconds"),
        (lambda s: s.stream_interval(STREAM, -1), "stream_interval seconds=-1 must not be negative"),
        (lambda s: s.stop(1e300), "stop(grace=1e+300) is not accepted: give seconds from 0 to "),
        (lambda s: s.stop(float("nan")), "stop(grace=nan) is not accepted"),
    ],
)
def test_numbers_that_cannot_be_waited_are_refused(
    server: GrpcTestServer, configure: Any, message: str
) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        configure(server)
    assert server.is_running


@pytest.mark.parametrize(
    ("configure", "message"),
    [
        (
            lambda s: s.stream_interval(UNARY, 0.1),
            f"stream_interval() applies to a method that streams its responses; {UNARY} sends one response",
        ),
        (
            lambda s: s.fail(UNARY, grpc.StatusCode.INTERNAL, after_messages=1),
            f"fail(after_messages=1) applies to a method that streams its responses; {UNARY} sends "
            "one response",
        ),
    ],
)
def test_options_that_cannot_apply_to_a_methods_shape_are_refused(
    server: GrpcTestServer, configure: Any, message: str
) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        configure(server)
    assert server.probe().Unary(ProbeRequest(), timeout=5).index == 0  # nothing was configured
