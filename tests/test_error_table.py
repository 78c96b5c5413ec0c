"""Every row of ``docs/reference/errors.md`` is reproduced here and its message asserted.

Each row's ``input`` cell (its first code span) keys a scenario below; the scenario feeds that
input to the plugin and returns the text the user sees. The row's ``what the user sees`` cell
(its first code span) must appear in that text, and no text may carry a Python traceback or a
pytest INTERNALERROR. The table and the scenarios must list the same inputs, so neither can drift.
"""

from __future__ import annotations

import importlib
import io
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest

from pytest_grpc_deadlines import DAGSTER, Cascade, FakeServer, GrpcTestServer, Setting, WireProxy
from pytest_grpc_deadlines.calls import _merge as merge
from pytest_grpc_deadlines.cascade import _explain as explain
from pytest_grpc_deadlines.probe import PROBE_SERVICE, PROBE_SERVICE_NAME, ProbeRequest, ProbeServicer
from tests.needs import GRPC_TESTING_MISSING

TABLE = Path(__file__).resolve().parents[1] / "docs" / "reference" / "errors.md"
QUIET = ("-p", "no:cacheprovider", "-p", "no:hypothesispytest", "-p", "no:asyncio")
UNARY = f"{PROBE_SERVICE_NAME}/Unary"
STREAM = f"{PROBE_SERVICE_NAME}/ServerStream"
CODE_SPAN = re.compile(r"``\s?(.+?)\s?``|`([^`]+)`")


@dataclass(frozen=True)
class Row:
    where: str
    input: str
    message: str


@dataclass(frozen=True)
class Env:
    pytester: pytest.Pytester
    monkeypatch: pytest.MonkeyPatch


Scenario = Callable[[Env], str]


def _code_span(cell: str) -> str:
    match = CODE_SPAN.search(cell)
    assert match is not None, f"no code span in table cell {cell!r}"
    return match.group(1) or match.group(2)


def table_rows() -> list[Row]:
    rows: list[Row] = []
    for line in TABLE.read_text(encoding="utf-8").splitlines():
        if not line.startswith("|") or line.startswith(("|--", "| where")):
            continue
        cells = [cell.strip() for cell in line.strip().strip("|").split(" | ")]
        assert len(cells) == 3, f"table row without three cells: {line!r}"
        rows.append(Row(cells[0], _code_span(cells[1]), _code_span(cells[2])))
    return rows


# --- ways to run an input -------------------------------------------------------------------


def _output(result: pytest.RunResult) -> str:
    return result.stdout.str() + "\n" + result.stderr.str()


def marker(decorator: str, body: str = "pass") -> Scenario:
    """``decorator`` on ``test_bad`` beside a good test: the bad one errors (or fails), alone."""

    def run(env: Env) -> str:
        env.pytester.makepyfile(
            test_mod=f"""
            import pytest

            def test_good():
                pass

            {decorator}
            def test_bad(request):
                {body}
            """
        )
        result = env.pytester.runpytest(*QUIET)
        outcomes = result.parseoutcomes()
        assert outcomes.get("passed") == 1, _output(result)
        assert outcomes.get("errors", 0) + outcomes.get("failed", 0) == 1, _output(result)
        return _output(result)

    return run


def usage(*args: str, ini: str = "", files: dict[str, str] | None = None) -> Scenario:
    """A run with these options and ini lines: stopped before any test as a usage error."""

    def run(env: Env) -> str:
        if ini:
            env.pytester.makeini(f"[pytest]\n{ini}\n")
        if files:
            env.pytester.makepyfile(**files)
            env.pytester.syspathinsert()
        env.pytester.makepyfile(test_mod="def test_good():\n    pass\n")
        result = env.pytester.runpytest(*QUIET, *args)
        assert result.ret == pytest.ExitCode.USAGE_ERROR, _output(result)
        return _output(result)

    return run


def explained(*argv: str, exit_code: int, **environ: str) -> Scenario:
    """``python -m pytest_grpc_deadlines`` with this environment (in-process)."""

    def run(env: Env) -> str:
        out, err = io.StringIO(), io.StringIO()
        code = explain.main(list(argv), dict(environ), out, err)
        assert code == exit_code, out.getvalue() + err.getvalue()
        return out.getvalue() + err.getvalue()

    return run


def merged(*argv: str, files: dict[str, str] | None = None) -> Scenario:
    """``python -m pytest_grpc_deadlines merge`` (in-process), in a folder holding ``files``;
    it exits 4, a usage error."""

    def run(env: Env) -> str:
        for name, text in (files or {}).items():
            (env.pytester.path / name).write_text(text)
        env.monkeypatch.chdir(env.pytester.path)
        out, err = io.StringIO(), io.StringIO()
        code = merge.main(list(argv), out, err)
        assert code == 4, out.getvalue() + err.getvalue()
        return out.getvalue() + err.getvalue()

    return run


def raises(call: Callable[[], object], **environ: str) -> Scenario:
    """A Python call that raises: the user sees ``Type: message``, as pytest's ``E`` line shows it."""

    def run(env: Env) -> str:
        for name, value in environ.items():
            env.monkeypatch.setenv(name, value)
        with pytest.raises(Exception) as info:  # noqa: PT011 - the row's message is asserted
            call()
        assert isinstance(info.value, ValueError | TypeError), info.value
        return f"{type(info.value).__name__}: {info.value}"

    return run


def without(module: str, imported: str) -> Scenario:
    """Importing ``imported`` where ``module`` cannot be imported (an extra not installed)."""

    def run(env: Env) -> str:
        env.monkeypatch.setitem(sys.modules, module, None)  # None: the import fails
        env.monkeypatch.delitem(sys.modules, imported, raising=False)
        with pytest.raises(ImportError) as info:
            importlib.import_module(imported)
        return f"{type(info.value).__name__}: {info.value}"

    return run


def on_server(action: Callable[[GrpcTestServer], object]) -> Callable[[], object]:
    def call() -> object:
        with GrpcTestServer() as server:
            return action(server)

    return call


def on_fake_server(action: Callable[[FakeServer], object]) -> Callable[[], object]:
    def call() -> object:
        with FakeServer((PROBE_SERVICE, ProbeServicer())) as server:
            return action(server)

    return call


# --- the scenarios, keyed by the table's input cell -----------------------------------------

TIMEOUTS = "@pytest.mark.grpc_timeouts"
REQUIRE = "@pytest.mark.grpc_require_deadlines"
PROPAGATION = "@pytest.mark.grpc_require_propagation"

SCENARIOS: dict[str, Scenario] = {
    # grpc_timeouts marker
    f"{TIMEOUTS}(sensr=5)": marker(f"{TIMEOUTS}(sensr=5)"),
    f"{TIMEOUTS}(5)": marker(f"{TIMEOUTS}(5)"),
    f"{TIMEOUTS}(sensor=True)": marker(f"{TIMEOUTS}(sensor=True)"),
    f"{TIMEOUTS}(sensor=[5])": marker(f"{TIMEOUTS}(sensor=[5])"),
    f"{TIMEOUTS}(sensor=1.5)": marker(f"{TIMEOUTS}(sensor=1.5)"),
    f"{TIMEOUTS}(inherit='yes')": marker(f"{TIMEOUTS}(inherit='yes')"),
    f"{TIMEOUTS}(host=4266)": marker(f"{TIMEOUTS}(host=4266)"),
    # grpc_require_deadlines marker
    f"{REQUIRE}('yes')": marker(f"{REQUIRE}('yes')"),
    f"{REQUIRE}(True, False)": marker(f"{REQUIRE}(True, False)"),
    f"{REQUIRE}(max_second=5)": marker(f"{REQUIRE}(max_second=5)"),
    f"{REQUIRE}(max_seconds=0)": marker(f"{REQUIRE}(max_seconds=0)"),
    f"{REQUIRE}(max_seconds='soon')": marker(f"{REQUIRE}(max_seconds='soon')"),
    # grpc_require_propagation marker
    f"{PROPAGATION}('yes')": marker(f"{PROPAGATION}('yes')"),
    f"{PROPAGATION}(strict=True)": marker(f"{PROPAGATION}(strict=True)"),
    # --grpc-timeout
    "--grpc-timeout sensor": usage("--grpc-timeout", "sensor"),
    "--grpc-timeout sensr=5": usage("--grpc-timeout", "sensr=5"),
    "--grpc-timeout sensor=abc": usage("--grpc-timeout", "sensor=abc"),
    "--grpc-timeout restart_interval=": usage("--grpc-timeout", "restart_interval="),
    "--grpc-timeout port=abc": usage("--grpc-timeout", "port=abc"),
    # ini keys
    "grpc_timeouts = sensor": usage(ini="grpc_timeouts =\n    sensor"),
    "grpc_timeouts = sensr=5": usage(ini="grpc_timeouts =\n    sensr=5"),
    "grpc_timeouts = sensor=abc": usage(ini="grpc_timeouts =\n    sensor=abc"),
    "grpc_deadlines_cascade = pgd_cascade": usage(ini="grpc_deadlines_cascade = pgd_cascade"),
    "grpc_deadlines_cascade = pgd_no_such_module:CASCADE": usage(
        ini="grpc_deadlines_cascade = pgd_no_such_module:CASCADE"
    ),
    "grpc_deadlines_cascade = pgd_empty_cascade:CASCADE": usage(
        ini="grpc_deadlines_cascade = pgd_empty_cascade:CASCADE", files={"pgd_empty_cascade": "OTHER = 1"}
    ),
    "grpc_deadlines_cascade = pgd_dict_cascade:CASCADE": usage(
        ini="grpc_deadlines_cascade = pgd_dict_cascade:CASCADE",
        files={"pgd_dict_cascade": "CASCADE = {'sensor': 30}"},
    ),
    "grpc_require_deadlines = maybe": usage(ini="grpc_require_deadlines = maybe"),
    "grpc_require_propagation = maybe": usage(ini="grpc_require_propagation = maybe"),
    "grpc_max_deadline = soon": usage(ini="grpc_max_deadline = soon"),
    "grpc_max_deadline = 0": usage(ini="grpc_max_deadline = 0"),
    "grpc_record_calls = maybe": usage(ini="grpc_record_calls = maybe"),
    "grpc_record_calls = false": usage(ini="grpc_record_calls = false\ngrpc_require_deadlines = true"),
    # environment values, as explain reports them
    "DAGSTER_SENSOR_GRPC_TIMEOUT_SECONDS=abc": explained(
        "explain", exit_code=2, DAGSTER_SENSOR_GRPC_TIMEOUT_SECONDS="abc"
    ),
    "DAGSTER_CODE_SERVER_AUTO_RESTART_INTERVAL=": explained(
        "explain", exit_code=2, DAGSTER_CODE_SERVER_AUTO_RESTART_INTERVAL=""
    ),
    "DAGSTER_GRPC_PORT=4266 DAGSTER_GRPC_SOCKET=/tmp/s": explained(
        "explain", exit_code=2, DAGSTER_GRPC_PORT="4266", DAGSTER_GRPC_SOCKET="/tmp/s"
    ),
    "DAGSTER_GRPC_PORT=0": explained("explain", exit_code=2, DAGSTER_GRPC_PORT="0"),
    "DAGSTER_GRPC_MAX_RX_BYTES=3000000000": explained(
        "explain", exit_code=2, DAGSTER_GRPC_MAX_RX_BYTES="3000000000"
    ),
    # the explain command line
    "explain --bogus": explained("explain", "--bogus", exit_code=4),
    "frob": explained("frob", exit_code=4),
    "explain --cascade nope": explained("explain", "--cascade", "nope", exit_code=4),
    "merge --fail-on slow a.json": merged("--fail-on", "slow", "a.json"),
    "merge --fail-on violations=some a.json": merged("--fail-on", "violations=some", "a.json"),
    "merge missing.json": merged("missing.json"),
    "merge notes.txt (not JSON)": merged("notes.txt", files={"notes.txt": "shard 1 passed\n"}),
    "merge old.json (version 2)": merged("old.json", files={"old.json": '{"version": 2, "calls": 0}'}),
    # method names
    'server.delay("pkg.Nope/X", 1)': raises(on_server(lambda s: s.delay("pkg.Nope/X", 1))),
    'fake.invoke_unary("nope.Svc/X", request)': raises(
        on_fake_server(lambda f: f.invoke_unary("nope.Svc/X", ProbeRequest()))
    ),
    # transports, bind addresses, servicers
    'GrpcTestServer(transport="udp")': raises(lambda: GrpcTestServer(transport="udp")),  # type: ignore[arg-type]
    'GrpcTestServer(host="0.0.0.0")': raises(lambda: GrpcTestServer(host="0.0.0.0")),
    "GrpcTestServer(ProbeServicer())": raises(lambda: GrpcTestServer(ProbeServicer())),  # type: ignore[arg-type]
    "grpc_test_server_factory(aio=True)": marker(
        "", "request.getfixturevalue('grpc_test_server_factory')(aio=True)"
    ),
    # byte limits
    f"{TIMEOUTS}(max_rx_bytes=3000000000) + grpc_test_server_factory()": marker(
        f"{TIMEOUTS}(max_rx_bytes=3000000000)", "request.getfixturevalue('grpc_test_server_factory')()"
    ),
    f"{TIMEOUTS}(max_rx_bytes='abc') + grpc_test_server_factory()": marker(
        f"{TIMEOUTS}(max_rx_bytes='abc')", "request.getfixturevalue('grpc_test_server_factory')()"
    ),
    # grace values
    "DAGSTER_GRPC_SHUTDOWN_GRACE_PERIOD=abc + server.stop()": raises(
        on_server(lambda s: s.stop()), DAGSTER_GRPC_SHUTDOWN_GRACE_PERIOD="abc"
    ),
    # behaviours
    "server.delay(method, -1)": raises(on_server(lambda s: s.delay(UNARY, -1))),
    'server.delay(method, 1, when="during")': raises(on_server(lambda s: s.delay(UNARY, 1, when="during"))),  # type: ignore[arg-type]
    "server.fail(method, grpc.StatusCode.OK)": raises(on_server(lambda s: s.fail(UNARY, grpc.StatusCode.OK))),
    "server.fail(method, 14)": raises(on_server(lambda s: s.fail(UNARY, 14))),  # type: ignore[arg-type]
    'server.stream_interval(method, float("nan"))': raises(
        on_server(lambda s: s.stream_interval(STREAM, float("nan")))
    ),
    "server.stream_interval(unary method, 1)": raises(on_server(lambda s: s.stream_interval(UNARY, 1))),
    "server.fail(unary method, code, after_messages=1)": raises(
        on_server(lambda s: s.fail(UNARY, grpc.StatusCode.ABORTED, after_messages=1))
    ),
    "server.hold(method, times=0)": raises(on_server(lambda s: s.hold(UNARY, times=0))),
    "server.fail(method, code, skip=-1)": raises(
        on_server(lambda s: s.fail(UNARY, grpc.StatusCode.UNAVAILABLE, skip=-1))
    ),
    "server.stop(1e300)": raises(on_server(lambda s: s.stop(1e300))),
    # the run's own files
    "--grpc-deadlines-json reports (a folder)": usage(
        "--grpc-deadlines-json", "reports", files={"reports/__init__": ""}
    ),
    "grpc_deadlines_cascade = pgd_exiting:CASCADE": usage(
        ini="grpc_deadlines_cascade = pgd_exiting:CASCADE", files={"pgd_exiting": "import sys\nsys.exit(3)"}
    ),
    "grpc_timeouts = sensor=30, then sensor=45": usage(ini="grpc_timeouts =\n    sensor=30\n    sensor=45"),
    # explain, per environment value
    "DAGSTER_GRPC_PORT=70000": explained("explain", exit_code=2, DAGSTER_GRPC_PORT="70000"),
    "DAGSTER_GRPC_SHUTDOWN_GRACE_PERIOD=100000000000": explained(
        "explain", exit_code=2, DAGSTER_GRPC_SHUTDOWN_GRACE_PERIOD="100000000000"
    ),
    "explain --process webserver": explained("explain", "--process", "webserver", exit_code=4),
    # a cascade's own definition
    "Cascade(methods={'shop.*': 'nope'})": raises(
        lambda: Cascade("shop", (Setting("rpc", "SHOP_RPC_TIMEOUT_SECONDS", 10),), methods={"shop.*": "nope"})
    ),
    # the wire proxy
    "WireProxy('unix:/tmp/s.sock')": raises(lambda: WireProxy("unix:/tmp/s.sock")),
    "proxy.latency(1, direction='sideways')": raises(
        on_server(lambda s: WireProxy(s.target).latency(1, direction="sideways"))  # type: ignore[arg-type]
    ),
    # extras
    "import pytest_grpc_deadlines.strategies (no Hypothesis)": without(
        "hypothesis", "pytest_grpc_deadlines.strategies"
    ),
}


@pytest.fixture(autouse=True)
def no_ambient_cascade(monkeypatch: pytest.MonkeyPatch) -> None:
    for env_var in DAGSTER.env_vars:
        monkeypatch.delenv(env_var, raising=False)


def test_every_row_has_a_scenario_and_every_scenario_a_row() -> None:
    inputs = [row.input for row in table_rows()]
    assert len(inputs) == len(set(inputs)), "an input appears twice in the table"
    assert set(inputs) == set(SCENARIOS), (
        f"rows without a scenario: {sorted(set(inputs) - set(SCENARIOS))}; "
        f"scenarios without a row: {sorted(set(SCENARIOS) - set(inputs))}"
    )


@pytest.mark.parametrize("row", table_rows(), ids=lambda row: row.input)
def test_row_shows_its_message_without_a_traceback(
    row: Row, pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    if GRPC_TESTING_MISSING and row.input.startswith("fake."):
        pytest.skip(GRPC_TESTING_MISSING)
    text = SCENARIOS[row.input](Env(pytester, monkeypatch))
    assert row.message in text, f"{row.message!r} not in what the user sees:\n{text}"
    assert "Traceback" not in text
    assert "INTERNALERROR" not in text
    assert "During handling of the above exception" not in text
