"""The Dagster harness: Dagster's own code server and proxy hosted in-process (``tox -e dagster``).

The proxy hop is the one Dagster's maintainers checked by hand with a 70 s sensor: in 1.13.29
``dagster code-server start`` forwards ``SyncExternalScheduleExecution`` with the default
timeout, so a schedule timeout above the default is cut at the proxy. In-process a gate shows it
in milliseconds; a real ``dagster code-server start`` with the same environment agrees.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from pytest_grpc_deadlines import DAGSTER, CallLog, Resolved
from pytest_grpc_deadlines.calls._hops import cascade_finding
from pytest_grpc_deadlines.dagster import DagsterCodeServer, DagsterProxy

client_module = pytest.importorskip("dagster._grpc.client")
serdes = pytest.importorskip("dagster._serdes")
origins = pytest.importorskip("dagster._core.remote_origin")
instance_ref = pytest.importorskip("dagster._core.instance.ref")
grpc_types = pytest.importorskip("dagster._grpc.types")

DEFS = "tests.dagster_conformance.pgd_dagster_defs"
ROOT = Path(__file__).parents[2]
SCHEDULE = "api.DagsterApi/SyncExternalScheduleExecution"
SENSOR = "api.DagsterApi/SyncExternalSensorExecution"


@pytest.fixture
def grpc_dagster_definitions() -> str:
    return DEFS


def test_the_code_server_runs_dagsters_schedules_and_sensors_with_records(
    grpc_dagster_code_server: DagsterCodeServer,
) -> None:
    client = grpc_dagster_code_server.client()
    schedule = client.external_schedule_execution(grpc_dagster_code_server.schedule_args("every_minute"))
    sensor = client.external_sensor_execution(grpc_dagster_code_server.sensor_args("ping_sensor"))
    assert type(serdes.deserialize_value(schedule)).__name__ == "ScheduleExecutionData"
    assert type(serdes.deserialize_value(sensor)).__name__ == "SensorExecutionData"
    calls = grpc_dagster_code_server.server.calls
    assert [(c.method, c.outcome) for c in calls] == [(SCHEDULE, "ok"), (SENSOR, "ok")]


@pytest.mark.grpc_timeouts(sensor=3)
def test_a_marker_reaches_the_deadline_dagsters_own_client_sends(
    grpc_dagster_code_server: DagsterCodeServer,
) -> None:
    grpc_dagster_code_server.client().external_sensor_execution(
        grpc_dagster_code_server.sensor_args("ping_sensor")
    )
    [call] = grpc_dagster_code_server.server.calls
    assert call.deadline is not None
    assert 2.5 < call.deadline <= 3 * 1.01  # grpc rounds the deadline it sends up by about 1%


@pytest.fixture
def pool() -> Iterator[ThreadPoolExecutor]:
    with ThreadPoolExecutor(1) as executor:
        yield executor


@pytest.mark.grpc_timeouts(default=2, schedule=10)
def test_the_proxy_forwards_a_schedule_call_with_the_default_timeout(
    grpc_dagster_proxy: DagsterProxy, pool: ThreadPoolExecutor
) -> None:
    code_server = grpc_dagster_proxy.code_server.server
    gate = code_server.hold(SCHEDULE)
    client = grpc_dagster_proxy.client()
    done = pool.submit(client.external_schedule_execution, grpc_dagster_proxy.schedule_args("every_minute"))
    assert gate.wait_entered(10)
    [outer] = grpc_dagster_proxy.server.calls
    [hop] = code_server.calls
    assert outer.deadline is not None
    assert hop.deadline is not None
    assert 9 < outer.deadline <= 10 * 1.01  # the client sent the schedule timeout
    assert hop.deadline <= 2 * 1.01  # the proxy passed on the default timeout instead
    gate.release()
    assert type(serdes.deserialize_value(done.result(timeout=10))).__name__ == "ScheduleExecutionData"


def _fails_at_the_hop(call: object) -> float:
    """Seconds until ``call`` fails, checking it failed as a proxy hop does: UNKNOWN from the
    proxy, wrapping the hop's DEADLINE_EXCEEDED."""
    start = time.monotonic()
    with pytest.raises(Exception) as info:  # noqa: PT011 - Dagster's error chain is checked below
        call()  # type: ignore[operator]
    elapsed = time.monotonic() - start
    text = f"{info.value!r} {info.value.__cause__!r}"
    assert "UNKNOWN" in text, text
    assert "DEADLINE_EXCEEDED" in text or "Deadline Exceeded" in text, text
    return elapsed


@pytest.mark.grpc_timeouts(default=2, schedule=10)
def test_a_schedule_longer_than_the_default_fails_at_the_proxy_hop(grpc_dagster_proxy: DagsterProxy) -> None:
    gate = grpc_dagster_proxy.code_server.server.hold(SCHEDULE)  # a schedule that never ends
    client = grpc_dagster_proxy.client()
    elapsed = _fails_at_the_hop(
        lambda: client.external_schedule_execution(grpc_dagster_proxy.schedule_args("every_minute"))
    )
    gate.release()
    # margin: grpc's deadline errors come 1.5 to 10 ms late, 40 ms at worst on a busy machine;
    # the client's own 10 s deadline is far off
    assert 1.9 < elapsed < 5


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.mark.grpc_timeouts(default=2, schedule=10)
def test_the_real_code_server_start_fails_the_same_schedule_at_the_proxy_hop(
    grpc_timeouts: Resolved, tmp_path: Path
) -> None:
    port = _free_port()
    command = [sys.executable, "-m", "dagster", "code-server", "start", "-m", DEFS, "--port", str(port)]
    process = subprocess.Popen(
        command,
        cwd=ROOT,
        env=grpc_timeouts.environ(os.environ),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        client = client_module.DagsterGrpcClient(host="localhost", port=port)
        deadline = time.monotonic() + 120  # margin: the proxy starts a `dagster api grpc` of its own
        while True:
            try:
                client.ping("up")
                break
            except Exception:
                assert process.poll() is None, "dagster code-server start exited"
                assert time.monotonic() < deadline, "dagster code-server start did not come up"
                time.sleep(0.2)  # margin: polling a starting process, not timing anything
        location = origins.GrpcServerCodeLocationOrigin(host="localhost", port=port, location_name="x")
        args = grpc_types.ExternalScheduleExecutionArgs(
            repository_origin=origins.RemoteRepositoryOrigin(location, "__repository__"),
            instance_ref=instance_ref.InstanceRef.from_dir(str(tmp_path)),
            schedule_name="four_seconds",
            scheduled_execution_timestamp=None,
            scheduled_execution_timezone=None,
            log_key=None,
            timeout=None,
        )
        elapsed = _fails_at_the_hop(lambda: client.external_schedule_execution(args))
        assert 1.9 < elapsed < 3.9  # margin: the 2 s hop, well before the 4 s schedule ends
    finally:
        process.terminate()
        process.wait(timeout=60)


@pytest.mark.grpc_timeouts(default=2, schedule=10)
def test_the_proxy_schedule_hop_is_linked_and_does_not_follow_the_cascade(
    grpc_dagster_proxy: DagsterProxy, grpc_calls: CallLog
) -> None:
    """The proxy's forward is a hop of the client's schedule call: within its budget (2 s of
    10), but not what the cascade's schedule setting asks for."""
    client = grpc_dagster_proxy.client()
    client.external_schedule_execution(grpc_dagster_proxy.schedule_args("every_minute"))
    [hop] = grpc_calls.hops()
    assert (hop.parent.method, hop.child.method, hop.verdict) == (SCHEDULE, SCHEDULE, "propagated")
    assert hop.child.timeout == 2
    assert hop.child.site.endswith(("proxy_server.py", "client.py"), 0, hop.child.site.rindex(":"))
    resolved = DAGSTER.resolve(os.environ)
    found = cascade_finding(hop.child, DAGSTER, resolved)
    assert found is not None
    assert f"{SCHEDULE} to " in found
    assert "sent 2 s, expected " in found
    assert "the schedule setting" in found


def test_the_marker_fails_the_proxy_schedule_hop(pytester: pytest.Pytester) -> None:
    pytester.syspathinsert(ROOT)
    pytester.makepyfile(
        test_proxy=f"""
        import pytest

        @pytest.fixture
        def grpc_dagster_definitions():
            return "{DEFS}"

        @pytest.mark.grpc_require_propagation
        @pytest.mark.grpc_timeouts(default=2, schedule=10)
        def test_schedule_through_the_proxy(grpc_dagster_proxy):
            client = grpc_dagster_proxy.client()
            client.external_schedule_execution(grpc_dagster_proxy.schedule_args("every_minute"))
        """
    )
    result = pytester.runpytest("-p", "no:cacheprovider", "-p", "no:asyncio")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "*test_schedule_through_the_proxy made 1 call(s) whose timeout does not follow the "
            "dagster cascade:",
            f"  {SCHEDULE} to * sent 2 s, expected *the schedule setting*"
            "DAGSTER_SCHEDULE_GRPC_TIMEOUT_SECONDS='10' (marker on test_schedule_through_the_proxy)*",
        ]
    )


def _client_methods() -> dict[str, str]:
    """Each API method DagsterGrpcClient calls, and the timeout expression it passes, read from
    Dagster's own source."""
    import ast
    import inspect

    tree = ast.parse(inspect.getsource(client_module))
    out: dict[str, str] = {}
    queries = ("_query", "_streaming_query", "_gen_query", "_gen_streaming_query")
    for cls in tree.body:
        if not (isinstance(cls, ast.ClassDef) and cls.name == "DagsterGrpcClient"):
            continue
        for fn in cls.body:
            if not isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            defaults = {
                arg.arg: ast.unparse(default)
                for arg, default in zip(fn.args.args[::-1], fn.args.defaults[::-1], strict=False)
            }
            for node in ast.walk(fn):
                if (
                    isinstance(node, ast.Call)
                    and isinstance(node.func, ast.Attribute)
                    and node.func.attr in queries
                    and node.args
                    and isinstance(node.args[0], ast.Constant)
                ):
                    given = [ast.unparse(k.value) for k in node.keywords if k.arg == "timeout"]
                    timeout = given[0] if given else "DEFAULT_GRPC_TIMEOUT"  # _query's own default
                    out[str(node.args[0].value)] = defaults.get(timeout, timeout)
    return out


def test_the_method_map_is_what_dagsters_client_passes() -> None:
    """A guard: DAGSTER.methods against DagsterGrpcClient's source. Default timeouts map to
    "default", the repository constant to "repository", schedule and sensor calls (whose
    timeout comes from their args, defaulting to the setting) to theirs; anything else maps to
    no setting."""
    constants = {
        "DEFAULT_GRPC_TIMEOUT": "default",
        "DEFAULT_REPOSITORY_GRPC_TIMEOUT": "repository",
    }
    expected: dict[str, str | None] = {}
    for method, timeout in _client_methods().items():
        if "Schedule" in method:
            expected[method] = "schedule"
        elif "Sensor" in method:
            expected[method] = "sensor"
        else:
            expected[method] = constants.get(timeout)
    actual = {method: DAGSTER.setting_for(f"api.DagsterApi/{method}") for method in expected}
    assert actual == expected
