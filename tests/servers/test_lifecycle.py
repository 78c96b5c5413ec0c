"""Starting, stopping, restarting and closing a test server, sync and asyncio: transports,
addresses, unix sockets, grace, and the arguments a server refuses."""

from __future__ import annotations

import asyncio
import os
import pathlib
import socket
import stat
import tempfile
import threading
import time
import warnings
from collections.abc import Awaitable, Callable
from typing import Any

import grpc
import grpc.aio
import pytest

from pytest_grpc_deadlines import AioGrpcTestServer, Cascade, GrpcTestServer, Setting
from pytest_grpc_deadlines.probe import PROBE_SERVICE_NAME, ProbeRequest
from pytest_grpc_deadlines.servers._pool import ServerFactory
from tests.rpc import future_error, unary_unary
from tests.rpc import rpc_error as _error
from tests.rpc import status_code as _code

UNARY = f"{PROBE_SERVICE_NAME}/Unary"

#: A cascade with neither byte limits nor a grace setting.
BARE = Cascade("bare", (Setting("default", "BARE_TIMEOUT", 60, kind="seconds"),))

AioFactory = Callable[..., Awaitable[AioGrpcTestServer]]


# --- arguments and addresses ----------------------------------------------------------------------


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


def test_bad_transport_is_refused() -> None:
    with pytest.raises(ValueError, match="transport='udp' is not accepted; use 'tcp' or 'unix'"):
        GrpcTestServer(transport="udp")  # type: ignore[arg-type]


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


def test_two_tcp_servers_get_distinct_ports(grpc_test_server_factory: ServerFactory) -> None:
    first, second = grpc_test_server_factory(), grpc_test_server_factory()
    assert first.target != second.target


def test_context_manager_works_without_pytest() -> None:
    with GrpcTestServer() as server:
        assert server.is_running
        assert server.probe().Unary(ProbeRequest(), timeout=5).index == 0
    assert not server.is_running


# --- unix sockets ---------------------------------------------------------------------------------


def test_unix_socket_lives_in_a_private_directory_removed_at_close() -> None:
    with GrpcTestServer(transport="unix") as server:
        path = server.target.removeprefix("unix:")
        directory = os.path.dirname(path)
        assert stat.S_IMODE(os.stat(directory).st_mode) == 0o700
        assert server.probe().Unary(ProbeRequest(), timeout=5).index == 0
    assert not os.path.exists(directory)


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


@pytest.mark.parametrize("name", ["a#b", "a?b", "a,b", "a%41b", "a b"])
def test_unix_socket_under_a_tmpdir_grpc_reads_as_uri_syntax_falls_back_to_tmp(
    tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    odd_dir = tmp_path / name
    odd_dir.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(odd_dir))
    with GrpcTestServer(transport="unix") as server:
        assert server.target.startswith("unix:/tmp/grpc-deadlines-")
        assert server.probe().Unary(ProbeRequest(), timeout=5).index == 0
    assert list(odd_dir.iterdir()) == []


@pytest.mark.asyncio
async def test_unix_transport_and_cleanup() -> None:
    async with AioGrpcTestServer(transport="unix") as server:
        directory = os.path.dirname(server.target.removeprefix("unix:"))
        assert (await server.probe().Unary(ProbeRequest(), timeout=5)).index == 0
    assert not os.path.exists(directory)


# --- start and restart ----------------------------------------------------------------------------


def test_start_on_a_running_server_keeps_it_and_its_address(grpc_test_server_factory: ServerFactory) -> None:
    server = grpc_test_server_factory()
    target = server.target
    assert server.start() is server
    assert server.target == target
    assert server.probe().Unary(ProbeRequest(), timeout=5).index == 0


@pytest.mark.asyncio
async def test_start_on_a_running_server_keeps_it(grpc_aio_test_server_factory: AioFactory) -> None:
    server = await grpc_aio_test_server_factory()
    target = server.target
    assert server.is_running
    assert await server.start() is server
    assert server.target == target
    await server.stop(None)
    assert not server.is_running


def test_restart_serves_again_on_the_same_address(server: GrpcTestServer) -> None:
    target = server.target
    stub = server.probe()
    server.stop(None)
    server.restart()
    assert server.target == target
    assert stub.Unary(ProbeRequest(), timeout=5, wait_for_ready=True).index == 0


def test_connection_refused_when_no_server_listens(server: GrpcTestServer) -> None:
    stub = server.probe()
    server.stop(None)
    assert _code(lambda: stub.Unary(ProbeRequest(), timeout=5)) is grpc.StatusCode.UNAVAILABLE


@pytest.mark.asyncio
async def test_restart_and_connection_refused(grpc_aio_test_server_factory: AioFactory) -> None:
    server = await grpc_aio_test_server_factory()
    stub = server.probe()
    await server.stop(None)
    assert await _code(stub.Unary(ProbeRequest(), timeout=5)) is grpc.StatusCode.UNAVAILABLE
    await server.restart()
    assert (await stub.Unary(ProbeRequest(), timeout=5, wait_for_ready=True)).index == 0


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


@pytest.mark.asyncio
async def test_aio_restart_fails_loudly_when_another_socket_took_the_port(
    grpc_aio_test_server_factory: AioFactory,
) -> None:
    server = await grpc_aio_test_server_factory()
    port = int(server.target.rpartition(":")[2])
    await server.stop(None)
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", port))
        squatter.listen()
        with pytest.raises(RuntimeError):
            await server.restart()
        assert not server.is_running


# --- stop and close -------------------------------------------------------------------------------


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
    assert future_error(future, 10).code() is grpc.StatusCode.UNAVAILABLE
    gate.release()


@pytest.mark.grpc_timeouts(grace=0)
def test_stop_defaults_to_the_cascade_grace(server: GrpcTestServer) -> None:
    gate = server.hold(UNARY)
    future = server.probe().Unary.future(ProbeRequest(), timeout=30)
    assert gate.wait_entered(10)
    server.stop()
    assert future_error(future, 10).code() is grpc.StatusCode.UNAVAILABLE
    gate.release()


def test_a_cascade_without_byte_limits_or_grace_adds_no_options_and_stops_at_once() -> None:
    with GrpcTestServer(cascade=BARE) as server:
        assert server.limits_key() == (("grpc.so_reuseport", 0),)
        gate = server.hold(UNARY)
        future = server.probe().Unary.future(ProbeRequest(), timeout=30)
        assert gate.wait_entered(10)
        server.stop()  # no grace setting: at once, as stop(None)
        assert future_error(future, 10).code() is grpc.StatusCode.UNAVAILABLE
        assert not server.is_running


@pytest.mark.parametrize("grace", ["abc", -1, float("nan"), True])
def test_stop_refuses_a_grace_grpc_would_choke_on(grace: object) -> None:
    with (
        GrpcTestServer() as server,
        pytest.raises(ValueError, match=r"give seconds from 0 to \S+ \(the longest grpc waits\), or None"),
    ):
        server.stop(grace)  # type: ignore[arg-type]


@pytest.mark.asyncio
async def test_stop_with_grace_ok_within_and_unavailable_beyond(
    grpc_aio_test_server_factory: AioFactory,
) -> None:
    server = await grpc_aio_test_server_factory()
    gate = server.hold(UNARY)
    call = asyncio.ensure_future(server.probe().Unary(ProbeRequest(), timeout=30))
    assert await gate.wait_entered(10)
    asyncio.get_running_loop().call_later(0.05, gate.release)  # margin: 50 ms into a 5 s grace
    await server.stop(5)
    assert (await call).index == 0

    server = await grpc_aio_test_server_factory()
    gate = server.hold(UNARY, honor_cancellation=True)
    call = asyncio.ensure_future(server.probe().Unary(ProbeRequest(), timeout=30))
    assert await gate.wait_entered(10)
    await server.stop(0.05)
    assert await _code(call) is grpc.StatusCode.UNAVAILABLE


@pytest.mark.asyncio
async def test_stop_without_a_grace_setting_stops_at_once() -> None:
    async with AioGrpcTestServer(cascade=BARE) as server:
        gate = server.hold(UNARY)
        call = asyncio.ensure_future(server.probe().Unary(ProbeRequest(), timeout=30))
        assert await gate.wait_entered(10)
        await server.stop()  # the cascade has no grace: at once, as stop(None)
        assert (await _error(call)).code() is grpc.StatusCode.UNAVAILABLE


def test_close_does_not_wait_for_a_held_handler() -> None:
    server = GrpcTestServer().start()
    server.hold(UNARY)
    server.probe().Unary.future(ProbeRequest(), timeout=30)
    start = time.monotonic()
    server.close()
    # margin: the figure is a benchmark (a few ms); 2 s only proves teardown does not wait 30 s
    assert time.monotonic() - start < 2


@pytest.mark.asyncio
async def test_aio_close_does_not_wait_for_a_held_handler() -> None:
    server = await AioGrpcTestServer().start()
    gate = server.hold(UNARY)
    call = asyncio.ensure_future(server.probe().Unary(ProbeRequest(), timeout=30))
    assert await gate.wait_entered(10)
    loop = asyncio.get_running_loop()
    start = loop.time()
    await server.close()
    # margin: the figure is a benchmark (a few ms); 2 s only proves close does not wait 30 s
    assert loop.time() - start < 2
    with pytest.raises((grpc.RpcError, asyncio.CancelledError)):
        await call


def test_an_asyncio_server_used_from_another_loop_says_so_instead_of_hanging() -> None:
    async def start() -> AioGrpcTestServer:
        return await AioGrpcTestServer().start()

    first = asyncio.new_event_loop()
    try:
        server = first.run_until_complete(start())

        async def use() -> None:
            server.probe()

        second = asyncio.new_event_loop()
        try:
            with pytest.raises(
                RuntimeError, match="is called on another event loop, not on the one the server runs on"
            ):
                second.run_until_complete(use())
        finally:
            second.close()
        with pytest.raises(RuntimeError, match="is called outside any event loop"):
            server.channel()
        first.run_until_complete(server.close())
    finally:
        first.close()


class _Stuck:
    """An asyncio servicer whose Say waits on an event nobody sets (no plugin gate involved)."""

    def __init__(self, swallow: bool = False) -> None:
        self.tasks: list[asyncio.Task[Any]] = []
        self.entered = asyncio.Event()
        self.swallow = swallow

    async def Say(self, request: bytes, context: Any) -> bytes:
        task = asyncio.current_task()
        assert task is not None
        self.tasks.append(task)
        self.entered.set()
        while True:
            try:
                await asyncio.Event().wait()
            except asyncio.CancelledError:
                if not self.swallow:
                    raise

    def Chorus(self, request: bytes, context: Any) -> list[bytes]:
        return [request]


def _stuck_server(stuck: _Stuck) -> AioGrpcTestServer:
    from tests.echo_service import add_EchoServicer_to_server

    return AioGrpcTestServer((add_EchoServicer_to_server, stuck))


@pytest.mark.asyncio
async def test_aio_close_ends_the_handler_tasks_a_stop_leaves() -> None:
    # pytest-asyncio 0.24 to 1.0 close the loop without cancelling pending tasks: a handler
    # task left pending by the stop would keep its server alive past the test
    from tests.echo_service import SAY

    stuck = _Stuck()
    server = await _stuck_server(stuck).start()
    call = unary_unary(server.channel(), f"/{SAY}")(b"x", timeout=30)
    await asyncio.wait_for(stuck.entered.wait(), 10)
    await server.close()
    assert [task.done() for task in stuck.tasks] == [True]
    with pytest.raises((grpc.RpcError, asyncio.CancelledError)):
        await call


@pytest.mark.asyncio
async def test_aio_close_warns_about_a_handler_that_will_not_end(monkeypatch: pytest.MonkeyPatch) -> None:
    from pytest_grpc_deadlines.servers import _aio
    from tests.echo_service import SAY

    monkeypatch.setattr(_aio, "_HANDLER_EXIT_SECONDS", 0.05)  # margin: only bounds the wait
    stuck = _Stuck(swallow=True)
    server = await _stuck_server(stuck).start()
    call = unary_unary(server.channel(), f"/{SAY}")(b"x", timeout=30)
    await asyncio.wait_for(stuck.entered.wait(), 10)
    with pytest.warns(
        ResourceWarning,
        match=r"1 handler task\(s\) of the closed AioGrpcTestServer on 127\.0\.0\.1:\d+ did not end "
        r"within 0\.05 s of being cancelled \(a servicer that catches asyncio\.CancelledError",
    ):
        await server.close()
    [task] = stuck.tasks
    stuck.swallow = False
    task.cancel()
    await asyncio.wait([task], timeout=10)
    assert task.done()
    with pytest.raises((grpc.RpcError, asyncio.CancelledError)):
        await call


@pytest.mark.asyncio
async def test_aio_close_cleans_up_before_the_warning_even_when_it_raises(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from pytest_grpc_deadlines.servers import _aio
    from tests.echo_service import SAY, add_EchoServicer_to_server

    monkeypatch.setattr(_aio, "_HANDLER_EXIT_SECONDS", 0.05)  # margin: only bounds the wait
    stuck = _Stuck(swallow=True)
    server = await AioGrpcTestServer((add_EchoServicer_to_server, stuck), transport="unix").start()
    folder = pathlib.Path(server.target.removeprefix("unix:")).parent
    call = unary_unary(server.channel(), f"/{SAY}")(b"x", timeout=30)
    await asyncio.wait_for(stuck.entered.wait(), 10)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ResourceWarning)  # as under filterwarnings = error
        with pytest.raises(ResourceWarning, match=r"did not end within 0\.05 s"):
            await server.close()
    assert not folder.exists()
    [task] = stuck.tasks
    stuck.swallow = False
    task.cancel()
    await asyncio.wait([task], timeout=10)
    with pytest.raises((grpc.RpcError, asyncio.CancelledError)):
        await call
