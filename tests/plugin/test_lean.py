"""What the plugin costs where it is not used, and what the reused server saves where it is:
loading the plugin imports neither grpc, protobuf nor Hypothesis; the recording arrives with
grpc; the ``grpc_test_server`` fixture's channels outlive a test but never a server."""

from __future__ import annotations

import subprocess
import sys

import pytest

from pytest_grpc_deadlines import GrpcTestServer
from pytest_grpc_deadlines.probe import ProbeRequest
from pytest_grpc_deadlines.servers._pool import ServerFactory
from tests.rpc import unary_unary

# pytest-grpc imports grpc when it loads and Hypothesis' plugin imports Hypothesis: not ours.
_ALONE = ("-p", "no:cacheprovider", "-p", "no:pytest_grpc", "-p", "no:hypothesispytest", "-p", "no:asyncio")


def test_loading_the_plugin_imports_no_grpc_protobuf_or_hypothesis(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import sys

        def test_nothing_heavy_was_imported(pytestconfig):
            assert pytestconfig.pluginmanager.has_plugin("grpc_deadlines")
            heavy = [name for name in ("grpc", "google.protobuf", "hypothesis") if name in sys.modules]
            assert heavy == []
            # nor the cascade model, when no marker, option or ini key sets a timeout
            assert "pytest_grpc_deadlines.cascade._cascade" not in sys.modules

        def test_the_recording_arrives_with_grpc(request):
            import grpc

            from pytest_grpc_deadlines.calls import _recording
            from pytest_grpc_deadlines.calls._recorder import RECORDER

            assert _recording.installed()
            channel = grpc.insecure_channel("127.0.0.1:1")
            try:
                channel.unary_unary("/pkg.Service/Method")(b"", timeout=0.01)
            except grpc.RpcError:
                pass
            finally:
                channel.close()
            [call] = RECORDER.calls_of(request.node.nodeid)
            assert (call.method, call.timeout is not None) == ("pkg.Service/Method", True)
        """
    )
    result = pytester.runpytest_subprocess(*_ALONE, "-p", "no:randomly")
    result.assert_outcomes(passed=2)


def test_a_server_hosting_no_probe_loads_no_protobuf(pytester: pytest.Pytester) -> None:
    """A project whose servicers are its own (a generic handler here) pays for protobuf only if
    its own code imports it: the probe, built from protobuf descriptors, loads when used."""
    pytester.makeconftest(
        """
        import grpc
        import pytest

        ECHO = grpc.method_handlers_generic_handler(
            "bench.Echo", {"Say": grpc.unary_unary_rpc_method_handler(lambda request, context: request)}
        )

        @pytest.fixture(scope="module")
        def grpc_test_servicers():
            return [(lambda servicer, server: server.add_generic_rpc_handlers((ECHO,)), object())]
        """
    )
    pytester.makepyfile(
        """
        import sys

        def test_echo(grpc_test_server, grpc_calls):
            say = grpc_test_server.channel().unary_unary("/bench.Echo/Say")
            assert say(b"x", timeout=5) == b"x"
            [(client, server, verdict)] = grpc_calls.pairs()
            assert (server.outcome, verdict) == ("ok", "agreed-ok")
            assert "google.protobuf" not in sys.modules

        def test_the_probe_loads_with_a_server_that_hosts_it():
            from pytest_grpc_deadlines import GrpcTestServer

            assert "google.protobuf" not in sys.modules
            with GrpcTestServer() as server:  # no servicers: the probe
                from pytest_grpc_deadlines.probe import ProbeRequest

                assert server.probe().Unary(ProbeRequest(), timeout=5).deadline_seconds > 0
            assert "google.protobuf" in sys.modules
        """
    )
    result = pytester.runpytest_subprocess(*_ALONE, "-p", "no:randomly")
    result.assert_outcomes(passed=2)


_DEFERRED = """
import sys
from pytest_grpc_deadlines.calls import _deferred

_deferred.install()
_deferred.uninstall()  # undone before grpc came: nothing to install when it does
_deferred.install()
import importlib.util
assert importlib.util.find_spec("grpc") is not None  # asked for, not loaded: still watching
import grpc
from pytest_grpc_deadlines.calls import _recording
assert _recording.installed(), "not installed when grpc arrived"
assert type(grpc.__loader__).__name__ == type(grpc.__spec__.loader).__name__ == "SourceFileLoader"
_deferred.uninstall()
assert not _recording.installed(), "installed after the install was undone"
_deferred.install()  # grpc is here now: installed at once
assert _recording.installed()
_deferred.uninstall()
print("ok")
"""


def test_the_recording_arrives_with_grpc_and_leaves_with_the_last_uninstall() -> None:
    done = subprocess.run(
        [sys.executable, "-c", _DEFERRED], capture_output=True, text=True, timeout=60, check=False
    )
    assert (done.returncode, done.stdout.strip()) == (0, "ok"), done.stderr


def test_the_reused_servers_channel_is_reused_by_the_next_test(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        from pytest_grpc_deadlines.probe import ProbeRequest

        seen = []

        def test_first(grpc_test_server):
            seen.append(grpc_test_server.channel())
            grpc_test_server.probe().Unary(ProbeRequest(), timeout=5)

        def test_second(grpc_test_server):
            assert grpc_test_server.channel() is seen[0]
            assert grpc_test_server.probe().Unary(ProbeRequest(), timeout=5).index == 0

        def test_a_closed_one_is_replaced(grpc_test_server):
            seen[0].close()
            channel = grpc_test_server.channel()
            assert channel is not seen[0]
            grpc_test_server.probe().Unary(ProbeRequest(), timeout=5)

        def test_other_options_get_their_own(grpc_test_server):
            assert grpc_test_server.channel(max_receive_message_length=1024) is not (
                grpc_test_server.channel()
            )
        """
    )
    result = pytester.runpytest(*_ALONE, "-p", "no:randomly")
    result.assert_outcomes(passed=4)


def test_a_stopped_server_closes_its_reused_channels(grpc_test_server: GrpcTestServer) -> None:
    channel = grpc_test_server.channel()
    grpc_test_server.probe().Unary(ProbeRequest(), timeout=5)
    grpc_test_server.restart()
    with pytest.raises(ValueError, match="closed"):
        unary_unary(channel, "/pytest_grpc_deadlines.probe.v1.Probe/Unary")(b"", timeout=5)
    fresh = grpc_test_server.channel()
    assert fresh is not channel
    assert grpc_test_server.probe().Unary(ProbeRequest(), timeout=5).index == 0


def test_fresh_servers_give_each_test_its_own_channels(grpc_test_server_factory: ServerFactory) -> None:
    server = grpc_test_server_factory()
    assert server.channel() is not server.channel()
