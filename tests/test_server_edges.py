"""The sync test server's edges: its arguments, addresses, options, lifecycle failures, user
servicers of every shape, and what a client sees when the server abandons a call."""

from __future__ import annotations

import pathlib
import socket
import tempfile
import threading
from collections.abc import Iterator
from typing import Any

import grpc
import pytest

from pytest_grpc_deadlines.cascade import Cascade, Setting
from pytest_grpc_deadlines.probe import PROBE_SERVICE_NAME, ProbeRequest
from pytest_grpc_deadlines.servers._behaviour import MethodError, jitter
from pytest_grpc_deadlines.servers._pool import ServerFactory
from pytest_grpc_deadlines.servers._sync import GrpcTestServer
from tests.echo_service import SAY, EchoServicer, say
from tests.timing import REACHES_SERVER

UNARY = f"{PROBE_SERVICE_NAME}/Unary"
STREAM = f"{PROBE_SERVICE_NAME}/ServerStream"
CLIENT_STREAM = f"{PROBE_SERVICE_NAME}/ClientStream"
RESET = "the test server was reset"
GRPC_VERSION = tuple(int(part) for part in grpc.__version__.split(".")[:2])

#: A cascade with neither byte limits nor a grace setting.
BARE = Cascade("bare", (Setting("default", "BARE_TIMEOUT", 60, kind="seconds"),))


def _error(call: Any) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as info:
        call()
    return info.value


# --- arguments and addresses -------------------------------------------------------------------


@pytest.mark.parametrize("host", [1, None, b"127.0.0.1"])
def test_host_must_be_a_string(host: Any) -> None:
    with pytest.raises(ValueError, match=r"must be a str such as '127.0.0.1'"):
        GrpcTestServer(host=host)


@pytest.mark.parametrize("max_workers", [0, -1, True, 2.0, "4"])
def test_max_workers_must_be_a_positive_int(max_workers: Any) -> None:
    with pytest.raises(ValueError, match=r"must be None or a positive int"):
        GrpcTestServer(max_workers=max_workers)


@pytest.mark.parametrize("transport", ["tcp", "unix"])
def test_target_before_start_is_an_error(transport: Any) -> None:
    server = GrpcTestServer(transport=transport)
    with pytest.raises(RuntimeError, match="the server has not been started"):
        server.target  # noqa: B018


def test_ipv6_loopback_target_is_bracketed_and_dialable(grpc_test_server_factory: ServerFactory) -> None:
    if not socket.has_ipv6:
        pytest.skip("this Python has no IPv6")
    try:
        server = grpc_test_server_factory(host="::1")
    except RuntimeError:
        pytest.skip("::1 is not available on this machine")
    host, _, port = server.target.rpartition(":")
    assert host == "[::1]"
    assert int(port) > 0
    assert server.probe().Unary(ProbeRequest(), timeout=5).index == 0


def _jitter(mean: Any, spread: Any) -> Any:
    return jitter(mean, spread)


@pytest.mark.parametrize(
    ("call", "error", "message"),
    [
        (
            lambda s: s.delay(None, 1),
            MethodError,
            r"method must be a str like 'pkg.Service/Method', not None",
        ),
        (lambda s: s.delay(UNARY, 1, honor_cancellation=1), ValueError, "honor_cancellation=1 must be True"),
        (lambda s: s.delay(UNARY, _jitter("0.1", 0)), ValueError, r"jitter mean='0.1' must be a finite"),
        (lambda s: s.delay(UNARY, _jitter(0.1, -0.5)), ValueError, r"jitter spread=-0.5 must not be neg"),
        (lambda s: s.fail(UNARY, grpc.StatusCode.ABORTED, b"no"), ValueError, r"details=b'no' must be a str"),
    ],
)
def test_bad_behaviour_arguments_are_refused_before_any_call(
    grpc_test_server: GrpcTestServer, call: Any, error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=message):
        call(grpc_test_server)
    assert (grpc_test_server.probe().Unary(ProbeRequest(), timeout=5).index, len(grpc_test_server.calls)) == (
        0,
        1,
    )


# --- options -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "options",
    [{"grpc.max_receive_message_length": 1024}, [("grpc.max_receive_message_length", 1024)]],
    ids=["mapping", "sequence"],
)
def test_server_options_reach_grpc_and_override_the_cascade_limits(
    grpc_test_server_factory: ServerFactory, options: Any
) -> None:
    """The cascade's 100 MB receive limit is set too; the caller's own option wins over it."""
    server = grpc_test_server_factory(options=options)
    stub = server.probe()
    assert stub.Unary(ProbeRequest(payload=b"x" * 512), timeout=5).index == 0
    error = _error(lambda: stub.Unary(ProbeRequest(payload=b"x" * 2048), timeout=5))
    assert error.code() is grpc.StatusCode.RESOURCE_EXHAUSTED
    assert ("grpc.max_receive_message_length", 1024) in server.limits_key()


@pytest.mark.parametrize("options", [5, [("only-a-name",)], ["ab c"], [("a", 1, 2)]])
def test_options_that_are_not_name_value_pairs_are_refused(options: Any) -> None:
    with pytest.raises(ValueError, match=r"must be a mapping or a sequence of \(name, value\) pairs"):
        GrpcTestServer(options=options)


def test_a_cascade_without_byte_limits_or_grace_adds_no_options_and_stops_at_once() -> None:
    with GrpcTestServer(cascade=BARE) as server:
        assert server.limits_key() == (("grpc.so_reuseport", 0),)
        gate = server.hold(UNARY)
        future = server.probe().Unary.future(ProbeRequest(), timeout=30)
        assert gate.wait_entered(10)
        server.stop()  # no grace setting: at once, as stop(None)
        assert future.exception(timeout=10).code() is grpc.StatusCode.UNAVAILABLE
        assert not server.is_running


# --- lifecycle -----------------------------------------------------------------------------------


def test_start_on_a_running_server_keeps_it_and_its_address(grpc_test_server_factory: ServerFactory) -> None:
    server = grpc_test_server_factory()
    target = server.target
    assert server.start() is server
    assert server.target == target
    assert server.probe().Unary(ProbeRequest(), timeout=5).index == 0


def test_restart_fails_loudly_when_another_socket_took_the_port(
    grpc_test_server_factory: ServerFactory,
) -> None:
    server = grpc_test_server_factory()
    port = int(server.target.rpartition(":")[2])
    server.stop(None)
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", port))
        squatter.listen()
        with pytest.raises(RuntimeError):
            server.restart()
        assert not server.is_running


def test_a_method_nothing_hosts_is_unimplemented_and_not_recorded(
    grpc_test_server_factory: ServerFactory,
) -> None:
    server = grpc_test_server_factory()
    error = _error(lambda: server.channel().unary_unary("/nowhere.Service/Method")(b"", timeout=5))
    assert error.code() is grpc.StatusCode.UNIMPLEMENTED
    assert server.calls == []


# --- gates ---------------------------------------------------------------------------------------


def test_holding_a_method_again_releases_the_calls_the_old_gate_held(
    grpc_test_server_factory: ServerFactory,
) -> None:
    server = grpc_test_server_factory()
    first = server.hold(UNARY)
    future = server.probe().Unary.future(ProbeRequest(), timeout=30)
    assert first.wait_entered(10)
    assert repr(first) == f"Gate({UNARY}, entered=1, released=False)"
    second = server.hold(UNARY)
    assert future.result(timeout=10).index == 0
    assert repr(first) == f"Gate({UNARY}, entered=1, released=True)"
    assert (second.entered, second.released) == (0, False)


def test_a_call_that_expired_while_queued_behind_a_busy_server_is_seen_cancelled_at_the_gate(
    grpc_test_server_factory: ServerFactory,
) -> None:
    """One worker, held by a first call: the second call's deadline passes while it waits for
    the worker, so its handler starts on an RPC that has already ended."""
    server = grpc_test_server_factory(max_workers=1)
    busy = server.hold(UNARY)
    first = server.probe().Unary.future(ProbeRequest(), timeout=30)
    assert busy.wait_entered(10)
    queued = server.hold(CLIENT_STREAM, honor_cancellation=True)
    second = server.probe().ClientStream.future(iter([ProbeRequest()]), timeout=REACHES_SERVER)
    assert second.exception(timeout=10).code() is grpc.StatusCode.DEADLINE_EXCEEDED
    busy.release()
    assert first.result(timeout=10).index == 0
    assert queued.wait_entered(10)
    assert queued.wait_cancelled(10)
    late = server.calls[-1]
    assert late.wait(10)
    assert (late.method, late.outcome, late.cancelled) == (CLIENT_STREAM, "abandoned", True)


# --- abandoned calls end CANCELLED, never OK ------------------------------------------------------


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
    future = (
        stub.Unary.future(request, timeout=30) if method == UNARY else stub.ServerStream(request, timeout=30)
    )
    assert gate.wait_entered(10)
    [call] = server.calls
    server.reset()
    error = future.exception(timeout=10)
    assert (error.code(), error.details()) == (grpc.StatusCode.CANCELLED, RESET)
    assert call.wait(10)
    assert call.outcome == "abandoned"
    assert server.calls == []


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


# --- faults on streams ---------------------------------------------------------------------------


def test_a_stream_fault_fails_before_the_first_message(grpc_test_server_factory: ServerFactory) -> None:
    server = grpc_test_server_factory()
    server.fail(STREAM, grpc.StatusCode.DATA_LOSS, "lost")
    received: list[int] = []
    error = _error(
        lambda: received.extend(
            m.index for m in server.probe().ServerStream(ProbeRequest(responses=3), timeout=5)
        )
    )
    assert (received, error.code(), error.details()) == ([], grpc.StatusCode.DATA_LOSS, "lost")
    [call] = server.calls
    assert (call.outcome, call.code) == ("aborted", grpc.StatusCode.DATA_LOSS)


def test_a_stream_shorter_than_after_messages_fails_at_its_end(
    grpc_test_server_factory: ServerFactory,
) -> None:
    server = grpc_test_server_factory()
    server.fail(STREAM, grpc.StatusCode.ABORTED, after_messages=5)
    received: list[int] = []
    error = _error(
        lambda: received.extend(
            m.index for m in server.probe().ServerStream(ProbeRequest(responses=3), timeout=5)
        )
    )
    assert (received, error.code()) == ([0, 1, 2], grpc.StatusCode.ABORTED)


# --- user servicers ------------------------------------------------------------------------------


class _Flood:
    """Streams megabyte messages without checking the client; notes when its generator closes."""

    def __init__(self) -> None:
        self.closed = threading.Event()

    def Flood(self, request: bytes, context: Any) -> Iterator[bytes]:
        try:
            for _ in range(1000):
                yield b"x" * 1_000_000
        finally:
            self.closed.set()

    def Listed(self, request: bytes, context: Any) -> list[bytes]:
        return [b"a", b"b", b"c"]

    def Quiet(self, request: bytes, context: Any) -> bytes:
        context.set_code(grpc.StatusCode.NOT_FOUND)
        context.set_details("no such thing")
        return b""

    def Broken(self, request: bytes, context: Any) -> bytes:
        raise ValueError("boom")


def _add_flood(servicer: _Flood, server: Any) -> None:
    handlers = {
        "Flood": grpc.unary_stream_rpc_method_handler(servicer.Flood),
        "Listed": grpc.unary_stream_rpc_method_handler(servicer.Listed),
        "Quiet": grpc.unary_unary_rpc_method_handler(servicer.Quiet),
        "Broken": grpc.unary_unary_rpc_method_handler(servicer.Broken),
    }
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler("tests.Flood", handlers),))


def test_a_stream_the_client_cancels_is_abandoned_and_its_generator_closed(
    grpc_test_server_factory: ServerFactory,
) -> None:
    """The client reads one message and cancels; flow control keeps the server's next send from
    completing, so the handler can only end by grpc dropping the stream."""
    servicer = _Flood()
    server = grpc_test_server_factory((_add_flood, servicer))
    stream = server.channel().unary_stream("/tests.Flood/Flood")(b"", timeout=30)
    assert len(next(stream)) == 1_000_000
    stream.cancel()
    [call] = server.calls
    assert call.wait(10)
    assert (call.outcome, call.cancelled) == ("abandoned", True)
    assert servicer.closed.wait(10), "the servicer's generator was left open"


def test_a_servicer_may_return_a_list_for_a_response_stream(grpc_test_server_factory: ServerFactory) -> None:
    server = grpc_test_server_factory((_add_flood, _Flood()))
    assert list(server.channel().unary_stream("/tests.Flood/Listed")(b"", timeout=5)) == [b"a", b"b", b"c"]
    [call] = server.calls
    assert (call.outcome, call.code) == ("ok", grpc.StatusCode.OK)


def test_a_status_set_on_the_context_is_recorded_as_aborted(grpc_test_server_factory: ServerFactory) -> None:
    server = grpc_test_server_factory((_add_flood, _Flood()))
    error = _error(lambda: server.channel().unary_unary("/tests.Flood/Quiet")(b"", timeout=5))
    assert (error.code(), error.details()) == (grpc.StatusCode.NOT_FOUND, "no such thing")
    [call] = server.calls
    assert (call.outcome, call.code, call.details) == ("aborted", grpc.StatusCode.NOT_FOUND, "no such thing")


def test_an_exception_is_recorded_as_raised_with_its_text(grpc_test_server_factory: ServerFactory) -> None:
    server = grpc_test_server_factory((_add_flood, _Flood()))
    error = _error(lambda: server.channel().unary_unary("/tests.Flood/Broken")(b"", timeout=5))
    assert error.code() is grpc.StatusCode.UNKNOWN
    [call] = server.calls
    assert call.wait(5)
    assert (call.outcome, call.code, call.details) == ("raised", grpc.StatusCode.UNKNOWN, "ValueError: boom")
    assert isinstance(call.exception, ValueError)


class _AnyMethod(grpc.GenericRpcHandler):  # type: ignore[misc]
    """A hand-written generic handler: serves every method of ``tests.Any``, lists none."""

    def service(self, handler_call_details: Any) -> Any:
        if handler_call_details.method.startswith("/tests.Any/"):
            return grpc.unary_unary_rpc_method_handler(lambda request, context: b"any:" + request)
        return None


def _add_any(servicer: _AnyMethod, server: Any) -> None:
    server.add_generic_rpc_handlers((servicer,))


def test_an_opaque_generic_handler_accepts_any_service_method_name(
    grpc_test_server_factory: ServerFactory,
) -> None:
    server = grpc_test_server_factory((_add_any, _AnyMethod()))
    assert server.methods == ()
    server.fail("tests.Any/Refused", grpc.StatusCode.PERMISSION_DENIED)
    server.delay("/tests.Any/Slow", 0)
    channel = server.channel()
    assert channel.unary_unary("/tests.Any/Slow")(b"x", timeout=5) == b"any:x"
    error = _error(lambda: channel.unary_unary("/tests.Any/Refused")(b"x", timeout=5))
    assert error.code() is grpc.StatusCode.PERMISSION_DENIED
    assert [(c.method, c.outcome) for c in server.calls] == [
        ("tests.Any/Slow", "ok"),
        ("tests.Any/Refused", "aborted"),
    ]
    with pytest.raises(MethodError, match="unknown method 'Refused'"):
        server.fail("Refused", grpc.StatusCode.PERMISSION_DENIED)


def _add_registered(servicer: EchoServicer, server: Any) -> None:
    """What grpcio-tools >= 1.63 generates: generic handlers plus registered method handlers."""
    handlers = {"Say": grpc.unary_unary_rpc_method_handler(servicer.Say)}
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler("tests.Echo", handlers),))
    server.add_registered_method_handlers("tests.Echo", handlers)


def test_registered_method_handlers_are_hosted_and_controllable(
    grpc_test_server_factory: ServerFactory,
) -> None:
    if GRPC_VERSION < (1, 63):
        pytest.skip(f"grpcio {grpc.__version__} has no registered method handlers (added in 1.63)")
    servicer = EchoServicer()
    server = grpc_test_server_factory((_add_registered, servicer))
    assert server.methods == (SAY,)
    server.fail(SAY, grpc.StatusCode.UNAVAILABLE, times=1)
    assert _error(lambda: say(server.channel(), b"a")).code() is grpc.StatusCode.UNAVAILABLE
    assert say(server.channel(), b"b") == b"echo:b"
    assert servicer.said == [b"b"]


def test_unix_socket_under_a_long_tmpdir_falls_back_to_tmp(
    tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """sockaddr_un holds about 104 bytes: a socket under a long TMPDIR could not bind."""
    long_dir = tmp_path / ("d" * 120)
    long_dir.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(long_dir))
    with GrpcTestServer(transport="unix") as server:
        assert server.target.startswith("unix:/tmp/grpc-deadlines-")
        assert server.probe().Unary(ProbeRequest(), timeout=5).index == 0


@pytest.mark.parametrize("grace", ["abc", -1, float("nan"), True])
def test_stop_refuses_a_grace_grpc_would_choke_on(grace: object) -> None:
    with GrpcTestServer() as server, pytest.raises(ValueError, match=r"give seconds >= 0, or None"):
        server.stop(grace)  # type: ignore[arg-type]
