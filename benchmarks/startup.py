"""Benchmark what having the plugin installed costs pytest's start-up.

Run ``python benchmarks/startup.py`` (``--runs 3`` for a quick look; ``--venvs DIR`` to keep the
benchmark virtualenv elsewhere, see ``_venvs.py``). In the ``plugin`` venv (this repository
installed with ``pip install -e``, nothing else but its dependencies), in a temporary directory
holding one trivial test and a ``pytest.ini`` with just ``[pytest]`` (so the repository's own
configuration is not picked up), it runs

- ``plugin``: ``python -m pytest -q -p no:cacheprovider test_one.py``;
- ``without``: the same with ``-p no:grpc_deadlines``, so the plugin is installed but not loaded;

alternating, ``--runs`` times each after 2 untimed warm-up runs each, and measures each child's
CPU time (user + system, ``getrusage(RUSAGE_CHILDREN)``) and wall time. It prints one table:
median and p90 in milliseconds, the ratio plugin/without of the medians, the target and
PASS/MISS; then, from one more ``python -X importtime`` run of ``plugin``, whether grpc,
protobuf and hypothesis were imported (the plugin imports neither grpc nor protobuf at start-up).
These are benchmarks, not test assertions: the exit status is 0 whatever the figures.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import sys
import tempfile
import time
from pathlib import Path

import _venvs
from _report import median, percentile, print_table, versions

TARGET = 1.10  # plugin / without, CPU medians
WARM_UP = 2
TEST = "def test_one():\n    assert True\n"
PYTEST = ["-m", "pytest", "-q", "-p", "no:cacheprovider", "test_one.py"]
VARIANTS: dict[str, list[str]] = {"plugin": [], "without": ["-p", "no:grpc_deadlines"]}
#: Top-level packages that pytest's start-up with the plugin should not import.
UNWANTED = ("grpc", "google.protobuf", "hypothesis")

#: ``import time: self [us] | cumulative | imported package``: after the bar's space, the name
#: is indented two spaces per level of nesting under the module whose import caused it.
IMPORTTIME = re.compile(r"^import time:\s*\d+\s*\| *\d+ *\| ((?:  )*)(\S+)\s*$")


def _ms(seconds: float) -> str:
    return f"{seconds * 1e3:.1f}"


def _run(python: Path, variant: str, cwd: Path, env: dict[str, str]) -> _venvs.Run:
    run = _venvs.timed_run([str(python), *PYTEST, *VARIANTS[variant]], cwd, env)
    if run.returncode != 0:
        print(f"pytest ({variant}) exited {run.returncode}:\n{run.output}", file=sys.stderr)
        raise SystemExit(1)
    return run


def imported(stderr: str) -> dict[str, list[str]]:
    """package -> the chain of imports that brought it in, innermost first (the package's
    outermost entry, the module whose import imported it, and so on), for each package of
    ``UNWANTED`` that ``-X importtime`` lists; absent ones are not in the result.

    Modules that pytest loads with ``importlib`` (entry-point plugins, conftests) are not listed
    by ``-X importtime``: what they import shows at the top level, so a chain stops there."""
    entries: list[tuple[int, str]] = []  # (depth, module), in the order imports finished
    for line in stderr.splitlines():
        match = IMPORTTIME.match(line)
        if match:
            entries.append((len(match.group(1)) // 2, match.group(2)))
    found: dict[str, list[str]] = {}
    for package in UNWANTED:
        hits = [
            (depth, index)
            for index, (depth, module) in enumerate(entries)
            if module == package or module.startswith(package + ".")
        ]
        if not hits:
            continue
        depth, index = min(hits)  # the outermost entry, the earliest of those
        # A module is printed when its import ends, after the ones it imported: its importer is
        # the next entry one level up.
        chain, level = [entries[index][1]], depth
        for outer_depth, outer in entries[index + 1 :]:
            if outer_depth < level:
                chain.append(outer)
                level = outer_depth
        found[package] = chain
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--runs", type=int, default=10, help="timed runs of each variant (default 10)")
    parser.add_argument("--scale", type=float, default=1.0, help="multiply the number of runs (default 1.0)")
    _venvs.add_argument(parser)
    args = parser.parse_args(argv)
    runs = max(1, round(args.runs * args.scale))
    python = _venvs.ensure("plugin", args.venvs)
    started = time.perf_counter()
    print(versions())
    print(f"venv: {python.parent.parent}")
    print("load average at start: {:.2f} {:.2f} {:.2f}".format(*os.getloadavg()))
    print(f"{runs} runs each after {WARM_UP} warm-up; times in ms; ratio = plugin / without median\n")
    env = _venvs.child_env()
    cwd = Path(tempfile.mkdtemp(prefix="pgd-bench-startup-"))
    try:
        (cwd / "pytest.ini").write_text("[pytest]\n")
        (cwd / "test_one.py").write_text(TEST)
        for _ in range(WARM_UP):
            for variant in VARIANTS:
                _run(python, variant, cwd, env)
        cpu: dict[str, list[float]] = {v: [] for v in VARIANTS}
        wall: dict[str, list[float]] = {v: [] for v in VARIANTS}
        order = list(VARIANTS)
        for _ in range(runs):
            for variant in order:
                run = _run(python, variant, cwd, env)
                cpu[variant].append(run.cpu)
                wall[variant].append(run.wall)
            order.reverse()  # alternate which goes first, to cancel drift
        check = _venvs.timed_run([str(python), "-X", "importtime", *PYTEST], cwd, env)
    finally:
        shutil.rmtree(cwd, ignore_errors=True)

    rows = [
        [
            f"{variant}{'' if variant == 'plugin' else ' (-p no:grpc_deadlines)'}",
            str(runs),
            _ms(median(cpu[variant])),
            _ms(percentile(cpu[variant], 0.9)),
            _ms(median(wall[variant])),
            _ms(percentile(wall[variant], 0.9)),
            "",
            "",
            "",
        ]
        for variant in VARIANTS
    ]
    cpu_ratio = median(cpu["plugin"]) / median(cpu["without"])
    wall_ratio = median(wall["plugin"]) / median(wall["without"])
    blank = ["", "", "", "", ""]
    rows.append(
        [
            "plugin / without: CPU",
            *blank,
            f"{cpu_ratio:.3f}x",
            f"<= {TARGET:g}x",
            "PASS" if cpu_ratio <= TARGET else "MISS",
        ]
    )
    rows.append(["plugin / without: wall", *blank, f"{wall_ratio:.3f}x", "(info)", ""])
    print_table(
        ["variant", "n", "cpu med", "cpu p90", "wall med", "wall p90", "ratio", "target", "result"],
        rows,
    )

    print("\nimported at start-up with the plugin (-X importtime, one run):")
    if check.returncode != 0:
        print(f"  the run exited {check.returncode}:\n{check.output}")
    else:
        found = imported(check.output)
        for package in UNWANTED:
            chain = found.get(package)
            print(f"  {package}: " + (f"yes ({' <- '.join(chain)})" if chain else "no"))
    load = "{:.2f} {:.2f} {:.2f}".format(*os.getloadavg())
    print(f"\n{time.perf_counter() - started:.1f} s; load average at end: {load}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
