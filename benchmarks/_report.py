"""What the benchmark scripts share: the versions line, the statistics and the results table."""

from __future__ import annotations

import math
import os
import platform
from collections.abc import Iterable, Sequence

import grpc
from google.protobuf import __version__ as protobuf_version


def versions() -> str:
    try:
        from google.protobuf.internal import api_implementation

        backend = api_implementation.Type()
    except Exception:  # pragma: no cover - only an informative label
        backend = "?"
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return (
        f"Python {platform.python_version()} ({platform.python_implementation()}), "
        f"grpcio {grpc.__version__}, protobuf {protobuf_version} ({backend}), "
        f"{platform.system()} {platform.machine()}, {cpus} CPUs"
    )


def median(samples: Iterable[float]) -> float:
    s = sorted(samples)
    mid = len(s) // 2
    return float(s[mid]) if len(s) % 2 else (s[mid - 1] + s[mid]) / 2


def percentile(samples: Iterable[float], share: float) -> float:
    """The nearest-rank percentile: ``share`` 0.95 is the p95."""
    s = sorted(samples)
    return float(s[max(0, math.ceil(share * len(s)) - 1)])


def print_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    """Columns 0 and 7 (row name, target) left-aligned, the figures right-aligned."""
    table = [list(header)] + [list(row) for row in rows]
    widths = [max(len(line[i]) for line in table) for i in range(len(header))]
    for index, line in enumerate(table):
        cells = [
            cell.ljust(widths[i]) if i in (0, 7) else cell.rjust(widths[i]) for i, cell in enumerate(line)
        ]
        print("  ".join(cells).rstrip())
        if index == 0:
            print("  ".join("-" * w for w in widths))
