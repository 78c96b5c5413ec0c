"""``explain --process`` checks what one process reads; ``--env-file`` given once per process
checks each environment and every pair of processes against each other."""

from __future__ import annotations

import io
import json
from collections.abc import Sequence
from pathlib import Path

import pytest

from pytest_grpc_deadlines import DAGSTER
from pytest_grpc_deadlines.cascade import _explain as explain

RESTART = "DAGSTER_CODE_SERVER_AUTO_RESTART_INTERVAL"


def run(argv: Sequence[str], environ: dict[str, str] | None = None) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = explain.main(list(argv), environ or {}, out, err)
    return code, out.getvalue(), err.getvalue()


def env_file(tmp_path: Path, name: str, text: str) -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


# --- one process -------------------------------------------------------------------------------


def test_every_process_names_only_settings_of_the_cascade() -> None:
    names = set(DAGSTER.names)
    assert [p.name for p in DAGSTER.processes] == ["client", "code-server", "code-server-start", "dev"]
    assert all(set(p.settings) <= names for p in DAGSTER.processes)


def test_a_variable_only_dagster_dev_reads_is_no_error_for_code_server_start() -> None:
    environ = {RESTART: ""}  # int(os.getenv(X, "5")) raises in `dagster dev`, and only there
    code, out, _ = run(["explain", "--process", "code-server-start"], environ)
    assert code == 0
    assert "restart_interval" not in out
    assert "heartbeat_ttl" in out
    assert "no errors, no warnings" in out
    code, out, _ = run(["explain", "--process", "dev"], environ)
    assert code == 2
    assert f"error: {RESTART}=''" in out


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        (
            {"DAGSTER_CODE_SERVER_PORT": "4266", "DAGSTER_CODE_SERVER_SOCKET": "/tmp/s"},
            "error: DAGSTER_CODE_SERVER_PORT='4266' and DAGSTER_CODE_SERVER_SOCKET='/tmp/s' are both "
            "set: `dagster code-server start` fails with CheckError",
        ),
        (
            {"DAGSTER_CODE_SERVER_PORT": "abc"},
            "error: DAGSTER_CODE_SERVER_PORT='abc' (environment) is not a whole number, as click.INT "
            "reads it: `dagster code-server start` refuses it",
        ),
        (
            {"DAGSTER_GRPC_PROXY_HEARTBEAT_TTL_SECONDS": ""},
            "error: DAGSTER_GRPC_PROXY_HEARTBEAT_TTL_SECONDS='' (environment) is not a whole number",
        ),
        (
            {"DAGSTER_CODE_SERVER_MAX_WORKERS": "0"},
            "error: code_server_max_workers 0 < 1: `dagster code-server start`'s thread pool raises "
            "ValueError",
        ),
    ],
)
def test_code_server_start_variables_are_checked_with_dagsters_readers(
    environ: dict[str, str], message: str
) -> None:
    code, out, _ = run(["explain", "--process", "code-server-start"], environ)
    assert code == 2
    assert message in out


def test_an_unknown_process_is_a_usage_error_listing_the_processes() -> None:
    code, _, err = run(["explain", "--process", "webserver"])
    assert code == 4
    assert err.startswith(
        "--process: unknown process 'webserver' for the dagster cascade; accepted: client, "
        "code-server, code-server-start, dev\n"
    )


# --- environment files ---------------------------------------------------------------------------


def test_one_env_file_is_resolved_instead_of_the_environment(tmp_path: Path) -> None:
    path = env_file(
        tmp_path,
        "prod.env",
        "# the code server\nexport DAGSTER_SENSOR_GRPC_TIMEOUT_SECONDS='300'\n\n"
        "DAGSTER_GRPC_SHUTDOWN_GRACE_PERIOD=400\n",
    )
    code, out, _ = run(["explain", "--env-file", path], {"DAGSTER_GRPC_TIMEOUT_SECONDS": "7"})
    assert code == 0
    assert f"resolved from {path}:" in out
    assert "DAGSTER_SENSOR_GRPC_TIMEOUT_SECONDS='300' (environment)" in out
    assert "default: 60" in out  # the process environment's 7 is not read


def test_processes_are_checked_against_each_other(tmp_path: Path) -> None:
    # The webserver raised its receive limit and its sensor timeout; the code server kept both
    # its send limit and a grace shorter than the sensor timeout.
    web = env_file(
        tmp_path,
        "web.env",
        "DAGSTER_GRPC_MAX_SEND_BYTES=500000000\nDAGSTER_GRPC_MAX_RX_BYTES=500000000\n"
        "DAGSTER_SENSOR_GRPC_TIMEOUT_SECONDS=300\n",
    )
    code_server = env_file(tmp_path, "code.env", "DAGSTER_GRPC_SHUTDOWN_GRACE_PERIOD=60\n")
    code, out, _ = run(["explain", "--env-file", f"client={web}", "--env-file", f"code-server={code_server}"])
    assert code == 1
    assert (
        "for client (the webserver and the daemon: DagsterGrpcClient calls to code servers), "
        f"resolved from {web}:" in out
    )
    between = out.split("between the processes:\n")[1].splitlines()
    assert between == [
        f"warning: client ({web}) -> code-server ({code_server}): client ({web}) sends messages up "
        f"to max_send_bytes 500000000 but code-server ({code_server}) accepts only max_rx_bytes "
        "100000000: a message between the two fails on the receiver with RESOURCE_EXHAUSTED "
        "'Received message larger than max'",
        f"warning: client ({web}) -> code-server ({code_server}): client ({web}) waits up to sensor "
        f"300 s for a call, longer than the grace 60 s code-server ({code_server}) gives in-flight "
        "calls when it shuts down: a call still running then is cut after 60 s (UNAVAILABLE), not "
        "at its deadline",
    ]


def test_matching_processes_have_nothing_between_them(tmp_path: Path) -> None:
    same = "DAGSTER_GRPC_MAX_SEND_BYTES=500000000\nDAGSTER_GRPC_MAX_RX_BYTES=500000000\n"
    web, code_server = env_file(tmp_path, "web.env", same), env_file(tmp_path, "code.env", same)
    code, out, _ = run(["explain", "--env-file", f"client={web}", "--env-file", f"code-server={code_server}"])
    assert code == 0
    assert out.endswith("between the processes:\n  no errors, no warnings\n")


def test_processes_json_has_each_environment_and_what_lies_between(tmp_path: Path) -> None:
    web = env_file(tmp_path, "web.env", "DAGSTER_SENSOR_GRPC_TIMEOUT_SECONDS=300\n")
    code_server = env_file(tmp_path, "code.env", "DAGSTER_GRPC_SHUTDOWN_GRACE_PERIOD=60\n")
    code, out, _ = run(
        ["explain", "--json", "--env-file", f"client={web}", "--env-file", f"code-server={code_server}"]
    )
    doc = json.loads(out)
    assert code == doc["exit_code"] == 1
    assert [(p["process"], p["source"]) for p in doc["processes"]] == [
        ("client", web),
        ("code-server", code_server),
    ]
    assert "restart_interval" not in [s["name"] for s in doc["processes"][0]["settings"]]
    [crossed] = doc["between"]
    assert (crossed["processes"], crossed["settings"]) == (
        f"client ({web}) -> code-server ({code_server})",
        ["sensor", "grace"],
    )


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("DAGSTER_GRPC_TIMEOUT_SECONDS\n", "line 1 is not NAME=VALUE: 'DAGSTER_GRPC_TIMEOUT_SECONDS'"),
        ("\n\n9=1\n", "line 3 is not NAME=VALUE: '9=1'"),
    ],
)
def test_a_bad_env_file_line_is_a_usage_error_naming_the_line(
    tmp_path: Path, text: str, message: str
) -> None:
    path = env_file(tmp_path, "bad.env", text)
    code, _, err = run(["explain", "--env-file", path])
    assert code == 4
    assert err.startswith(f"--env-file {path}: {message}\n")


def test_a_missing_env_file_is_a_usage_error(tmp_path: Path) -> None:
    path = str(tmp_path / "nope.env")
    code, _, err = run(["explain", "--env-file", path])
    assert code == 4
    assert err.startswith(f"--env-file {path}: [Errno 2] No such file or directory")


def test_an_unknown_process_in_an_env_file_is_a_usage_error(tmp_path: Path) -> None:
    path = env_file(tmp_path, "web.env", "")
    code, _, err = run(["explain", "--env-file", f"webserver={path}"])
    assert code == 4
    assert err.startswith(f"--env-file webserver={path}: unknown process 'webserver' for the dagster cascade")


def test_the_docs_table_of_processes_is_the_model() -> None:
    page = (Path(__file__).parents[2] / "docs" / "reference" / "cascade.md").read_text()
    rows = [line for line in page.splitlines() if line.startswith("| `") and line.count("|") == 4]
    documented = {
        cells[0].strip("` "): tuple(name.strip() for name in cells[2].split(","))
        for cells in (row.strip("|").split("|") for row in rows)
        if cells[0].strip("` ") in {p.name for p in DAGSTER.processes}
    }
    assert documented == {p.name: p.settings for p in DAGSTER.processes}
