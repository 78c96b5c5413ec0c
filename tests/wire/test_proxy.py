"""The wire proxy: each fault on a real channel through a real proxy to a real test server, sync
and asyncio; gates, not sleeps, where order matters; records and teardown."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator

import grpc
import grpc.aio
import pytest
import pytest_asyncio

from pytest_grpc_deadlines import (
    AioGrpcTestServer,
    ArgumentError,
    CallLog,
    GrpcTestServer,
    ServerStateError,
    WireProxy,
)
from pytest_grpc_deadlines.probe import PROBE_SERVICE_NAME, ProbeAioStub, ProbeRequest, ProbeStub
from tests.rpc import status_code
from tests.timing import REACHES_SERVER

AioFactory = Callable[..., Awaitable[AioGrpcTestServer]]
WireFactory = Callable[..., WireProxy]
UNARY = f"{PROBE_SERVICE_NAME}/Unary"
WAIT = 10.0  # margin: bounds waits for what happens in milliseconds


@pytest_asyncio.fixture
async def aio_proxied(
    grpc_aio_test_server_factory: AioFactory, grpc_wire_proxy_factory: WireFactory
) -> AsyncIterator[tuple[WireProxy, ProbeAioStub]]:
    """An asyncio server behind a proxy, and a stub connected through it before a fault is set."""
    server = await grpc_aio_test_server_factory()
    proxy = grpc_wire_proxy_factory(server.target)
    async with grpc.aio.insecure_channel(proxy.target) as channel:
        stub = ProbeAioStub(channel)
        await stub.Unary(ProbeRequest(), timeout=WAIT)
        yield proxy, stub


@pytest.fixture
def stub(grpc_wire_proxy: WireProxy) -> Iterator[ProbeStub]:
    channel = grpc.insecure_channel(grpc_wire_proxy.target)
    stub = ProbeStub(channel)
    stub.Unary(ProbeRequest(), timeout=WAIT)  # connected before a fault is set
    yield stub
    channel.close()


def test_without_faults_calls_go_through_and_are_counted(grpc_wire_proxy: WireProxy, stub: ProbeStub) -> None:
    assert stub.Unary(ProbeRequest(payload=b"x" * 1000), timeout=WAIT).index == 0
    [connection] = grpc_wire_proxy.connections
    assert connection.bytes_up > 1000
    assert connection.bytes_down > 0
    assert (connection.faults, connection.ended) == ([], None)


def test_a_held_reply_is_in_flight_when_the_deadline_passes(
    grpc_wire_proxy: WireProxy, grpc_test_server: GrpcTestServer, stub: ProbeStub, grpc_calls: CallLog
) -> None:
    """The disagreement through the wire: the server answers OK, the answer is held on the wire
    until the client has given up."""
    gate = grpc_wire_proxy.hold(direction="down")
    future = stub.Unary.future(ProbeRequest(), timeout=REACHES_SERVER)
    assert gate.wait_held(WAIT)  # the reply reached the proxy
    assert status_code(future.result) is grpc.StatusCode.DEADLINE_EXCEEDED
    gate.release()
    [served] = [c for c in grpc_test_server.calls if c.method == UNARY][-1:]
    assert served.wait(WAIT)
    assert served.outcome == "ok"
    pair = grpc_calls.pairs(timeout=WAIT)[-1]
    assert pair.verdict == "disagreement"
    assert pair.client.wire_faults == ("hold down",)


def test_latency_delays_each_direction(grpc_wire_proxy: WireProxy, stub: ProbeStub) -> None:
    grpc_wire_proxy.latency(0.1, direction="down")
    started = time.monotonic()
    stub.Unary(ProbeRequest(), timeout=WAIT)
    assert time.monotonic() - started >= 0.1  # at least one reply chunk waited 0.1 s
    grpc_wire_proxy.latency(0.2, jitter=0.05, direction="up")
    with pytest.raises(grpc.RpcError) as info:
        stub.Unary(ProbeRequest(), timeout=0.05)  # margin: far below the 0.15-0.25 s delay
    assert info.value.code() is grpc.StatusCode.DEADLINE_EXCEEDED
    [connection] = grpc_wire_proxy.connections
    assert {"latency down", "latency up"} <= set(connection.faults)


def test_jitter_is_seeded(grpc_test_server: GrpcTestServer, grpc_wire_proxy_factory: WireFactory) -> None:
    drawn = []
    for _ in range(2):
        proxy = grpc_wire_proxy_factory(grpc_test_server.target, seed=7)
        proxy.latency(0.001, jitter=0.001)
        rng = proxy._faults["up"].rng
        assert rng is not None
        drawn.append([rng.random() for _ in range(3)])
    assert drawn[0] == drawn[1]


def test_bandwidth_paces_a_large_message(grpc_wire_proxy: WireProxy, stub: ProbeStub) -> None:
    grpc_wire_proxy.bandwidth(200_000, direction="down")
    started = time.monotonic()
    stub.Unary(ProbeRequest(response_bytes=60_000), timeout=WAIT)
    assert time.monotonic() - started >= 0.25  # 60 kB at 200 kB/s: 0.3 s, less the first piece


def test_slicing_delivers_the_same_bytes_in_pieces(grpc_wire_proxy: WireProxy, stub: ProbeStub) -> None:
    grpc_wire_proxy.slice(100, 0.001, direction="both")
    response = stub.Unary(ProbeRequest(response_bytes=5000, payload=b"y" * 3000), timeout=WAIT)
    assert len(response.payload) == 5000
    [connection] = grpc_wire_proxy.connections
    assert {"slice up", "slice down"} <= set(connection.faults)


#: A stream the tests cut: 100 messages 10 ms apart, so that most are still to come when the test,
#: having read a few, sets the reset. # margin: a loaded machine may stall the reader tens of
#: ms; the reset still finds some 90 messages to cut.
CUT = ProbeRequest(responses=100, response_bytes=200, interval_seconds=0.01)


def test_a_reset_mid_stream_gives_unavailable(grpc_wire_proxy: WireProxy, stub: ProbeStub) -> None:
    received = 0
    with pytest.raises(grpc.RpcError) as info:
        for _ in stub.ServerStream(CUT, timeout=WAIT):
            received += 1
            if received == 3:
                grpc_wire_proxy.reset_after(1, direction="down")  # the next bytes reset
    assert info.value.code() is grpc.StatusCode.UNAVAILABLE
    assert 3 <= received < 100
    [connection] = grpc_wire_proxy.connections
    assert (connection.ended, "reset down" in connection.faults) == ("reset", True)


def test_a_blackhole_answers_nothing(grpc_wire_proxy: WireProxy, stub: ProbeStub) -> None:
    grpc_wire_proxy.blackhole(direction="down")
    assert status_code(lambda: stub.Unary(ProbeRequest(), timeout=REACHES_SERVER)) is (
        grpc.StatusCode.DEADLINE_EXCEEDED
    )
    grpc_wire_proxy.clear()


def test_refused_and_dropped_connections(grpc_wire_proxy: WireProxy, stub: ProbeStub) -> None:
    grpc_wire_proxy.drop()
    assert status_code(lambda: stub.Unary(ProbeRequest(), timeout=WAIT, wait_for_ready=False)) in (
        grpc.StatusCode.UNAVAILABLE,
        grpc.StatusCode.OK,  # grpc may reconnect before the call: a new connection is fine
    )
    grpc_wire_proxy.refuse()
    # a channel of its own: grpc would otherwise reuse the connection the stub already has
    fresh = grpc.insecure_channel(grpc_wire_proxy.target, options=[("grpc.use_local_subchannel_pool", 1)])
    try:
        code = status_code(lambda: ProbeStub(fresh).Unary(ProbeRequest(), timeout=REACHES_SERVER))
    finally:
        fresh.close()
    assert code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED)
    ended = [c.ended for c in grpc_wire_proxy.connections]
    assert "reset" in ended
    assert "refused" in ended


@pytest.mark.asyncio
async def test_aio_a_held_reply_is_in_flight_when_the_deadline_passes(
    aio_proxied: tuple[WireProxy, ProbeAioStub], grpc_calls: CallLog
) -> None:
    proxy, stub = aio_proxied
    gate = proxy.hold(direction="down")
    call = asyncio.ensure_future(stub.Unary(ProbeRequest(), timeout=REACHES_SERVER))
    # off the loop: the server answers on it while this waits for the answer to be held
    assert await asyncio.to_thread(gate.wait_held, WAIT)
    with pytest.raises(grpc.RpcError) as info:
        await call
    assert info.value.code() is grpc.StatusCode.DEADLINE_EXCEEDED
    gate.release()
    pair = grpc_calls.pairs(timeout=0)[-1]
    assert pair.client.wire_faults == ("hold down",)


@pytest.mark.asyncio
async def test_aio_a_reset_mid_stream_gives_unavailable(aio_proxied: tuple[WireProxy, ProbeAioStub]) -> None:
    proxy, stub = aio_proxied
    received = 0
    with pytest.raises(grpc.RpcError) as info:
        async for _ in stub.ServerStream(CUT, timeout=WAIT):
            received += 1
            if received == 3:
                proxy.reset_after(1, direction="down")
    assert info.value.code() is grpc.StatusCode.UNAVAILABLE
    assert 3 <= received < 100


@pytest.mark.asyncio
async def test_aio_latency_bandwidth_and_a_blackhole(aio_proxied: tuple[WireProxy, ProbeAioStub]) -> None:
    proxy, stub = aio_proxied
    proxy.latency(0.1, direction="down")
    proxy.bandwidth(200_000, direction="down")
    started = time.monotonic()
    await stub.Unary(ProbeRequest(response_bytes=60_000), timeout=WAIT)
    assert time.monotonic() - started >= 0.25  # 60 kB at 200 kB/s, after a 0.1 s latency
    proxy.clear()
    proxy.blackhole(direction="down")
    with pytest.raises(grpc.RpcError) as info:
        await stub.Unary(ProbeRequest(), timeout=REACHES_SERVER)
    assert info.value.code() is grpc.StatusCode.DEADLINE_EXCEEDED
    [connection] = proxy.connections
    assert {"latency down", "bandwidth down", "blackhole down"} <= set(connection.faults)


def test_close_leaves_no_thread_or_socket_with_held_chunks(grpc_test_server: GrpcTestServer) -> None:
    before = {t.name for t in threading.enumerate()}
    proxy = WireProxy(grpc_test_server.target).start()
    channel = grpc.insecure_channel(proxy.target)
    stub = ProbeStub(channel)
    stub.Unary(ProbeRequest(), timeout=WAIT)
    gate = proxy.hold(direction="down")
    future = stub.Unary.future(ProbeRequest(), timeout=30)
    assert gate.wait_held(WAIT)
    proxy.close()
    assert status_code(future.result) is grpc.StatusCode.UNAVAILABLE
    channel.close()
    left = {t.name for t in threading.enumerate() if t.name.startswith("grpc-deadlines-wire")} - before
    assert left == set()
    port = int(proxy.target.rsplit(":", 1)[1])
    with pytest.raises(ConnectionRefusedError), socket.create_connection(("127.0.0.1", port), 1):
        pass


@pytest.mark.parametrize(
    ("target", "message"),
    [
        ("unix:/tmp/x.sock", "is a unix socket: the wire proxy works over TCP only"),
        ("10.0.0.1:80", "is refused: the wire proxy forwards to loopback only"),
        ("127.0.0.1", "is not host:port"),
        (5, "must be a str such as '127.0.0.1:50051'"),
    ],
)
def test_bad_targets_are_refused(target: object, message: str) -> None:
    with pytest.raises(ArgumentError, match=message):
        WireProxy(target)  # type: ignore[arg-type]


def test_bad_fault_arguments_are_refused(grpc_wire_proxy: WireProxy) -> None:
    with pytest.raises(ArgumentError, match="direction='sideways' is not accepted"):
        grpc_wire_proxy.latency(1, direction="sideways")  # type: ignore[arg-type]
    with pytest.raises(ArgumentError, match="latency seconds=-1 must not be negative"):
        grpc_wire_proxy.latency(-1)
    with pytest.raises(ArgumentError, match="bytes_per_second=0 must be above 0"):
        grpc_wire_proxy.bandwidth(0)
    with pytest.raises(ArgumentError, match="reset_after bytes=0 must be a positive int"):
        grpc_wire_proxy.reset_after(0)


def test_target_before_start_says_so(grpc_test_server: GrpcTestServer) -> None:
    with pytest.raises(ServerStateError, match="has not been started"):
        _ = WireProxy(grpc_test_server.target).target


@pytest.mark.asyncio
async def test_aio_slicing_drop_and_refuse(aio_proxied: tuple[WireProxy, ProbeAioStub]) -> None:
    proxy, stub = aio_proxied
    proxy.slice(100, 0.001)
    response = await stub.Unary(ProbeRequest(response_bytes=5000, payload=b"z" * 3000), timeout=WAIT)
    assert len(response.payload) == 5000
    proxy.clear()
    proxy.refuse()
    proxy.drop()
    with pytest.raises(grpc.RpcError) as info:
        await stub.Unary(ProbeRequest(), timeout=REACHES_SERVER, wait_for_ready=False)
    assert info.value.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED)
    # a connection of its own, which the proxy resets on arrival: the reset is the proof
    port = int(proxy.target.rsplit(":", 1)[1])
    with (
        contextlib.suppress(ConnectionResetError),  # during the connect or the read
        socket.create_connection(("127.0.0.1", port), WAIT) as raw,
    ):
        raw.settimeout(WAIT)
        assert raw.recv(1) == b""
    ended = [c.ended for c in proxy.connections]
    assert ended[0] == "reset"
    assert "refused" in ended[1:]


_OTHER_PROCESS = """
import sys
from concurrent import futures

import grpc

from pytest_grpc_deadlines.probe import ProbeServicer, add_ProbeServicer_to_server

server = grpc.server(futures.ThreadPoolExecutor(2))
add_ProbeServicer_to_server(ProbeServicer(), server)
port = server.add_insecure_port("127.0.0.1:0")
server.start()
print(port, flush=True)
sys.stdin.read()  # until the test closes stdin
server.stop(None)
"""


def test_a_proxy_in_front_of_a_server_in_another_process(grpc_wire_proxy_factory: WireFactory) -> None:
    command = [sys.executable, "-c", _OTHER_PROCESS]
    with subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True) as child:
        assert child.stdin is not None
        assert child.stdout is not None
        try:
            port = int(child.stdout.readline())
            proxy = grpc_wire_proxy_factory(f"127.0.0.1:{port}")
            channel = grpc.insecure_channel(proxy.target)
            try:
                stub = ProbeStub(channel)
                assert stub.Unary(ProbeRequest(), timeout=WAIT).index == 0
                proxy.blackhole(direction="down")
                assert status_code(lambda: stub.Unary(ProbeRequest(), timeout=REACHES_SERVER)) is (
                    grpc.StatusCode.DEADLINE_EXCEEDED
                )
            finally:
                channel.close()
        finally:
            child.stdin.close()  # the child stops its server and exits
            child.wait(timeout=WAIT)
    [connection] = proxy.connections
    assert connection.bytes_up > 0
    assert "blackhole down" in connection.faults
