"""Soak the plugin's timing-sensitive tests: run them again and again with both cores loaded.

Run ``python scripts/soak.py`` (or ``tox -e soak``) from the repository root. It starts busy-loop
processes (two by default, one per core on the 2-core machines this project targets), runs
pytest over the test files in :data:`TIMING_SENSITIVE` (or the paths given) ``--runs`` times, one
after the other, and always stops the busy processes afterwards, on Ctrl-C or SIGTERM too. Each
run is bounded by ``--run-timeout`` and the whole soak by ``--max-seconds``; a run that overruns
is killed (its whole process group) and counts as failed.

It prints a line per run with pytest's counts and the ids of failing tests, then a final line
``soak: N runs, F failed``, and exits 1 when any run failed (or the time ran out before every
run was done), 0 otherwise. A flake it finds is a bug to fix at its root (a gate in place of a
sleep, or a wider margin justified in a ``# margin:`` comment), never a retry: this script
retries nothing. The output of each failing run is kept in the log directory it names.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType

#: The test files whose tests wait on real time (deadlines, delays, gates, server stops), and
#: the examples, which do too. Paths are relative to the repository root.
TIMING_SENSITIVE: tuple[str, ...] = (
    "tests/servers/test_lifecycle.py",
    "tests/servers/test_delays.py",
    "tests/servers/test_gates.py",
    "tests/servers/test_faults.py",
    "tests/servers/test_records.py",
    "tests/servers/test_methods.py",
    "tests/servers/test_servicers.py",
    "tests/servers/test_options.py",
    "tests/servers/test_cancellation.py",
    "tests/probe",
    "tests/properties/test_scenarios.py",
    "tests/calls/test_records.py",
    "tests/calls/test_errors.py",
    "tests/calls/test_interceptors.py",
    "tests/calls/test_pairs.py",
    "tests/calls/test_retries.py",
    "tests/calls/test_hops.py",
    "tests/wire",
    "tests/calls/test_attribution.py",
    "tests/calls/test_transparency.py",
    "tests/calls/test_install.py",
    "tests/calls/test_report.py",
    "tests/plugin/test_server_fixtures.py",
    "tests/test_leaks.py",
    "examples",
)

ROOT = Path(__file__).resolve().parent.parent

#: The busy loop: it spins until its parent goes away or its lifetime ends, so even a soak that
#: is killed with SIGKILL (when no ``finally`` runs) leaves no spinning process behind for long.
BUSY_LOOP = """\
import os, sys, time
parent, end = os.getppid(), time.monotonic() + float(sys.argv[1])
while os.getppid() == parent and time.monotonic() < end:
    for _ in range(200_000):
        pass
"""

#: pytest's closing line, ``=== 3 passed, 1 failed in 2.50s ===`` (without the ``=`` under ``-q``).
_CLOSING = re.compile(r"^=* ?((?:\d+ \w+(?:, )?)+) in [\d.]+s\b")
_COUNT = re.compile(r"(\d+) (\w+)")
_FAILING = re.compile(r"^(FAILED|ERROR) (.+?)(?: - .*)?$")


@dataclass
class RunResult:
    number: int
    returncode: int | None  # None: killed at its time limit
    seconds: float
    counts: dict[str, int] = field(default_factory=dict)
    failing: list[str] = field(default_factory=list)
    log: Path | None = None

    @property
    def failed(self) -> bool:
        return self.returncode != 0 or bool(self.failing)

    def line(self) -> str:
        counts = ", ".join(f"{n} {what}" for what, n in self.counts.items()) or "no summary"
        if self.returncode is None:
            status = "TIMED OUT"
        elif self.failed:
            status = f"FAILED (exit {self.returncode})"
        else:
            status = "ok"
        return f"run {self.number}: {status}: {counts} in {self.seconds:.1f} s"


def parse_output(text: str) -> tuple[dict[str, int], list[str]]:
    """pytest's final counts and the ids its short summary (``-rfE``) lists as failing."""
    counts: dict[str, int] = {}
    for line in reversed(text.splitlines()):
        closing = _CLOSING.match(line)
        if closing:
            for number, what in _COUNT.findall(closing.group(1)):
                key = "errors" if what == "error" else what
                counts[key] = counts.get(key, 0) + int(number)
            break
    # Only the run's own short summary: a failing test's captured output may hold the summary
    # of a pytest run inside it (pytester), with its own FAILED lines.
    lines = text.splitlines()
    starts = [i for i, line in enumerate(lines) if "short test summary info" in line]
    summary = lines[starts[-1] + 1 :] if starts else []
    failing = [f"{m.group(1)} {m.group(2)}" for m in map(_FAILING.match, summary) if m]
    return counts, failing


class _Terminated(Exception):
    """SIGTERM, turned into an exception so that the ``finally`` blocks run."""


def _on_sigterm(signum: int, frame: FrameType | None) -> None:
    raise _Terminated(f"signal {signum}")


def _kill_group(process: subprocess.Popen[bytes]) -> None:
    """Kill ``process`` and everything it started (it leads its own process group)."""
    if process.poll() is None:
        with suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
    process.wait()


@contextmanager
def busy_processes(count: int, lifetime: float) -> Iterator[list[subprocess.Popen[bytes]]]:
    """``count`` processes spinning on a core each, killed on the way out whatever happens."""
    processes: list[subprocess.Popen[bytes]] = []
    try:
        for _ in range(count):
            processes.append(
                subprocess.Popen(
                    [sys.executable, "-c", BUSY_LOOP, str(lifetime)],
                    stdin=subprocess.DEVNULL,
                    start_new_session=True,  # Ctrl-C in the terminal reaches the soak only
                )
            )
        yield processes
    finally:
        for process in processes:
            _kill_group(process)


def run_once(
    number: int, paths: Sequence[str], extra: Sequence[str], timeout: float, log_dir: Path
) -> RunResult:
    """One pytest run over ``paths``; its output goes to a log file, kept if the run fails."""
    log = log_dir / f"run-{number:03d}.log"
    command = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "-rfE", *extra, *paths]
    start = time.monotonic()
    with log.open("wb") as out:
        process = subprocess.Popen(
            command,
            cwd=ROOT,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # so a timeout or Ctrl-C kills its whole group
        )
        try:
            returncode: int | None = process.wait(timeout)
        except subprocess.TimeoutExpired:
            returncode = None
        finally:
            _kill_group(process)
    seconds = time.monotonic() - start
    counts, failing = parse_output(log.read_text(errors="replace"))
    result = RunResult(number, returncode, seconds, counts, failing, log)
    if not result.failed:
        log.unlink()
        result.log = None
    return result


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Run the timing-sensitive tests repeatedly with both cores busy.",
        epilog="Arguments after -- go to pytest, e.g. -- -x or -- -k server.",
    )
    parser.add_argument(
        "paths", nargs="*", help="test files or directories (default: TIMING_SENSITIVE, those that exist)"
    )
    parser.add_argument("--runs", type=int, default=10, help="how many runs (default 10)")
    parser.add_argument(
        "--busy", type=int, default=2, help="busy-loop processes loading the cores (default 2)"
    )
    parser.add_argument(
        "--run-timeout", type=float, default=600.0, help="seconds one run may take (default 600)"
    )
    parser.add_argument(
        "--max-seconds",
        type=float,
        default=3600.0,
        help="seconds the whole soak may take; runs not started by then are not run (default 3600)",
    )
    parser.add_argument("--log-dir", type=Path, default=None, help="keep failing runs' output here")
    own = list(sys.argv[1:] if argv is None else argv)
    extra: list[str] = []
    if "--" in own:
        own, extra = own[: own.index("--")], own[own.index("--") + 1 :]
    args = parser.parse_args(own)
    if args.runs < 1 or args.busy < 0 or args.run_timeout <= 0 or args.max_seconds <= 0:
        parser.error("--runs must be >= 1, --busy >= 0, and the time limits above 0")

    paths: list[str] = args.paths or [p for p in TIMING_SENSITIVE if (ROOT / p).exists()]
    log_dir: Path = args.log_dir or Path(tempfile.mkdtemp(prefix="soak-logs-"))
    log_dir.mkdir(parents=True, exist_ok=True)
    deadline = time.monotonic() + args.max_seconds
    results: list[RunResult] = []
    interrupted = ""
    previous = signal.signal(signal.SIGTERM, _on_sigterm)
    # Ctrl-C too, even when started with SIGINT ignored (as a shell's background job is).
    previous_int = signal.signal(signal.SIGINT, signal.default_int_handler)
    print(
        f"soak: {args.runs} runs of {' '.join(paths)} with {args.busy} busy processes "
        f"on {os.cpu_count()} CPUs (at most {args.run_timeout:g} s a run, {args.max_seconds:g} s in all)",
        flush=True,
    )
    try:
        with busy_processes(args.busy, args.max_seconds + 60):
            for number in range(1, args.runs + 1):
                remaining = deadline - time.monotonic()
                if remaining <= 1:
                    interrupted = f"--max-seconds {args.max_seconds:g} reached"
                    break
                result = run_once(number, paths, extra, min(args.run_timeout, remaining), log_dir)
                results.append(result)
                print(result.line(), flush=True)
                for test in result.failing:
                    print(f"    {test}", flush=True)
                if result.log is not None:
                    print(f"    output: {result.log}", flush=True)
    except (KeyboardInterrupt, _Terminated) as exc:
        interrupted = f"interrupted ({type(exc).__name__})"
    finally:
        signal.signal(signal.SIGTERM, previous)
        signal.signal(signal.SIGINT, previous_int)

    failed = [r for r in results if r.failed]
    failing_ids = sorted({test for r in failed for test in r.failing})
    if failing_ids:
        print("failing tests:")
        for test in failing_ids:
            runs = [r.number for r in failed if test in r.failing]
            print(f"    {test} (runs {', '.join(map(str, runs))})")
    if not any(r.log for r in results) and args.log_dir is None:
        shutil.rmtree(log_dir, ignore_errors=True)
    note = f" ({interrupted} after {len(results)} of {args.runs})" if interrupted else ""
    print(f"soak: {len(results)} runs, {len(failed)} failed{note}", flush=True)
    return 1 if failed or interrupted else 0


if __name__ == "__main__":
    sys.exit(main())
