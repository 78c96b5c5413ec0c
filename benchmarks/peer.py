"""Benchmark a suite of 300 one-call tests on this plugin against the same suite on pytest-grpc.

Run ``python benchmarks/peer.py`` (``--runs 2`` for a quick look; ``--venvs DIR`` to keep the
benchmark virtualenvs elsewhere, see ``_venvs.py``). Each suite runs as
``python -m pytest -q -p no:cacheprovider`` in its own temporary directory (a ``pytest.ini``
with just ``[pytest]``) in its own venv: this repository in ``plugin``, pytest-grpc 0.8.0 in
``pytest-grpc``, with the same grpcio, protobuf and pytest. Both serve the same raw-bytes echo
service, a generic handler without protobuf (``bench.Echo/Say`` returns the request's bytes):

- ``plugin calls``: a conftest overrides ``grpc_test_servicers`` with the echo service; each test
  takes ``grpc_test_server`` and makes one call on ``grpc_test_server.channel()``;
- ``pytest-grpc calls``: the test module defines ``grpc_add_to_server``, ``grpc_servicer`` and
  ``grpc_stub_cls`` (module scope); each test takes ``grpc_stub`` and calls ``.Say``;
- ``... empty``: the same files, but the tests take no fixture and do nothing: the baseline of
  each venv (pytest, the plugin's start-up, collecting and reporting 300 tests).

The four alternate, ``--runs`` times each (default 5) after one untimed warm-up each; each
child's CPU time (user + system, ``getrusage(RUSAGE_CHILDREN)``) and wall time are measured. It
prints one table: medians and p90 in milliseconds, the ratios plugin/pytest-grpc of the call
suites' medians against their target, and the cost per test above each venv's empty baseline.
These are benchmarks, not test assertions: the exit status is 0 whatever the figures (1 only if a
suite fails, whose output it then prints).
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import _venvs
from _report import median, percentile, print_table, versions

TARGET = 1.0  # plugin / pytest-grpc, call suites, CPU and wall medians
TESTS = 300
WARM_UP = 1
PYTEST = ["-m", "pytest", "-q", "-p", "no:cacheprovider"]

HANDLER = """\
import grpc

#: bench.Echo/Say returns the request's bytes: no (de)serializer, so bytes pass through.
HANDLER = grpc.method_handlers_generic_handler(
    "bench.Echo", {"Say": grpc.unary_unary_rpc_method_handler(lambda request, context: request)}
)
"""

PLUGIN_CONFTEST = (
    HANDLER
    + """
import pytest


def add_echo(servicer, server):
    server.add_generic_rpc_handlers((HANDLER,))


@pytest.fixture(scope="module")
def grpc_test_servicers():
    return [(add_echo, object())]
"""
)

PLUGIN_CALLS = """\
import pytest


@pytest.mark.parametrize("n", range({tests}))
def test_call(grpc_test_server, n):
    assert grpc_test_server.channel().unary_unary("/bench.Echo/Say")(b"x", timeout=5) == b"x"
"""

PYTEST_GRPC_FIXTURES = (
    HANDLER
    + """
import pytest


class EchoStub:
    def __init__(self, channel):
        self._say = channel.unary_unary("/bench.Echo/Say")

    def Say(self, request, timeout=None):
        return self._say(request, timeout=timeout)


@pytest.fixture(scope="module")
def grpc_add_to_server():
    def add_echo(servicer, server):
        server.add_generic_rpc_handlers((HANDLER,))

    return add_echo


@pytest.fixture(scope="module")
def grpc_servicer():
    return object()


@pytest.fixture(scope="module")
def grpc_stub_cls():
    return EchoStub

"""
)

PYTEST_GRPC_CALLS = """
@pytest.mark.parametrize("n", range({tests}))
def test_call(grpc_stub, n):
    assert grpc_stub.Say(b"x", timeout=5) == b"x"
"""

EMPTY = """\
import pytest


@pytest.mark.parametrize("n", range({tests}))
def test_call(n):
    pass
"""


@dataclass
class Suite:
    name: str
    venv: str
    files: dict[str, str]  # name -> text, {tests} filled in


SUITES = (
    Suite("plugin calls", "plugin", {"conftest.py": PLUGIN_CONFTEST, "test_calls.py": PLUGIN_CALLS}),
    Suite("plugin empty", "plugin", {"conftest.py": PLUGIN_CONFTEST, "test_calls.py": EMPTY}),
    Suite("pytest-grpc calls", "pytest-grpc", {"test_calls.py": PYTEST_GRPC_FIXTURES + PYTEST_GRPC_CALLS}),
    Suite(
        "pytest-grpc empty",
        "pytest-grpc",
        {"test_calls.py": PYTEST_GRPC_FIXTURES + EMPTY.replace("import pytest\n", "", 1)},
    ),
)


def _ms(seconds: float, digits: int = 1) -> str:
    return f"{seconds * 1e3:.{digits}f}"


def _run(python: Path, suite: Suite, cwd: Path, env: dict[str, str]) -> _venvs.Run:
    run = _venvs.timed_run([str(python), *PYTEST], cwd, env)
    if run.returncode != 0:
        print(f"the {suite.name} suite exited {run.returncode}:\n{run.output}", file=sys.stderr)
        raise SystemExit(1)
    return run


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--runs", type=int, default=5, help="timed runs of each suite (default 5)")
    parser.add_argument("--scale", type=float, default=1.0, help="multiply the number of runs (default 1.0)")
    parser.add_argument("--tests", type=int, default=TESTS, help=f"tests in each suite (default {TESTS})")
    _venvs.add_argument(parser)
    args = parser.parse_args(argv)
    runs = max(1, round(args.runs * args.scale))
    tests: int = args.tests
    pythons = {name: _venvs.ensure(name, args.venvs) for name in _venvs.VENVS}
    started = time.perf_counter()
    print(versions())
    print(f"venvs: {args.venvs}")
    print("load average at start: {:.2f} {:.2f} {:.2f}".format(*os.getloadavg()))
    print(f"{tests} tests a suite; {runs} runs each after {WARM_UP} warm-up; times in ms\n")
    env = _venvs.child_env()
    root = Path(tempfile.mkdtemp(prefix="pgd-bench-peer-"))
    cpu: dict[str, list[float]] = {s.name: [] for s in SUITES}
    wall: dict[str, list[float]] = {s.name: [] for s in SUITES}
    try:
        dirs: dict[str, Path] = {}
        for index, suite in enumerate(SUITES):
            cwd = dirs[suite.name] = root / f"suite{index}"
            cwd.mkdir()
            (cwd / "pytest.ini").write_text("[pytest]\n")
            for name, text in suite.files.items():
                (cwd / name).write_text(text.replace("{tests}", str(tests)))
        for suite in SUITES:
            for _ in range(WARM_UP):
                _run(pythons[suite.venv], suite, dirs[suite.name], env)
        for round_ in range(runs):
            k = round_ % len(SUITES)
            for suite in SUITES[k:] + SUITES[:k]:  # rotate the order to cancel drift
                run = _run(pythons[suite.venv], suite, dirs[suite.name], env)
                cpu[suite.name].append(run.cpu)
                wall[suite.name].append(run.wall)
    finally:
        shutil.rmtree(root, ignore_errors=True)

    blank = ["", "", "", ""]
    rows = [
        [
            s.name,
            str(runs),
            _ms(median(cpu[s.name])),
            _ms(percentile(cpu[s.name], 0.9)),
            _ms(median(wall[s.name])),
            _ms(percentile(wall[s.name], 0.9)),
            "",
            "",
            "",
        ]
        for s in SUITES
    ]
    for measure, samples in (("CPU", cpu), ("wall", wall)):
        ratio = median(samples["plugin calls"]) / median(samples["pytest-grpc calls"])
        rows.append(
            [
                f"plugin / pytest-grpc calls: {measure}",
                "",
                *blank,
                f"{ratio:.3f}x",
                f"<= {TARGET:g}x",
                "PASS" if ratio <= TARGET else "MISS",
            ]
        )
    for measure, samples in (("CPU", cpu), ("wall", wall)):
        ratio = median(samples["plugin empty"]) / median(samples["pytest-grpc empty"])
        rows.append([f"plugin / pytest-grpc empty: {measure}", "", *blank, f"{ratio:.3f}x", "(info)", ""])
    for venv in _venvs.VENVS:
        per_cpu = (median(cpu[f"{venv} calls"]) - median(cpu[f"{venv} empty"])) / tests
        per_wall = (median(wall[f"{venv} calls"]) - median(wall[f"{venv} empty"])) / tests
        rows.append(
            [f"{venv}: per test above empty", "", _ms(per_cpu, 3), "", _ms(per_wall, 3), "", "", "(info)", ""]
        )
    print_table(
        ["suite", "n", "cpu med", "cpu p90", "wall med", "wall p90", "ratio", "target", "result"],
        rows,
    )
    load = "{:.2f} {:.2f} {:.2f}".format(*os.getloadavg())
    print(f"\n{time.perf_counter() - started:.1f} s; load average at end: {load}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
