"""Five hundred tests with servers, channels, stuck calls and failures leave nothing behind.

The inner run is in-process, so the checks see this very process: its threads, its file
descriptors, its environment, and the temporary directory the unix sockets live in.
"""

from __future__ import annotations

import contextlib
import gc
import logging
import os
import shutil
import socket
import sys
import tempfile
import threading
import time
import warnings
from pathlib import Path

import pytest

pytest_plugins = ["pytester"]

#: Tests of each kind below: ten groups of 50 (fresh servers twice, tcp and unix), 500 in all.
PER_KIND = 50

INNER_TESTS = f"""
import asyncio
import os

import grpc
import pytest

from pytest_grpc_deadlines.probe import ProbeRequest

UNARY = "pytest_grpc_deadlines.probe.v1.Probe/Unary"
N = range({PER_KIND})


@pytest.mark.parametrize("n", N)
def test_held_call_never_released(grpc_test_server, n):
    gate = grpc_test_server.hold(UNARY)  # never released: teardown must free the handler
    # Kept referenced: grpc cancels a call whose future is garbage collected.
    future = grpc_test_server.probe().Unary.future(ProbeRequest(), timeout=30)
    assert gate.wait_entered(10) and not future.done()


@pytest.mark.parametrize("n", N)
def test_held_call_the_client_gave_up_on(grpc_test_server, n):
    grpc_test_server.hold(UNARY)  # the call may expire before it reaches the gate: either will do
    with pytest.raises(grpc.RpcError):
        grpc_test_server.probe().Unary(ProbeRequest(), timeout=0.01)


@pytest.mark.parametrize("transport", ["tcp", "unix"])
@pytest.mark.parametrize("n", N)
def test_fresh_servers_with_held_calls(grpc_test_server_factory, transport, n):
    server = grpc_test_server_factory(transport=transport)
    gate = server.hold(UNARY)
    future = server.probe().Unary.future(ProbeRequest(), timeout=30)
    assert gate.wait_entered(10) and not future.done()


@pytest.mark.parametrize("n", N)
def test_channels_and_a_failure(grpc_test_server, n):
    # the reused server keeps one channel per set of options, across its tests
    channels = [grpc_test_server.channel(max_receive_message_length=1024 * (i + 1)) for i in range(3)]
    assert len(set(map(id, channels))) == 3
    assert grpc_test_server.probe().Unary(ProbeRequest(), timeout=10).index == 0
    assert n % 5 != 0, "every fifth test fails, on purpose"


@pytest.mark.parametrize("n", N)
def test_failing_with_a_held_call_on_a_unix_server(grpc_test_server_factory, n):
    server = grpc_test_server_factory(transport="unix")
    gate = server.hold(UNARY)
    future = server.probe().Unary.future(ProbeRequest(), timeout=30)
    assert gate.wait_entered(10) and not future.done()
    raise RuntimeError("a test that fails with a call still held")


@pytest.mark.grpc_timeouts(sensor=1, grace=2)
@pytest.mark.parametrize("n", N)
def test_marker_and_the_test_changes_the_cascade_itself(grpc_timeouts, n):
    assert os.environ["DAGSTER_SENSOR_GRPC_TIMEOUT_SECONDS"] == "1"
    os.environ["DAGSTER_GRPC_TIMEOUT_SECONDS"] = str(n + 1)  # restored after the test
    os.environ["DAGSTER_SCHEDULE_GRPC_TIMEOUT_SECONDS"] = "3"
    del os.environ["DAGSTER_GRPC_SHUTDOWN_GRACE_PERIOD"]
    assert n % 7 != 3, "some fail after changing the environment"


@pytest.mark.grpc_timeouts(max_rx_bytes=1000 + {PER_KIND})
@pytest.mark.parametrize("n", N)
def test_marker_limits_get_their_own_server(grpc_test_server, n):
    assert grpc_test_server.probe().Unary(ProbeRequest(response_bytes=n), timeout=10).payload == b"x" * n


@pytest.mark.asyncio
@pytest.mark.parametrize("n", N)
async def test_aio_server_with_held_calls(grpc_aio_test_server, n):
    gate = grpc_aio_test_server.hold(UNARY)  # never released
    stub = grpc_aio_test_server.probe()
    call = stub.Unary(ProbeRequest(), timeout=30)  # running, never awaited: teardown ends it
    assert await gate.wait_entered(10) and not call.done()
    with pytest.raises(grpc.aio.AioRpcError):
        await stub.Unary(ProbeRequest(), timeout=0.01)
    assert n % 11 != 4, "some aio tests fail too"


@pytest.mark.asyncio
@pytest.mark.parametrize("n", N)
async def test_aio_unix_server_and_channels(grpc_aio_test_server_factory, n):
    server = await grpc_aio_test_server_factory(transport="unix")
    for _ in range(2):
        assert (await server.probe().Unary(ProbeRequest(), timeout=10)).index == 0
"""

#: The inner run: its own ini (pytest-asyncio wants a loop scope); no cache, Hypothesis or log
#: capture (see the logging.disable below).
INNER_INI = "[pytest]\nasyncio_default_fixture_loop_scope = function\n"
# rerunfailures leaves a socket open per session (its own status server): not ours to count.
INNER_ARGS = (
    "-p",
    "no:cacheprovider",
    "-p",
    "no:hypothesispytest",
    "-p",
    "no:logging",
    "-p",
    "no:rerunfailures",
    "-q",
)


#: grpc.aio's process-wide poller thread (``Thread-N (_poll_wrapper)``): grpc starts it with the
#: first aio object and, on grpcio 1.44, may keep it after the last one is gone.
_GRPC_AIO_POLLER = "(_poll_wrapper)"


def _threads() -> dict[int, threading.Thread]:
    """Python threads but grpc.aio's poller: the plugin's ("grpc-deadlines-server_3"), the sync
    server's and channels' own."""
    return {
        t.ident: t
        for t in threading.enumerate()
        if t.ident is not None and not t.name.endswith(_GRPC_AIO_POLLER)
    }


def _socket_fds() -> dict[str, str]:
    """This process's socket descriptors: number -> "socket:[inode]"."""
    out: dict[str, str] = {}
    for fd in os.listdir("/proc/self/fd"):
        with contextlib.suppress(OSError):  # the descriptor listdir used, closed by now
            target = os.readlink(f"/proc/self/fd/{fd}")
            if target.startswith("socket:["):
                out[fd] = target
    return out


def _network_sockets() -> dict[str, str]:
    """The machine's TCP sockets (any state) and named unix sockets: "socket:[inode]" -> what.

    Servers and channels make these. Not here: unnamed unix socket pairs and the anonymous
    epoll and eventfd descriptors, which are grpc's and asyncio's own wake-up plumbing (grpc
    core's pollers and grpc.aio's poller; grpcio 1.44 keeps some after the last aio object).
    """
    out: dict[str, str] = {}
    for table in ("tcp", "tcp6"):
        path = Path("/proc/net") / table
        if path.exists():
            for line in path.read_text().splitlines()[1:]:
                fields = line.split()
                state = "listening" if fields[3] == "0A" else "connected"
                out[f"socket:[{fields[9]}]"] = f"{table} {state} {fields[1]} -> {fields[2]}"
    unix = Path("/proc/net/unix")
    if unix.exists():
        for line in unix.read_text().splitlines()[1:]:
            fields = line.split()
            if len(fields) >= 8:  # it has a path
                state = "listening" if int(fields[3], 16) & 0x10000 else "connected"
                out[f"socket:[{fields[6]}]"] = f"unix {state} {fields[7]}"
    return out


def _new_network_sockets(before: dict[str, str]) -> dict[str, str]:
    """This process's TCP and named unix sockets that ``before`` did not have."""
    network = _network_sockets()
    return {
        fd: network[target]
        for fd, target in _socket_fds().items()
        if before.get(fd) != target and target in network
    }


def _live(kinds: tuple[type, ...]) -> set[int]:
    """Ids of the live objects of ``kinds`` (servers and channels)."""
    return {id(o) for o in gc.get_objects() if isinstance(o, kinds)}


def _temp_dirs(tmp: str) -> set[str]:
    return {d for d in os.listdir(tmp) if d.startswith("grpc-deadlines-")}


def _dagster_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k.startswith("DAGSTER_")}


def _warm_up_grpc() -> None:
    """Let grpc make its once-per-process threads and descriptors before the baseline."""
    import asyncio

    from pytest_grpc_deadlines import GrpcTestServer
    from pytest_grpc_deadlines.probe import ProbeRequest
    from pytest_grpc_deadlines.servers._aio import AioGrpcTestServer

    with GrpcTestServer() as server:
        server.probe().Unary(ProbeRequest(), timeout=10)

    async def aio() -> None:
        async with AioGrpcTestServer() as server:
            await server.probe().Unary(ProbeRequest(), timeout=10)

    asyncio.run(aio())


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/fd and /proc/net")
def test_five_hundred_tests_leave_no_thread_socket_fd_temp_dir_or_variable(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest
) -> None:
    pytester.makeini(INNER_INI)
    pytester.makepyfile(test_inner=INNER_TESTS)
    # A private temp dir for the unix sockets: other processes' servers (xdist workers, other
    # runs on the machine) cannot then look like ours.
    # Short, so that socket paths in it fit sockaddr_un (a longer TMPDIR makes the servers
    # fall back to /tmp, out of this check's sight).
    private_tmp = Path(tempfile.mkdtemp(prefix="pgd-leaks-", dir="/tmp"))
    request.addfinalizer(lambda: shutil.rmtree(private_tmp, ignore_errors=True))
    monkeypatch.setattr(tempfile, "tempdir", str(private_tmp))
    # A cascade variable of the outer environment, which the marked tests clear for themselves.
    monkeypatch.setenv("DAGSTER_GRPC_TIMEOUT_SECONDS", "77")
    monkeypatch.delenv("DAGSTER_SENSOR_GRPC_TIMEOUT_SECONDS", raising=False)
    _warm_up_grpc()
    import grpc
    import grpc.aio

    from pytest_grpc_deadlines.servers._aio import AioGrpcTestServer
    from pytest_grpc_deadlines.servers._observers import bound_targets
    from pytest_grpc_deadlines.servers._sync import GrpcTestServer

    kinds: tuple[type, ...] = (GrpcTestServer, grpc.Channel, grpc.Server)
    grpc_version = tuple(int(part) for part in grpc.__version__.split(".")[:2])
    if grpc_version >= (1, 85):
        # grpcio 1.44 (and maybe others before 1.85, where it was measured not to) leaves the
        # task of an aio handler that was in flight at server.stop() pending for good, rooted
        # in its process-wide completion queue, with the server and a channel in its frames:
        # grpc's doing, which no teardown can undo short of waiting for every handler.
        kinds += (AioGrpcTestServer, grpc.aio.Channel, grpc.aio.Server)
    channel_functions = (grpc.insecure_channel, grpc.secure_channel, grpc.aio.insecure_channel)
    targets_before = bound_targets()
    threads_before = _threads()
    sockets_before = _socket_fds()
    env_before = _dagster_env()
    _collect()
    live_before = _live(kinds)

    # No logging in the inner run: a record with a traceback keeps the frames it passed
    # through, and with them the servers of the test it was logged in (grpc.aio's poller logs
    # "Event loop is closed" when an event for a test's loop comes after pytest-asyncio closed
    # it), and this test's own log capture would keep the record.
    logging.disable(logging.CRITICAL)
    try:
        with warnings.catch_warnings():
            _ignore_unnamed_socket_pairs()
            recorder = pytester.inline_run(*INNER_ARGS)
    finally:
        logging.disable(logging.NOTSET)

    recorder.assertoutcome(passed=428, failed=72)
    # pytester's hook recorder keeps every hook call's arguments (failing tests' tracebacks,
    # whose frames hold their fixtures, aio servers and channels among them), and pytest keeps
    # the last failure in sys.last_*: the inner run's doing, not the plugin's. Dropped, so that
    # what is still alive after a collection is what the plugin left. (grpc.aio keeps its
    # poller thread and descriptors while any aio server or channel object is alive.)
    recorder.calls.clear()
    for name in ("last_type", "last_value", "last_traceback", "last_exc"):
        sys.__dict__.pop(name, None)
    _collect()

    assert _temp_dirs(str(private_tmp)) == set()
    assert _dagster_env() == env_before
    # The plugin's wrappers around grpc's channel functions are gone with the inner session,
    # and so are the addresses of its servers (used to tell its own calls from others).
    assert (grpc.insecure_channel, grpc.secure_channel, grpc.aio.insecure_channel) == channel_functions
    assert bound_targets() == targets_before
    # No server or channel, the plugin's or grpc's, is kept alive by anything.
    assert [repr(o) for o in gc.get_objects() if isinstance(o, kinds) and id(o) not in live_before] == []
    # Server handler threads end once their released calls return, and ThreadPoolExecutor
    # threads once they see the shutdown: neither is joined at teardown, so give them a moment.
    deadline = time.monotonic() + 10
    for ident, thread in _threads().items():
        if ident not in threads_before:
            thread.join(max(0.0, deadline - time.monotonic()))
    assert [t.name for i, t in _threads().items() if i not in threads_before] == []
    # No TCP or named unix socket the run opened is still open, listening or connected. grpc
    # closes a server's or channel's sockets on its own threads, a moment after the Python
    # object is gone, and gives no signal to wait for: so poll. # margin: they go within
    # milliseconds idle; 10 s is far beyond what a loaded machine needs, and only a real leak
    # waits that long (then fails all the same).
    deadline = time.monotonic() + 10
    while (new := _new_network_sockets(sockets_before)) and time.monotonic() < deadline:
        time.sleep(0.02)  # margin: a poll step only; the loop ends on the condition or the bound
    if grpc_version < (1, 85):
        # The pending aio handlers grpcio 1.44 keeps (see above) hold their channel's
        # connection to the stopped unix server: grpc's doing, like the objects it keeps.
        new = {fd: what for fd, what in new.items() if not what.startswith("unix connected")}
    assert new == {}


def _ignore_unnamed_socket_pairs() -> None:
    """Ignore the ResourceWarnings of asyncio's and grpc.aio's wake-up socket pairs.

    The plugin makes no event loop and no socket pair. pytest-asyncio 0.24 leaves a fresh
    event loop behind each asyncio test (its ``_provide_clean_event_loop``; the next test closes
    it, the session's last one nobody does), and grpcio 1.44's aio poller keeps an AF_UNIX
    socket pair; when the collector meets one, whenever that happens, the socket warns
    ResourceWarning, and in the middle of the inner run that lands on this test as an
    unraisable exception (seen on Python 3.10 with the lowest dependencies). Only those are
    ignored: Python's TCP sockets (the wire proxy's) still warn, and the sockets this run leaves
    open are counted from /proc, not from warnings.
    """
    family = rf"(AddressFamily\.AF_UNIX|{int(socket.AF_UNIX)})"  # the latter: its repr from 3.11 on
    warnings.filterwarnings("ignore", rf"unclosed <socket\.socket .*family={family}\b", ResourceWarning)
    warnings.filterwarnings("ignore", r"unclosed event loop", ResourceWarning)


def _collect() -> None:
    """A full collection, quiet about socket pairs that earlier tests left to the collector."""
    with warnings.catch_warnings():
        _ignore_unnamed_socket_pairs()
        gc.collect()
