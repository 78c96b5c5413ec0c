"""A generated suite of server tests under pytest-xdist: does it pass, how long, how much memory.

Run ``python scripts/scale.py`` (``--tests 2000 --workers 2`` by default). It writes a test file
with that many parametrized tests, each taking the ``grpc_test_server`` fixture and making one call,
into a temporary directory, runs ``python -m pytest -n WORKERS -q`` on it in a subprocess, and
prints the outcome, the wall time and the peak memory:

- peak RSS of one process: ``getrusage(RUSAGE_CHILDREN).ru_maxrss``, the largest of the pytest
  controller and its workers;
- peak RSS of the whole run: the controller and its workers together, sampled from ``/proc``
  every 50 ms (Linux only; a peak shorter than that can be missed).

The exit status is 0 when every generated test passed, 1 otherwise. The figures are measurements,
not pass/fail criteria: on a machine shared with other work they vary from run to run.
"""

from __future__ import annotations

import argparse
import os
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from pathlib import Path

TEST_FILE = """\
import pytest
from pytest_grpc_deadlines.probe import ProbeRequest


@pytest.mark.parametrize("n", range({tests}))
def test_call(grpc_test_server, n):
    size = n % 64
    response = grpc_test_server.probe().Unary(ProbeRequest(response_bytes=size), timeout=10)
    assert response.payload == b"x" * size
    [call] = grpc_test_server.calls
    assert call.outcome == "ok"
"""

INI = "[pytest]\nasyncio_default_fixture_loop_scope = function\n"

_CLOSING = re.compile(r"^=* ?((?:\d+ \w+(?:, )?)+) in [\d.]+s\b")


def _tree_rss_kib(root: int) -> int:
    """The resident memory of ``root`` and all its descendants, in KiB (0 without /proc)."""
    children: dict[int, list[int]] = {}
    rss: dict[int, int] = {}
    try:
        entries = os.listdir("/proc")
    except OSError:
        return 0
    for entry in entries:
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
            with open(f"/proc/{entry}/statm") as statm:
                pages = int(statm.read().split()[1])
        except (OSError, IndexError, ValueError):
            continue  # the process ended meanwhile
        pid, parent = int(entry), int(fields[1])
        children.setdefault(parent, []).append(pid)
        rss[pid] = pages * os.sysconf("SC_PAGE_SIZE") // 1024
    total, todo = 0, [root]
    while todo:
        pid = todo.pop()
        total += rss.get(pid, 0)
        todo.extend(children.get(pid, ()))
    return total


class _Sampler(threading.Thread):
    """Samples the RSS of a process tree until stopped, keeping the peak."""

    def __init__(self, pid: int, interval: float = 0.05) -> None:
        super().__init__(name="scale-rss-sampler", daemon=True)
        self.pid = pid
        self.interval = interval
        self.peak_kib = 0
        self._stop_event = threading.Event()

    def run(self) -> None:
        while not self._stop_event.is_set():
            self.peak_kib = max(self.peak_kib, _tree_rss_kib(self.pid))
            self._stop_event.wait(self.interval)

    def stop(self) -> None:
        self._stop_event.set()
        self.join()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Run a generated suite of grpc_test_server tests under xdist."
    )
    parser.add_argument("--tests", type=int, default=2000, help="how many tests (default 2000)")
    parser.add_argument("--workers", type=int, default=2, help="xdist workers, -n (default 2)")
    parser.add_argument("--timeout", type=float, default=1200.0, help="seconds the run may take")
    parser.add_argument("--keep", action="store_true", help="keep the generated directory")
    args = parser.parse_args(argv)
    if args.tests < 1 or args.workers < 1:
        parser.error("--tests and --workers must be at least 1")

    directory = Path(tempfile.mkdtemp(prefix="grpc-scale-"))
    try:
        (directory / "pytest.ini").write_text(INI)
        (directory / "test_generated.py").write_text(TEST_FILE.format(tests=args.tests))
        command = [
            sys.executable,
            "-m",
            "pytest",
            "-p",
            "no:cacheprovider",
            "-q",
            "-n",
            str(args.workers),
            "test_generated.py",
        ]
        print(f"scale: {args.tests} tests, -n {args.workers}, in {directory}", flush=True)
        start = time.monotonic()
        process = subprocess.Popen(
            command, cwd=directory, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
        )
        sampler = _Sampler(process.pid)
        sampler.start()
        try:
            output, _ = process.communicate(timeout=args.timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            output, _ = process.communicate()
        finally:
            sampler.stop()
        wall = time.monotonic() - start
        # Linux reports ru_maxrss in KiB, macOS in bytes.
        maxrss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
        one_mib = maxrss / (1024 * 1024 if sys.platform == "darwin" else 1024)
        text = output.decode(errors="replace")
        closing = next((line for line in reversed(text.splitlines()) if _CLOSING.match(line)), "")
        passed = re.search(r"(\d+) passed", closing)
        ok = process.returncode == 0 and passed is not None and int(passed.group(1)) == args.tests
        if not ok:
            print(text[-5000:])
        print(f"scale: pytest exit {process.returncode}: {closing.strip('= ') or 'no closing line'}")
        print(f"scale: wall time {wall:.1f} s ({wall / args.tests * 1000:.1f} ms a test)")
        print(f"scale: peak RSS of one process (getrusage RUSAGE_CHILDREN) {one_mib:.0f} MiB")
        if sampler.peak_kib:
            together = sampler.peak_kib / 1024
            print(f"scale: peak RSS of the run, controller and workers together {together:.0f} MiB")
        return 0 if ok else 1
    finally:
        if args.keep:
            print(f"scale: kept {directory}")
        else:
            shutil.rmtree(directory, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
