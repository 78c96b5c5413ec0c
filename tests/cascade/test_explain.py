"""``python -m pytest_grpc_deadlines explain``: output and exit codes.

Most cases call ``explain.main`` in-process with an explicit environment; a few run the real
command in a subprocess whose environment has no DAGSTER_* variable but those the test sets.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest

from pytest_grpc_deadlines.cascade import _explain as explain

SENSOR = "DAGSTER_SENSOR_GRPC_TIMEOUT_SECONDS"
GRACE = "DAGSTER_GRPC_SHUTDOWN_GRACE_PERIOD"
GRPC = "DAGSTER_GRPC_TIMEOUT_SECONDS"
RESTART = "DAGSTER_CODE_SERVER_AUTO_RESTART_INTERVAL"
LOG_EXCEPTIONS = "DAGSTER_CODE_SERVER_LOG_EXCEPTIONS"
PORT = "DAGSTER_GRPC_PORT"
SOCKET = "DAGSTER_GRPC_SOCKET"


@dataclass(frozen=True)
class Run:
    code: int
    out: str
    err: str


def run(argv: Sequence[str], environ: dict[str, str] | None = None) -> Run:
    out, err = io.StringIO(), io.StringIO()
    code = explain.main(list(argv), environ or {}, out, err)
    return Run(code, out.getvalue(), err.getvalue())


def run_command(*args: str, environ: dict[str, str] | None = None, cwd: Path | None = None) -> Run:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DAGSTER_")}
    env.update(environ or {})
    proc = subprocess.run(
        [sys.executable, "-m", "pytest_grpc_deadlines", *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    return Run(proc.returncode, proc.stdout, proc.stderr)


@pytest.fixture
def user_cascade(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A module ``my_timeouts`` holding a user cascade, importable in-process and from tmp_path."""
    (tmp_path / "my_timeouts.py").write_text(
        textwrap.dedent(
            """
            from pytest_grpc_deadlines import Cascade, Max, Setting

            CASCADE = Cascade(
                name="mine",
                reader="myapp",
                settings=(
                    Setting("base", "MY_BASE", 10, kind="seconds"),
                    Setting("slow", "MY_SLOW", Max(30, "base"), kind="seconds"),
                ),
            )
            NOT_A_CASCADE = 42
            """
        ),
        encoding="utf-8",
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    sys.modules.pop("my_timeouts", None)
    yield tmp_path
    sys.modules.pop("my_timeouts", None)


# Exit codes, through the real command


def test_command_exits_0_for_a_clean_environment() -> None:
    result = run_command("explain")
    assert result.code == 0, result
    assert "no errors, no warnings" in result.out


def test_command_exits_2_naming_an_unparsable_variable_and_its_value() -> None:
    result = run_command("explain", environ={SENSOR: "abc"})
    assert result.code == 2, result
    assert f"{SENSOR}='abc'" in result.out
    assert "Dagster itself raises ValueError there" in result.out


def test_command_exits_1_when_grace_is_below_sensor() -> None:
    result = run_command("explain", environ={GRACE: "5", SENSOR: "400"})
    assert result.code == 1, result
    assert "warning: grace 5 < sensor 400" in result.out


def test_command_exits_4_on_a_bad_option_with_usage() -> None:
    result = run_command("explain", "--bogus")
    assert result.code == 4
    assert "unrecognized arguments: --bogus" in result.err
    assert "usage: python -m pytest_grpc_deadlines" in result.err


def test_command_loads_a_user_cascade(user_cascade: Path) -> None:
    result = run_command(
        "explain", "--cascade", "my_timeouts:CASCADE", environ={"MY_SLOW": "5"}, cwd=user_cascade
    )
    assert result.code == 1, result
    assert "mine cascade, resolved from the environment:" in result.out
    assert "warning: slow 5 < 30" in result.out


def test_command_exits_2_for_an_empty_restart_interval() -> None:
    # int(os.getenv(X, "5")) parses the empty string: Dagster's ValueError, not the default.
    result = run_command("explain", environ={RESTART: ""})
    assert result.code == 2, result
    assert f"error: {RESTART}='' (environment) is not a whole number" in result.out
    assert "Dagster itself raises ValueError there" in result.out


def test_command_exits_0_for_an_empty_timeout() -> None:
    # ``if os.getenv(X):`` reads the empty string as unset.
    result = run_command("explain", environ={GRPC: ""})
    assert result.code == 0, result
    assert f"({GRPC}='' counts as unset)" in result.out
    assert "no errors, no warnings" in result.out


def test_command_exits_2_when_port_and_socket_are_both_set() -> None:
    result = run_command("explain", environ={PORT: "4266", SOCKET: "/tmp/s"})
    assert result.code == 2, result
    errors = [line for line in result.out.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, result.out
    assert f"{PORT}='4266'" in errors[0]
    assert f"{SOCKET}='/tmp/s'" in errors[0]
    assert "You must pass one and only one of `port` or `socket`." in errors[0]


# Text output


def test_clean_environment_exits_0() -> None:
    result = run(["explain"])
    assert result.code == explain.EXIT_OK == 0
    assert result.err == ""
    assert result.out.splitlines()[0] == "dagster cascade, resolved from the environment:"
    assert result.out.rstrip().endswith("no errors, no warnings")


def test_text_lists_every_setting_with_its_value_and_source() -> None:
    lines = run(["explain"], {SENSOR: "5"}).out.splitlines()
    assert lines[1].split() == ["NAME", "VALUE", "SOURCE"]
    assert lines[2].split() == ["default", "60", "default:", "60"]
    assert lines[5].split() == ["sensor", "5", f"{SENSOR}='5'", "(environment)"]
    assert lines[6].split()[:2] == ["grace", "60"]


def test_unparsable_value_exits_2_and_shows_invalid() -> None:
    result = run(["explain"], {SENSOR: "abc"})
    assert result.code == explain.EXIT_ERRORS == 2
    assert "INVALID" in result.out
    assert f"error: {SENSOR}='abc' (environment) is not a whole number" in result.out
    assert "error: grace derives from sensor, which is invalid" in result.out


def test_grace_below_sensor_exits_1_naming_grace_and_sensor() -> None:
    result = run(["explain"], {GRACE: "5", SENSOR: "400"})
    assert result.code == explain.EXIT_WARNINGS == 1
    assert "warning: grace 5 < sensor 400" in result.out


def test_zero_timeout_exits_1() -> None:
    assert run(["explain"], {GRPC: "0"}).code == 1


def test_byte_limit_beyond_32_bits_exits_2() -> None:
    result = run(["explain"], {"DAGSTER_GRPC_MAX_RX_BYTES": "2147483648"})
    assert result.code == 2
    assert "OverflowError" in result.out


def test_errors_outrank_warnings() -> None:
    assert run(["explain"], {SENSOR: "abc", GRPC: "0"}).code == 2


def test_explicit_grace_with_an_unparsable_sensor_exits_2() -> None:
    result = run(["explain"], {GRACE: "5", SENSOR: "abc"})
    assert result.code == 2
    assert "warning: grace 5 < default 60" in result.out


def test_environment_defaults_to_os_environ(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(SENSOR, "abc")
    out, err = io.StringIO(), io.StringIO()
    assert explain.main(["explain"], None, out, err) == 2
    assert f"{SENSOR}='abc'" in out.getvalue()


def test_port_zero_without_a_socket_exits_2_quoting_dagster() -> None:
    result = run(["explain"], {PORT: "0"})
    assert result.code == 2
    assert "You must pass one and only one of --port/-p or --socket/-s." in result.out


def test_a_port_or_a_socket_alone_exits_0() -> None:
    assert run(["explain"], {PORT: "4266"}).code == 0
    assert run(["explain"], {SOCKET: "/tmp/s"}).code == 0


@pytest.mark.parametrize("text", ["0", "-3"])
def test_restart_interval_at_or_below_zero_exits_1_with_its_consequence(text: str) -> None:
    result = run(["explain"], {RESTART: text})
    assert result.code == 1
    assert f"warning: restart_interval {int(text)} <= 0" in result.out
    assert "busy loop" in result.out


def test_exception_logging_shows_on_for_zero() -> None:
    lines = run(["explain"], {LOG_EXCEPTIONS: "0"}).out.splitlines()
    row = next(line.split() for line in lines if line.split()[:1] == ["log_exceptions"])
    assert row == ["log_exceptions", "True", f"{LOG_EXCEPTIONS}='0'", "(environment)"]


# JSON output


def test_json_output_has_settings_violations_and_exit_code() -> None:
    result = run(["explain", "--json"], {GRACE: "5", SENSOR: "400"})
    doc = json.loads(result.out)
    assert result.code == doc["exit_code"] == 1
    assert doc["cascade"] == "dagster"
    assert [s["name"] for s in doc["settings"]] == [
        "default",
        "repository",
        "schedule",
        "sensor",
        "grace",
        "max_rx_bytes",
        "max_send_bytes",
        "restart_interval",
        "log_exceptions",
        "port",
        "socket",
        "host",
        "max_workers",
        "code_server_port",
        "code_server_socket",
        "code_server_host",
        "code_server_max_workers",
        "startup_timeout",
        "heartbeat_ttl",
        "heartbeat_timeout",
    ]
    sensor = doc["settings"][3]
    assert sensor == {
        "name": "sensor",
        "env_var": SENSOR,
        "raw": "400",
        "value": 400,
        "source": f"{SENSOR}='400' (environment)",
        "error": None,
    }
    assert len(doc["violations"]) == 1
    assert doc["violations"][0]["severity"] == "warning"
    assert doc["violations"][0]["settings"][:1] == ["grace"]
    assert "sensor" in doc["violations"][0]["settings"]


def test_json_output_reports_an_invalid_setting() -> None:
    result = run(["explain", "--json"], {SENSOR: "abc"})
    doc = json.loads(result.out)
    assert result.code == doc["exit_code"] == 2
    sensor = doc["settings"][3]
    assert (sensor["raw"], sensor["value"]) == ("abc", None)
    assert "Dagster itself raises ValueError there" in sensor["error"]


def test_json_output_lists_port_and_socket_on_their_shared_error() -> None:
    doc = json.loads(run(["explain", "--json"], {PORT: "4266", SOCKET: "/tmp/s"}).out)
    assert doc["exit_code"] == 2
    assert [(v["severity"], v["settings"]) for v in doc["violations"]] == [("error", ["port", "socket"])]
    port = next(s for s in doc["settings"] if s["name"] == "port")
    assert (port["raw"], port["value"], port["error"]) == ("4266", 4266, None)


def test_json_output_for_a_clean_environment() -> None:
    doc = json.loads(run(["explain", "--json"]).out)
    assert (doc["violations"], doc["exit_code"]) == ([], 0)


# Usage errors


def test_no_command_exits_4_with_usage() -> None:
    result = run([])
    assert result.code == explain.EXIT_USAGE == 4
    assert "a command is required: explain" in result.err
    assert "usage: python -m pytest_grpc_deadlines" in result.err
    assert result.out == ""


def test_unknown_command_exits_4() -> None:
    result = run(["frob"])
    assert result.code == 4
    assert "invalid choice: 'frob'" in result.err


def test_bad_option_exits_4_with_usage() -> None:
    result = run(["explain", "--bogus"])
    assert result.code == 4
    assert "unrecognized arguments: --bogus" in result.err
    assert "usage: python -m pytest_grpc_deadlines" in result.err


@pytest.mark.parametrize(
    ("path", "message"),
    [
        (
            "nope",
            "--cascade: 'nope' is neither a built-in cascade (dagster, otel_otlp, grpc_simple_stubs) "
            "nor module:attribute (e.g. myproject.timeouts:CASCADE)",
        ),
        (
            ":CASCADE",
            "--cascade: ':CASCADE' is neither a built-in cascade (dagster, otel_otlp, grpc_simple_stubs) "
            "nor module:attribute",
        ),
        (
            "no_such_module_xyz:C",
            "--cascade: cannot import module 'no_such_module_xyz' named in 'no_such_module_xyz:C'",
        ),
        (
            "my_timeouts:MISSING",
            "--cascade: module 'my_timeouts' has no attribute 'MISSING' (from 'my_timeouts:MISSING')",
        ),
        ("my_timeouts:NOT_A_CASCADE", "names a int object, not a pytest_grpc_deadlines.Cascade"),
    ],
)
@pytest.mark.usefixtures("user_cascade")
def test_bad_cascade_path_exits_4_with_the_message(path: str, message: str) -> None:
    result = run(["explain", "--cascade", path])
    assert result.code == 4
    assert message in result.err
    assert "usage:" in result.err
    assert result.out == ""


# A user cascade


@pytest.mark.usefixtures("user_cascade")
def test_user_cascade_is_resolved_and_checked() -> None:
    result = run(["explain", "--cascade", "my_timeouts:CASCADE"], {"MY_BASE": "x"})
    assert result.code == 2
    assert "mine cascade, resolved from the environment:" in result.out
    assert (
        "MY_BASE='x' (environment) is not a whole number, as int() reads it: myapp itself raises"
        in result.out
    )
    assert "DAGSTER" not in result.out


@pytest.mark.usefixtures("user_cascade")
def test_user_cascade_json() -> None:
    doc = json.loads(run(["explain", "--cascade", "my_timeouts:CASCADE", "--json"], {"MY_BASE": "50"}).out)
    assert doc["cascade"] == "mine"
    assert [(s["name"], s["value"]) for s in doc["settings"]] == [("base", 50), ("slow", 50)]
