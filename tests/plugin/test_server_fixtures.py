"""The server fixtures: reuse and reset, overrides, xdist and leaks from the outside (pytester),
and what a test gets from the inside."""

from __future__ import annotations

import gc
import os
import shutil
import tempfile
import threading
import time

import pytest

from pytest_grpc_deadlines import AioGrpcTestServer, GrpcTestServer
from pytest_grpc_deadlines.probe import PROBE_SERVICE_NAME, ProbeRequest
from pytest_grpc_deadlines.servers._pool import ServerFactory

pytest_plugins = ["pytester"]

# rerunfailures leaves a socket open per session (its own status server): not ours to count.
_INNER = ("-p", "no:cacheprovider", "-p", "no:hypothesispytest", "-p", "no:rerunfailures")
UNARY = f"{PROBE_SERVICE_NAME}/Unary"


# --- from the outside -----------------------------------------------------------------------------


def test_grpc_server_is_reused_and_reset_between_tests(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import grpc
        from pytest_grpc_deadlines.probe import ProbeRequest

        UNARY = "pytest_grpc_deadlines.probe.v1.Probe/Unary"
        TARGETS = []

        def test_leaves_a_held_call_behind(grpc_test_server):
            TARGETS.append(grpc_test_server.target)
            grpc_test_server.hold(UNARY)
            grpc_test_server.delay(UNARY, 30)
            grpc_test_server.probe().Unary.future(ProbeRequest(), timeout=30)

        def test_next_test_starts_clean(grpc_test_server):
            TARGETS.append(grpc_test_server.target)
            assert grpc_test_server.calls == []
            assert grpc_test_server.probe().Unary(ProbeRequest(), timeout=5).index == 0
            assert TARGETS[0] == TARGETS[1]
        """
    )
    result = pytester.runpytest(*_INNER, "-p", "no:asyncio")
    result.assert_outcomes(passed=2)


def test_grpc_servicers_override_hosts_the_users_service(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import grpc
        import pytest

        def add_EchoServicer_to_server(servicer, server):
            handler = grpc.unary_unary_rpc_method_handler(servicer.Say)
            server.add_generic_rpc_handlers(
                (grpc.method_handlers_generic_handler("my.Echo", {"Say": handler}),)
            )

        class Echo:
            def Say(self, request, context):
                return b"echo:" + request

        @pytest.fixture(scope="module")
        def grpc_test_servicers():
            return [(add_EchoServicer_to_server, Echo())]

        def test_user_service(grpc_test_server):
            say = grpc_test_server.channel().unary_unary("/my.Echo/Say")
            assert say(b"hi", timeout=5) == b"echo:hi"
            assert grpc_test_server.methods == ("my.Echo/Say",)
            assert grpc_test_server.calls[0].method == "my.Echo/Say"

        def test_unknown_method_lists_hosted(grpc_test_server):
            with pytest.raises(ValueError, match="this server hosts: my.Echo/Say"):
                grpc_test_server.hold("pytest_grpc_deadlines.probe.v1.Probe/Unary")
        """
    )
    result = pytester.runpytest(*_INNER, "-p", "no:asyncio")
    result.assert_outcomes(passed=2)


def test_failing_test_still_tears_the_servers_down(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import os
        from pytest_grpc_deadlines.probe import ProbeRequest

        UNARY = "pytest_grpc_deadlines.probe.v1.Probe/Unary"
        DIRS = []

        def test_fails_with_a_held_call(grpc_test_server_factory):
            server = grpc_test_server_factory(transport="unix")
            DIRS.append(os.path.dirname(server.target[len("unix:"):]))
            server.hold(UNARY)
            server.probe().Unary.future(ProbeRequest(), timeout=30)
            assert False, "deliberately"

        def test_temp_dir_is_gone():
            assert DIRS and not os.path.exists(DIRS[0])
        """
    )
    result = pytester.runpytest(*_INNER, "-p", "no:asyncio")
    result.assert_outcomes(passed=1, failed=1)


def test_aio_fixtures_need_pytest_asyncio_and_run_on_the_test_loop(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\nasyncio_default_fixture_loop_scope = function\n")
    pytester.makepyfile(
        """
        import asyncio
        import pytest
        from pytest_grpc_deadlines.probe import ProbeRequest

        @pytest.mark.asyncio
        async def test_on_the_test_loop(grpc_aio_test_server, grpc_aio_test_server_factory):
            other = await grpc_aio_test_server_factory(transport="unix")
            for server in (grpc_aio_test_server, other):
                response = await server.probe().Unary(ProbeRequest(), timeout=5)
                assert response.index == 0
        """
    )
    result = pytester.runpytest(*_INNER)
    result.assert_outcomes(passed=1)


def test_three_hundred_server_tests_pass_under_xdist(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pytest
        from pytest_grpc_deadlines.probe import ProbeRequest

        @pytest.mark.parametrize("n", range(300))
        def test_call(grpc_test_server, n):
            reply = grpc_test_server.probe().Unary(ProbeRequest(response_bytes=n), timeout=10)
            assert reply.payload == b"x" * n
            assert len(grpc_test_server.calls) == 1
        """
    )
    result = pytester.runpytest_subprocess(*_INNER, "-p", "no:asyncio", "-n", "2")
    result.assert_outcomes(passed=300)


def _plugin_threads() -> set[str]:
    return {t.name for t in threading.enumerate() if t.name.startswith("grpc-deadlines")}


def _new_sockets(before: set[str], bound: float = 5.0) -> set[str]:
    """Socket fds opened since ``before`` that are still open after grpc's own teardown.

    grpc closes a channel's or server's sockets on its own threads shortly after ``close()``
    returns (seen on grpcio 1.44), and offers nothing to wait on: poll until they are gone.
    # margin: they go within milliseconds; 5 s only bounds a real leak's cost.
    """
    deadline = time.monotonic() + bound
    while True:
        sockets = set()
        for fd in set(os.listdir("/proc/self/fd")) - before:
            try:
                if os.readlink(f"/proc/self/fd/{fd}").startswith("socket:"):
                    sockets.add(fd)
            except OSError:  # closed while we looked
                continue
        if not sockets or time.monotonic() > deadline:
            return sockets
        time.sleep(0.01)  # margin: a poll step only; the loop ends on the condition or the bound


def test_no_thread_fd_or_temp_dir_is_left_after_a_run(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest
) -> None:
    pytester.makepyfile(
        """
        import pytest
        from pytest_grpc_deadlines.probe import ProbeRequest

        UNARY = "pytest_grpc_deadlines.probe.v1.Probe/Unary"

        @pytest.mark.parametrize("transport", ["tcp", "unix"])
        @pytest.mark.parametrize("n", range(10))
        def test_servers(grpc_test_server, grpc_test_server_factory, transport, n):
            other = grpc_test_server_factory(transport=transport)
            for server in (grpc_test_server, other):
                server.hold(UNARY)
                server.probe().Unary.future(ProbeRequest(), timeout=30)
            assert n % 7 != 3, "some tests fail"
        """
    )
    before_fds = set(os.listdir("/proc/self/fd")) if os.path.isdir("/proc/self/fd") else set()
    before_threads = _plugin_threads()
    # A private temp dir: another process's unix server must not look like ours. Short, so
    # socket paths in it fit sockaddr_un.
    tmp = tempfile.mkdtemp(prefix="pgd-", dir="/tmp")
    monkeypatch.setattr(tempfile, "tempdir", tmp)
    request.addfinalizer(lambda: shutil.rmtree(tmp, ignore_errors=True))
    before_dirs = {d for d in os.listdir(tmp) if d.startswith("grpc-deadlines-")}
    result = pytester.runpytest(*_INNER, "-p", "no:asyncio")
    result.assert_outcomes(passed=18, failed=2)
    after_dirs = {d for d in os.listdir(tmp) if d.startswith("grpc-deadlines-")}
    assert after_dirs - before_dirs == set()
    # Handler threads end once their released calls finish; the executor does not join them.
    for thread in threading.enumerate():
        if thread.name.startswith("grpc-deadlines") and thread.name not in before_threads:
            thread.join(timeout=5)
    assert _plugin_threads() - before_threads == set()
    if before_fds:
        # grpcio 1.44 frees a closed channel's socket only when the channel object is freed, and
        # grpc's channel objects hold themselves in cycles: the shared server's channels,
        # closed when the module's pool closes, wait for the collector there.
        gc.collect()
        assert _new_sockets(before_fds) == set()


def test_grpc_server_stopped_by_a_test_serves_the_next_one(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        from pytest_grpc_deadlines.probe import ProbeRequest

        def test_stops_the_shared_server(grpc_test_server):
            grpc_test_server.stop(None)
            assert not grpc_test_server.is_running

        def test_next_test_gets_it_serving(grpc_test_server):
            assert grpc_test_server.is_running
            assert grpc_test_server.probe().Unary(ProbeRequest(), timeout=5, wait_for_ready=True).index == 0
        """
    )
    result = pytester.runpytest(*_INNER, "-p", "no:asyncio")
    result.assert_outcomes(passed=2)


# --- from the inside ------------------------------------------------------------------------------


def test_pooled_server_starts_clean_after_a_test_left_a_held_call(grpc_test_server: GrpcTestServer) -> None:
    grpc_test_server.hold(UNARY)
    grpc_test_server.probe().Unary.future(ProbeRequest(), timeout=30)
    grpc_test_server.reset()
    assert grpc_test_server.calls == []
    assert grpc_test_server.probe().Unary(ProbeRequest(), timeout=5).index == 0


def test_factory_refuses_aio_in_a_sync_test(grpc_test_server_factory: ServerFactory) -> None:
    with pytest.raises(ValueError, match="use the grpc_aio_test_server_factory fixture"):
        grpc_test_server_factory(aio=True)


@pytest.mark.asyncio
async def test_fixture_serves_the_probe(grpc_aio_test_server: AioGrpcTestServer) -> None:
    response = await grpc_aio_test_server.probe().Unary(ProbeRequest(response_bytes=4), timeout=5)
    assert response.payload == b"xxxx"
    [call] = grpc_aio_test_server.calls
    assert call.deadline is not None
    assert 4 < call.deadline <= 5.1
