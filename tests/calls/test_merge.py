"""``python -m pytest_grpc_deadlines merge``: reports of real separate runs merged, a test two runs
disagree on flagged, thresholds applied to the merged totals, and each test's result in a report."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import pytest

from pytest_grpc_deadlines.calls._merge import main as merge
from pytest_grpc_deadlines.calls._report import test_result as result_after

pytest_plugins = ["pytester"]

QUIET = ("-p", "no:cacheprovider", "-p", "no:hypothesispytest", "-p", "no:asyncio")

#: Two files, as pytest-split or a CI matrix would run them apart; each makes one call with no
#: deadline, and ``test_flaky`` fails where FLAKY is set.
SHARD_ONE = """
import os
import pytest
from pytest_grpc_deadlines.probe import ProbeRequest

def test_one(grpc_test_server):
    grpc_test_server.probe().Unary(ProbeRequest())  # no deadline

def test_flaky():
    assert not os.environ.get("FLAKY")

@pytest.mark.xfail(reason="known")
def test_known():
    raise AssertionError
"""
SHARD_TWO = """
from pytest_grpc_deadlines.probe import ProbeRequest

def test_two(grpc_test_server):
    grpc_test_server.probe().Unary(ProbeRequest())  # no deadline
"""


def _shard(pytester: pytest.Pytester, name: str, *files: str) -> Path:
    path = pytester.path / f"{name}.json"
    pytester.runpytest(*QUIET, *files, "--grpc-deadlines-json", str(path), "--grpc-deadlines-run", name)
    return path


def _merge(*argv: str | Path) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = merge([str(a) for a in argv], out, err)
    return code, out.getvalue(), err.getvalue()


@pytest.fixture
def shards(pytester: pytest.Pytester) -> tuple[Path, Path]:
    pytester.makepyfile(test_shard_one=SHARD_ONE, test_shard_two=SHARD_TWO)
    return (
        _shard(pytester, "shard-1", "test_shard_one.py"),
        _shard(pytester, "shard-2", "test_shard_two.py"),
    )


def test_a_report_names_its_run_and_has_each_tests_result(shards: tuple[Path, Path]) -> None:
    data = json.loads(shards[0].read_text())
    assert data["run"] == "shard-1"
    assert data["tests"] == {
        "test_shard_one.py::test_one": "passed",
        "test_shard_one.py::test_flaky": "passed",
        "test_shard_one.py::test_known": "xfailed",
    }


def test_shards_merge_into_one_report(shards: tuple[Path, Path], tmp_path: Path) -> None:
    out_path = tmp_path / "merged.json"
    code, out, err = _merge(*shards, "-o", out_path)
    assert (code, err) == (0, "")
    lines = out.splitlines()
    assert lines[0] == "2 reports merged: shard-1, shard-2"
    assert "2 client calls recorded: OK 2" in lines
    assert "calls with no deadline: 2" in lines
    assert "tests the reports disagree on: 0" in lines
    merged = json.loads(out_path.read_text())
    assert merged["runs"] == ["shard-1", "shard-2"]
    assert merged["calls"] == 2
    assert sorted(entry["test"] for entry in merged["no_deadline"]) == [
        "test_shard_one.py::test_one",
        "test_shard_two.py::test_two",
    ]
    assert len(merged["tests"]) == 4
    assert (merged["conflicts"], merged["repeated"]) == ([], [])


def test_a_threshold_applies_to_the_merged_totals(shards: tuple[Path, Path]) -> None:
    # each shard alone has one call with no deadline: within the threshold; together, two
    for shard in shards:
        assert _merge(shard, "--fail-on", "no_deadline=1")[0] == 0
    code, out, _ = _merge(*shards, "--fail-on", "no_deadline=1", "--fail-on", "violations")
    assert code == 1
    assert out.splitlines()[-1] == "--fail-on no_deadline=1: 2 no_deadline in the merged reports"


def test_a_test_two_runs_disagree_on_is_flagged(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, shards: tuple[Path, Path]
) -> None:
    monkeypatch.setenv("FLAKY", "1")
    again = _shard(pytester, "shard-1-retry", "test_shard_one.py")
    code, out, _ = _merge(*shards, again)
    assert code == 2
    assert "tests the reports disagree on: 1" in out
    assert "  test_shard_one.py::test_flaky: passed in shard-1, failed in shard-1-retry" in out
    assert "tests: 4, 2 of them in more than one report with one result" in out
    # a matrix may tolerate some: an explicit threshold decides
    assert _merge(*shards, again, "--fail-on", "conflicts=1")[0] == 0
    assert _merge(*shards, again, "--fail-on", "conflicts=1", "--fail-on", "no_deadline")[0] == 1


def test_reports_without_a_run_name_are_named_by_their_path(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_plain="def test_plain():\n    pass\n")
    path = pytester.path / "plain.json"
    pytester.runpytest(*QUIET, "--grpc-deadlines-json", str(path))
    code, out, _ = _merge(path)
    assert code == 0
    assert out.splitlines()[0] == f"1 reports merged: {path}"


def test_xdist_workers_results_reach_the_report(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_spread="import pytest\n\n"
        "@pytest.mark.parametrize('n', range(4))\ndef test_n(n):\n    assert n != 3\n"
    )
    path = pytester.path / "spread.json"
    pytester.runpytest_subprocess(*QUIET, "-n", "2", "--grpc-deadlines-json", str(path))
    tests = json.loads(path.read_text())["tests"]
    assert tests == {f"test_spread.py::test_n[{n}]": "failed" if n == 3 else "passed" for n in range(4)}


@pytest.mark.parametrize(
    ("phases", "result"),
    [
        ([("setup", "passed", False), ("call", "passed", False), ("teardown", "passed", False)], "passed"),
        ([("setup", "failed", False), ("teardown", "passed", False)], "error"),
        ([("setup", "passed", False), ("call", "failed", False), ("teardown", "failed", False)], "failed"),
        ([("setup", "passed", False), ("call", "passed", False), ("teardown", "failed", False)], "error"),
        ([("setup", "skipped", False), ("teardown", "passed", False)], "skipped"),
        ([("setup", "passed", False), ("call", "skipped", True)], "xfailed"),
        ([("setup", "passed", False), ("call", "passed", True)], "xpassed"),
        # pytest-rerunfailures: a failed attempt is "rerun", the last attempt decides
        ([("call", "rerun", False), ("setup", "passed", False), ("call", "passed", False)], "passed"),
    ],
)
def test_a_tests_result_follows_its_phases(phases: list[tuple[str, str, bool]], result: str) -> None:
    current: str | None = None
    for when, outcome, xfail in phases:
        current = result_after(current, when, outcome, xfail)
    assert current == result


def test_the_command_runs_as_a_module(shards: tuple[Path, Path]) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "pytest_grpc_deadlines", "merge", *map(str, shards), "--fail-on", "conflicts"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("2 reports merged: shard-1, shard-2")
