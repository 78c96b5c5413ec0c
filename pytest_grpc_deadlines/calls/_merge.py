"""``python -m pytest_grpc_deadlines merge``: the JSON reports of separate runs as one.

CI splits a suite across jobs (pytest-split groups, Bazel shards, a matrix of Python versions);
each job writes its report with ``--grpc-deadlines-json`` (and names itself with
``--grpc-deadlines-run``). This merges them: totals and entries add up, a test id that two
reports give different results is flagged, and ``--fail-on`` thresholds apply to the merged
totals, where a per-shard threshold would be wrong.

Exit codes: 0 merged and within the thresholds; 1 a ``--fail-on`` threshold exceeded; 2 two
reports disagree on a test's result (more tests than ``--fail-on conflicts=N`` allows, 0 by
default); 4 a usage error (an option, a file that cannot be read, or one that is not a report of
version 3).

Plain JSON and the report's own merging: no grpc.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn, TextIO

from ._report import LISTS, VERSION, SuiteReport

__all__ = ["EXIT_CONFLICT", "EXIT_OK", "EXIT_THRESHOLD", "EXIT_USAGE", "KINDS", "main", "merge"]

EXIT_OK = 0
EXIT_THRESHOLD = 1
EXIT_CONFLICT = 2
EXIT_USAGE = 4

#: What ``--fail-on`` counts: the report's lists, and the test ids the reports disagree on.
KINDS = (*LISTS, "conflicts")


class _UsageError(Exception):
    pass


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise _UsageError(f"{self.prog}: error: {message}")


@dataclass(frozen=True)
class Threshold:
    """``--fail-on KIND[=N]``: fail when the merged count of KIND is above N."""

    kind: str
    limit: int

    @classmethod
    def parse(cls, text: str) -> Threshold:
        kind, sep, limit = text.partition("=")
        kind = kind.strip()
        if kind not in KINDS:
            raise _UsageError(f"--fail-on {text}: unknown kind {kind!r}; accepted: {', '.join(KINDS)}")
        if not sep:
            return cls(kind, 0)
        try:
            number = int(limit)
        except ValueError:
            number = -1
        if number < 0:
            raise _UsageError(
                f"--fail-on {text}: {limit!r} is not a count; give KIND=N with N a whole number >= 0"
            )
        return cls(kind, number)


@dataclass
class Merged:
    """The reports as one: the merged report, its runs, and the test ids they disagree on."""

    report: SuiteReport
    runs: list[str]
    #: test id -> {run: result}, for each test two runs gave different results
    conflicts: dict[str, dict[str, str]]
    #: test ids run by more than one report, with one result
    repeated: list[str]

    def count(self, kind: str) -> int:
        if kind == "conflicts":
            return len(self.conflicts)
        return len(getattr(self.report, kind))

    def to_dict(self) -> dict[str, Any]:
        data = self.report.to_dict()
        data["run"] = None
        data["runs"] = self.runs
        data["tests"] = {test: result for test, result in data["tests"].items() if test not in self.conflicts}
        data["conflicts"] = [
            {"test": test, "results": results} for test, results in sorted(self.conflicts.items())
        ]
        data["repeated"] = sorted(self.repeated)
        return data


def _load(path: str) -> dict[str, Any]:
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise _UsageError(f"{path}: cannot be read: {exc.strerror or exc}") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise _UsageError(f"{path}: is not JSON ({exc})") from None
    if not isinstance(data, dict) or not isinstance(data.get("version"), int):
        raise _UsageError(f"{path}: is not a pytest-grpc-deadlines report (no version)")
    if data["version"] != VERSION:
        raise _UsageError(
            f"{path}: is a report of version {data['version']}; merge reads version {VERSION} "
            "(written by this release's --grpc-deadlines-json), which has each test's result"
        )
    return data


def merge(reports: Sequence[tuple[str, dict[str, Any]]]) -> Merged:
    """Merge ``(path, report)`` pairs; a report is named by its ``run``, else by its path."""
    merged = SuiteReport()
    names: list[str] = []
    results: dict[str, dict[str, str]] = {}
    for path, data in reports:
        name = str(data.get("run") or path)
        if name in names:
            name = f"{name} ({path})"
        names.append(name)
        for test, result in data.get("tests", {}).items():
            results.setdefault(str(test), {})[name] = str(result)
        merged.merge(data)  # its tests are replaced below, by the results of every run
        merged.max_deadline = (
            merged.max_deadline if merged.max_deadline is not None else data.get("max_deadline")
        )
    conflicts = {test: by_run for test, by_run in results.items() if len(set(by_run.values())) > 1}
    repeated = [test for test, by_run in results.items() if len(by_run) > 1 and test not in conflicts]
    merged.tests = {test: next(iter(by_run.values())) for test, by_run in results.items()}
    merged.used = True
    return Merged(merged, names, conflicts, repeated)


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="python -m pytest_grpc_deadlines merge",
        description=(
            "Merge the JSON reports (--grpc-deadlines-json) of separate runs or shards: print the "
            "merged summary, flag a test that two reports give different results, and apply "
            "--fail-on thresholds to the merged totals. Exit 0 when all is well, 1 when a "
            "threshold is exceeded, 2 when reports disagree on more tests' results than "
            "--fail-on conflicts=N allows (0 by default), 4 on a usage error."
        ),
    )
    parser.add_argument("reports", nargs="+", metavar="REPORT.json", help="reports to merge")
    parser.add_argument("-o", "--output", metavar="OUT.json", help="write the merged report here")
    parser.add_argument(
        "--fail-on",
        action="append",
        default=[],
        metavar="KIND[=N]",
        help=f"exit 1 when the merged count of KIND is above N (0 by default); KIND: {', '.join(KINDS)}",
    )
    return parser


def main(argv: Sequence[str] | None = None, out: TextIO | None = None, err: TextIO | None = None) -> int:
    out = out or sys.stdout
    err = err or sys.stderr
    parser = _parser()
    try:
        args = parser.parse_args(argv)
        thresholds = [Threshold.parse(text) for text in args.fail_on]
        merged = merge([(path, _load(path)) for path in args.reports])
        if args.output:
            try:
                Path(args.output).write_text(json.dumps(merged.to_dict(), indent=2) + "\n", encoding="utf-8")
            except OSError as exc:
                raise _UsageError(f"-o {args.output}: cannot be written: {exc.strerror or exc}") from None
    except _UsageError as exc:
        print(str(exc), file=err)
        print(parser.format_usage().rstrip(), file=err)
        return EXIT_USAGE
    lines = [f"{len(merged.runs)} reports merged: {', '.join(merged.runs)}", *merged.report.lines()]
    tests = merged.report.tests
    lines.append(
        f"tests: {len(tests)}, {len(merged.repeated)} of them in more than one report with one result"
    )
    lines.append(f"tests the reports disagree on: {len(merged.conflicts)}")
    for test, by_run in sorted(merged.conflicts.items()):
        lines.append(f"  {test}: " + ", ".join(f"{result} in {run}" for run, result in by_run.items()))
    # disagreeing results fail the merge (exit 2) unless --fail-on conflicts=N tolerates them
    conflict_limit = min((t.limit for t in thresholds if t.kind == "conflicts"), default=0)
    exceeded = [t for t in thresholds if t.kind != "conflicts" and merged.count(t.kind) > t.limit]
    for threshold in exceeded:
        lines.append(
            f"--fail-on {threshold.kind}={threshold.limit}: {merged.count(threshold.kind)} "
            f"{threshold.kind} in the merged reports"
        )
    print("\n".join(lines), file=out)
    if len(merged.conflicts) > conflict_limit:
        return EXIT_CONFLICT
    return EXIT_THRESHOLD if exceeded else EXIT_OK
