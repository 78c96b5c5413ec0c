"""The sync test server against real channels: delays, gates, faults, records, lifecycle."""

from __future__ import annotations

import os
import stat
import threading
import time

import grpc
import pytest

from pytest_grpc_deadlines.probe import PROBE_SERVICE_NAME, ProbeRequest
from pytest_grpc_deadlines.servers._behaviour import MethodError, jitter
from pytest_grpc_deadlines.servers._pool import ServerFactory
from pytest_grpc_deadlines.servers._sync import GrpcTestServer
from tests.echo_service import CHORUS, SAY, EchoServicer, add_EchoServicer_to_server, say
from tests.timing import ENTRY_BOUND, REACHES_SERVER

UNARY = f"{PROBE_SERVICE_NAME}/Unary"
STREAM = f"{PROBE_SERVICE_NAME}/ServerStream"
CLIENT_STREAM = f"{PROBE_SERVICE_NAME}/ClientStream"


def _code(call: object) -> grpc.StatusCode:
    try:
        if callable(call):
            call()
    except grpc.RpcError as exc:
        code: grpc.StatusCode = exc.code()
        return code
    return grpc.StatusCode.OK


@pytest.fixture(params=["tcp", "unix"])
def server(request: pytest.FixtureRequest, grpc_test_server_factory: ServerFactory) -> GrpcTestServer:
    return grpc_test_server_factory(transport=request.param)


# --- deadlines and disagreement ----------------------------------------------------------------


def test_held_call_gives_a_deterministic_disagreement(server: GrpcTestServer) -> None:
    """Hold, call with a 20 ms deadline, see DEADLINE_EXCEEDED, wait for the server to see it,
    release: the handler ends OK after the client gave up, every time. On a starved machine a
    20 ms call can expire before the server sees it at all: no record, nothing to disagree on."""
    stub = server.probe()
    stub.Unary(ProbeRequest(), timeout=5)  # connect first
    reached = 0
    for _ in range(200 if server.transport == "tcp" else 50):
        server.reset()
        gate = server.hold(UNARY)
        with pytest.raises(grpc.RpcError) as info:
            stub.Unary(ProbeRequest(), timeout=0.02)
        assert info.value.code() is grpc.StatusCode.DEADLINE_EXCEEDED
        if not gate.wait_entered(ENTRY_BOUND):
            assert server.calls == []
            continue
        reached += 1
        assert gate.wait_cancelled(10)
        gate.release()
        [call] = server.calls
        assert call.wait(10)
        assert (call.outcome, call.cancelled, call.code) == ("ok", True, grpc.StatusCode.OK)
    assert reached > 0


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


def test_stream_interval_spaces_messages_and_the_deadline_cuts_them(server: GrpcTestServer) -> None:
    """# margin: messages at 0.2, 0.4, 0.6 s against a 0.7 s deadline (100 ms each side, over
    twice grpc's lateness with the CPUs oversubscribed; 50 ms failed under a loaded tox run)."""
    server.stream_interval(STREAM, 0.2)
    received = []
    with pytest.raises(grpc.RpcError) as info:
        for response in server.probe().ServerStream(ProbeRequest(responses=10), timeout=0.7):
            received.append(response.index)
    assert info.value.code() is grpc.StatusCode.DEADLINE_EXCEEDED
    assert received == [0, 1, 2]
    [call] = server.calls
    assert call.wait(5)
    assert (call.outcome, call.cancelled) == ("abandoned", True)


# --- gates -------------------------------------------------------------------------------------


def test_gate_holds_until_released(server: GrpcTestServer) -> None:
    gate = server.hold(UNARY)
    future = server.probe().Unary.future(ProbeRequest(), timeout=30)
    assert gate.wait_entered(10)
    assert not future.done()
    gate.release()
    assert future.result(timeout=10).index == 0
    assert gate.entered == 1


def test_gate_that_honours_cancellation_abandons_the_call(server: GrpcTestServer) -> None:
    gate = server.hold(UNARY, honor_cancellation=True)
    assert (
        _code(lambda: server.probe().Unary(ProbeRequest(), timeout=REACHES_SERVER))
        is grpc.StatusCode.DEADLINE_EXCEEDED
    )
    assert gate.wait_cancelled(10)
    [call] = server.calls
    assert call.wait(10)
    assert call.outcome == "abandoned"


def test_client_cancel_is_seen_by_the_gate(server: GrpcTestServer) -> None:
    gate = server.hold(UNARY)
    future = server.probe().Unary.future(ProbeRequest(), timeout=30)
    assert gate.wait_entered(10)
    future.cancel()
    assert gate.wait_cancelled(10)
    gate.release()
    assert server.calls[0].wait(10)
    assert server.calls[0].cancelled


def test_wait_entered_times_out_when_no_call_arrives(server: GrpcTestServer) -> None:
    gate = server.hold(UNARY)
    assert not gate.wait_entered(0.01)
    assert not gate.wait_cancelled(0.01)


# --- faults ------------------------------------------------------------------------------------


def test_fail_ends_calls_with_the_code_without_running_the_servicer(
    grpc_test_server_factory: ServerFactory,
) -> None:
    servicer = EchoServicer()
    server = grpc_test_server_factory((add_EchoServicer_to_server, servicer))
    server.fail(SAY, grpc.StatusCode.UNAVAILABLE, "try later")
    with pytest.raises(grpc.RpcError) as info:
        say(server.channel(), b"hi")
    assert (info.value.code(), info.value.details()) == (grpc.StatusCode.UNAVAILABLE, "try later")
    [call] = server.calls
    assert (call.outcome, call.code, call.details) == ("aborted", grpc.StatusCode.UNAVAILABLE, "try later")
    assert servicer.said == []


def test_fail_times_limits_the_failing_calls(server: GrpcTestServer) -> None:
    server.fail(UNARY, grpc.StatusCode.UNAVAILABLE, times=2)
    stub = server.probe()
    codes = [_code(lambda: stub.Unary(ProbeRequest(), timeout=5)) for _ in range(3)]
    assert codes == [grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.OK]


def test_fail_after_messages_cuts_a_stream_partway(server: GrpcTestServer) -> None:
    server.fail(STREAM, grpc.StatusCode.DATA_LOSS, "cut", after_messages=2)
    received = []
    with pytest.raises(grpc.RpcError) as info:
        for response in server.probe().ServerStream(ProbeRequest(responses=5), timeout=5):
            received.append(response.index)
    assert received == [0, 1]
    assert info.value.code() is grpc.StatusCode.DATA_LOSS
    assert server.calls[0].outcome == "aborted"


def test_servicer_abort_and_raise_are_recorded(grpc_test_server_factory: ServerFactory) -> None:
    server = grpc_test_server_factory()
    stub = server.probe()
    assert _code(lambda: stub.Unary(ProbeRequest(status_code=5, status_details="gone"), timeout=5)) is (
        grpc.StatusCode.NOT_FOUND
    )
    call = server.calls[0]
    assert call.wait(5)
    assert (call.outcome, call.code, call.details) == ("aborted", grpc.StatusCode.NOT_FOUND, "gone")


def test_servicer_exception_is_recorded_as_raised(grpc_test_server_factory: ServerFactory) -> None:
    class Broken(EchoServicer):
        def Say(self, request: bytes, context: object) -> bytes:
            raise RuntimeError("boom")

    server = grpc_test_server_factory((add_EchoServicer_to_server, Broken()))
    assert _code(lambda: say(server.channel(), b"x")) is grpc.StatusCode.UNKNOWN
    [call] = server.calls
    assert call.wait(5)
    assert (call.outcome, call.code) == ("raised", grpc.StatusCode.UNKNOWN)
    assert isinstance(call.exception, RuntimeError)


# --- records -----------------------------------------------------------------------------------


def test_records_hold_method_metadata_request_and_deadline(server: GrpcTestServer) -> None:
    stub = server.probe()
    stub.Unary(ProbeRequest(payload=b"abc"), timeout=5, metadata=(("x-test", "1"),))
    stub.Unary(ProbeRequest())
    first, second = server.calls
    assert first.method == UNARY
    assert ("x-test", "1") in first.metadata
    assert first.request.payload == b"abc"
    assert first.deadline is not None
    assert 4 < first.deadline <= 5.1
    assert second.deadline is None  # the sync server's 9.22e18 means "none"
    assert first.wait(5)
    assert first.ended is not None
    assert first.ended >= first.started


def test_client_stream_records_its_first_request(server: GrpcTestServer) -> None:
    server.probe().ClientStream(iter([ProbeRequest(payload=b"1"), ProbeRequest(payload=b"2")]), timeout=5)
    [call] = server.calls
    assert call.request.payload == b"1"


def test_user_servicers_are_hosted_beside_each_other(grpc_test_server_factory: ServerFactory) -> None:
    from pytest_grpc_deadlines.probe import ProbeServicer, add_ProbeServicer_to_server

    server = grpc_test_server_factory(
        (add_EchoServicer_to_server, EchoServicer()), (add_ProbeServicer_to_server, ProbeServicer())
    )
    assert say(server.channel(), b"a") == b"echo:a"
    assert server.probe().Unary(ProbeRequest(), timeout=5).index == 0
    assert list(server.channel().unary_stream(f"/{CHORUS}")(b"c", timeout=5)) == [b"c0", b"c1", b"c2"]
    assert set(server.methods) >= {SAY, CHORUS, UNARY}


def test_methods_may_be_named_with_a_leading_slash(server: GrpcTestServer) -> None:
    server.fail("/" + UNARY, grpc.StatusCode.ABORTED)
    assert _code(lambda: server.probe().Unary(ProbeRequest(), timeout=5)) is grpc.StatusCode.ABORTED


def test_unknown_method_is_an_error_listing_the_hosted_ones(server: GrpcTestServer) -> None:
    with pytest.raises(MethodError, match=r"unknown method 'pkg.Nope/X'; this server hosts: .*Probe/Unary"):
        server.delay("pkg.Nope/X", 1)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda s: s.delay(UNARY, -1), "must not be negative"),
        (lambda s: s.delay(UNARY, float("nan")), "finite number"),
        (lambda s: s.delay(UNARY, 1, when="during"), "use 'before' or 'after'"),
        (lambda s: s.delay(UNARY, []), "at least one value"),
        (lambda s: s.fail(UNARY, grpc.StatusCode.OK), "other than OK"),
        (lambda s: s.fail(UNARY, 14), "grpc.StatusCode"),
        (lambda s: s.fail(UNARY, grpc.StatusCode.ABORTED, times=0), "positive int"),
        (lambda s: s.fail(UNARY, grpc.StatusCode.ABORTED, after_messages=-1), ">= 0"),
        (lambda s: s.stream_interval(STREAM, -0.1), ">= 0"),
        (lambda s: s.hold(UNARY, honor_cancellation="no"), "True or False"),
    ],
)
def test_bad_behaviour_arguments_are_clear_errors(
    grpc_test_server: GrpcTestServer, call: object, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        assert callable(call)
        call(grpc_test_server)


# --- lifecycle ---------------------------------------------------------------------------------


def test_stop_with_grace_lets_a_short_call_finish(server: GrpcTestServer) -> None:
    gate = server.hold(UNARY)
    future = server.probe().Unary.future(ProbeRequest(), timeout=30)
    assert gate.wait_entered(10)
    threading.Timer(0.05, gate.release).start()  # margin: released 50 ms into a 5 s grace
    server.stop(5)
    assert future.result(timeout=10).index == 0


def test_stop_with_grace_cancels_a_call_that_outlives_it(server: GrpcTestServer) -> None:
    gate = server.hold(UNARY)
    future = server.probe().Unary.future(ProbeRequest(), timeout=30)
    assert gate.wait_entered(10)
    server.stop(0.05)
    assert future.exception(timeout=10).code() is grpc.StatusCode.UNAVAILABLE
    gate.release()


@pytest.mark.grpc_timeouts(grace=0)
def test_stop_defaults_to_the_cascade_grace(server: GrpcTestServer) -> None:
    gate = server.hold(UNARY)
    future = server.probe().Unary.future(ProbeRequest(), timeout=30)
    assert gate.wait_entered(10)
    server.stop()
    assert future.exception(timeout=10).code() is grpc.StatusCode.UNAVAILABLE
    gate.release()


def test_connection_refused_when_no_server_listens(server: GrpcTestServer) -> None:
    stub = server.probe()
    server.stop(None)
    assert _code(lambda: stub.Unary(ProbeRequest(), timeout=5)) is grpc.StatusCode.UNAVAILABLE


def test_restart_serves_again_on_the_same_address(server: GrpcTestServer) -> None:
    target = server.target
    stub = server.probe()
    server.stop(None)
    server.restart()
    assert server.target == target
    assert stub.Unary(ProbeRequest(), timeout=5, wait_for_ready=True).index == 0


def test_context_manager_works_without_pytest() -> None:
    with GrpcTestServer() as server:
        assert server.is_running
        assert server.probe().Unary(ProbeRequest(), timeout=5).index == 0
    assert not server.is_running


def test_close_does_not_wait_for_a_held_handler() -> None:
    server = GrpcTestServer().start()
    server.hold(UNARY)
    server.probe().Unary.future(ProbeRequest(), timeout=30)
    start = time.monotonic()
    server.close()
    # margin: the figure is a benchmark (a few ms); 2 s only proves teardown does not wait 30 s
    assert time.monotonic() - start < 2


def test_unix_socket_lives_in_a_private_directory_removed_at_close() -> None:
    with GrpcTestServer(transport="unix") as server:
        path = server.target.removeprefix("unix:")
        directory = os.path.dirname(path)
        assert stat.S_IMODE(os.stat(directory).st_mode) == 0o700
        assert server.probe().Unary(ProbeRequest(), timeout=5).index == 0
    assert not os.path.exists(directory)


@pytest.mark.parametrize("host", ["0.0.0.0", "10.0.0.1", "example.com", "::"])
def test_non_loopback_bind_is_refused(host: str) -> None:
    with pytest.raises(ValueError, match=rf"host='{host}' is refused: test servers bind loopback only"):
        GrpcTestServer(host=host)


@pytest.mark.parametrize("host", ["localhost", "127.0.0.1", "::1"])
def test_loopback_hosts_are_accepted(host: str) -> None:
    try:
        server = GrpcTestServer(host=host).start()
    except RuntimeError:
        pytest.skip(f"{host} is not available on this machine")
    try:
        assert server.probe().Unary(ProbeRequest(), timeout=5).index == 0
    finally:
        server.close()


def test_bad_transport_is_refused() -> None:
    with pytest.raises(ValueError, match="transport='udp' is not accepted; use 'tcp' or 'unix'"):
        GrpcTestServer(transport="udp")  # type: ignore[arg-type]


def test_bad_servicer_pair_is_refused() -> None:
    with pytest.raises(ValueError, match=r"pass \(add_FooServicer_to_server, FooServicer\(\)\) pairs"):
        GrpcTestServer(EchoServicer())  # type: ignore[arg-type]


def test_two_tcp_servers_get_distinct_ports(grpc_test_server_factory: ServerFactory) -> None:
    first, second = grpc_test_server_factory(), grpc_test_server_factory()
    assert first.target != second.target


# --- the grpc_test_server fixture ---------------------------------------------------------------------


def test_pooled_server_starts_clean_after_a_test_left_a_held_call(grpc_test_server: GrpcTestServer) -> None:
    grpc_test_server.hold(UNARY)
    grpc_test_server.probe().Unary.future(ProbeRequest(), timeout=30)
    grpc_test_server.reset()
    assert grpc_test_server.calls == []
    assert grpc_test_server.probe().Unary(ProbeRequest(), timeout=5).index == 0


@pytest.mark.grpc_timeouts(max_rx_bytes=1024)
def test_marker_byte_limit_applies_to_the_server(grpc_test_server: GrpcTestServer) -> None:
    stub = grpc_test_server.probe(max_send_message_length=-1)
    assert _code(lambda: stub.Unary(ProbeRequest(payload=b"x" * 2048), timeout=5)) is (
        grpc.StatusCode.RESOURCE_EXHAUSTED
    )
    assert stub.Unary(ProbeRequest(payload=b"x" * 100), timeout=5).index == 0


@pytest.mark.grpc_timeouts(max_rx_bytes=1024)
def test_marker_byte_limit_applies_to_the_channel(grpc_test_server: GrpcTestServer) -> None:
    stub = grpc_test_server.probe()
    assert _code(lambda: stub.Unary(ProbeRequest(response_bytes=2048), timeout=5)) is (
        grpc.StatusCode.RESOURCE_EXHAUSTED
    )


@pytest.mark.grpc_timeouts(max_send_bytes=1024)
def test_marker_send_limit_applies_to_the_channel(grpc_test_server: GrpcTestServer) -> None:
    stub = grpc_test_server.probe()
    assert _code(lambda: stub.Unary(ProbeRequest(payload=b"x" * 2048), timeout=5)) is (
        grpc.StatusCode.RESOURCE_EXHAUSTED
    )


@pytest.mark.grpc_timeouts(max_rx_bytes=3_000_000_000)
def test_byte_limit_grpc_cannot_hold_is_a_clear_error(grpc_test_server_factory: ServerFactory) -> None:
    with pytest.raises(ValueError, match=r"max_rx_bytes=3000000000 .* must fit in 32 bits"):
        grpc_test_server_factory()


@pytest.mark.grpc_timeouts(max_rx_bytes="abc")
def test_byte_limit_that_does_not_parse_is_a_clear_error(grpc_test_server_factory: ServerFactory) -> None:
    with pytest.raises(ValueError, match="DAGSTER_GRPC_MAX_RX_BYTES='abc'"):
        grpc_test_server_factory()


def test_factory_refuses_aio_in_a_sync_test(grpc_test_server_factory: ServerFactory) -> None:
    with pytest.raises(ValueError, match="use the grpc_aio_test_server_factory fixture"):
        grpc_test_server_factory(aio=True)
