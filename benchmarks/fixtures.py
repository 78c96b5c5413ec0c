"""Benchmark the server fixtures against raw grpcio doing the same work.

Run ``python benchmarks/fixtures.py`` (``--scale 0.25`` for a quick look). It prints one table:
medians and p95 in milliseconds, the ratio of the medians to raw grpcio, the target and
PASS/MISS. These are benchmarks, not test assertions: the exit status is 0 whatever the figures.

Rows (see benchmarks/README.md):

1. the ``grpc_test_server`` fixture's reuse path (``pool.get()`` + ``reset()``, then the teardown
   ``reset()`` + ``close_channels()``) on a server that has served calls; raw has nothing to do;
2. a fresh server per test: ``GrpcTestServer().start()`` + ``.close()`` vs raw ``grpc.server``
   create + ``add_insecure_port`` + ``start`` + ``stop(None).wait()``, probe servicer in both;
3. a unary round trip through the recording server vs a raw server hosting the same servicer,
   interleaved in one loop;
4. teardown with a held handler: ``close()`` of a fresh server, and the pooled
   ``reset()`` + ``close_channels()``.
"""

from __future__ import annotations

import argparse
import gc
import os
import shutil
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from typing import Any

import grpc
from _report import median, percentile, print_table, versions

from pytest_grpc_deadlines import DAGSTER, GrpcTestServer
from pytest_grpc_deadlines.probe import (
    PROBE_SERVICE_NAME,
    ProbeRequest,
    ProbeServicer,
    ProbeStub,
    add_ProbeServicer_to_server,
)
from pytest_grpc_deadlines.servers._options import Transport
from pytest_grpc_deadlines.servers._pool import ServerPool

UNARY = f"{PROBE_SERVICE_NAME}/Unary"
MAX_WORKERS = 32  # GrpcTestServer's default, used for the raw servers too
TIMEOUT = 5.0
TRANSPORTS: tuple[Transport, ...] = ("tcp", "unix")
#: Untimed pause before each server start/stop measurement. Without it the previous server's
#: grpc threads are still finishing and take the GIL for a switch interval (5 ms), which makes
#: both distributions multimodal (modes near +2 ms and +5 ms) and the medians unstable.
SETTLE = 0.01

Samples = list[int]  # nanoseconds


def _ms(ns: float) -> str:
    return f"{ns / 1e6:.3f}"


@dataclass
class Row:
    name: str
    pkg: Samples
    raw: Samples | None = None
    #: ("abs", ms) compares the package median to ms; ("ratio", x) the median ratio to raw.
    target: tuple[str, float] | None = None

    def cells(self) -> list[str]:
        pkg_med = median(self.pkg)
        cells = [self.name, str(len(self.pkg)), _ms(pkg_med), _ms(percentile(self.pkg, 0.95))]
        ratio: float | None = None
        if self.raw:
            raw_med = median(self.raw)
            ratio = pkg_med / raw_med
            cells += [_ms(raw_med), _ms(percentile(self.raw, 0.95)), f"{ratio:.2f}x"]
        else:
            cells += ["-", "-", "-"]
        if self.target is None:
            cells += ["(info)", ""]
        else:
            kind, value = self.target
            if kind == "abs":
                ok = pkg_med <= value * 1e6
                cells += [f"<= {value:g} ms", "PASS" if ok else "MISS"]
            else:
                ok = ratio is not None and ratio <= value
                cells += [f"<= {value:g}x", "PASS" if ok else "MISS"]
        return cells


@contextmanager
def _no_gc() -> Iterator[None]:
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()
        gc.collect()


def _n(base: int, scale: float) -> int:
    return max(5, round(base * scale))


# raw grpcio --------------------------------------------------------------------------------


class _RawServer:
    """A raw grpc server hosting ``servicer``, bound to loopback TCP port 0 or a unix socket."""

    def __init__(self, servicer: ProbeServicer, address: str) -> None:
        self.server: Any = grpc.server(
            ThreadPoolExecutor(max_workers=MAX_WORKERS), options=[("grpc.so_reuseport", 0)]
        )
        add_ProbeServicer_to_server(servicer, self.server)
        port = self.server.add_insecure_port(address)
        self.target = address if address.startswith("unix:") else f"127.0.0.1:{port}"
        self.server.start()

    def stop(self) -> None:
        self.server.stop(None).wait()


class _HeldServicer(ProbeServicer):
    """The probe servicer whose Unary blocks until ``release`` is set: raw grpc's "hold"."""

    def __init__(self) -> None:
        self.entered = threading.Event()
        self.release = threading.Event()

    def Unary(self, request: Any, context: Any) -> Any:
        self.entered.set()
        self.release.wait()
        return super().Unary(request, context)


def _raw_address(transport: Transport, tmpdir: str, name: str) -> str:
    if transport == "unix":
        return f"unix:{os.path.join(tmpdir, name + '.sock')}"
    return "127.0.0.1:0"


def _unlink_socket(address: str) -> None:
    if address.startswith("unix:"):
        with suppress(FileNotFoundError):
            os.unlink(address[len("unix:") :])


# 1. the grpc_test_server fixture's reuse path ---------------------------------------------------


def bench_reuse(scale: float) -> list[Row]:
    pool = ServerPool([(add_ProbeServicer_to_server, ProbeServicer())], DAGSTER)
    server = pool.get()
    stub = server.probe()
    for _ in range(50):  # the server has served calls
        stub.Unary(ProbeRequest(), timeout=TIMEOUT)
    server.reset()
    server.close_channels()

    def fixture_cycle(test_body: Callable[[GrpcTestServer], None]) -> tuple[int, int]:
        t0 = time.perf_counter_ns()
        s = pool.get()
        s.reset()
        t1 = time.perf_counter_ns()
        test_body(s)
        t2 = time.perf_counter_ns()
        s.reset()
        s.close_channels()
        t3 = time.perf_counter_ns()
        return t1 - t0, t3 - t2

    def empty(_: GrpcTestServer) -> None:
        return None

    def one_call(s: GrpcTestServer) -> None:
        s.probe().Unary(ProbeRequest(), timeout=TIMEOUT)

    raw = _RawServer(ProbeServicer(), "127.0.0.1:0")

    def raw_close_after_call() -> int:
        channel = grpc.insecure_channel(raw.target)
        ProbeStub(channel).Unary(ProbeRequest(), timeout=TIMEOUT)
        t0 = time.perf_counter_ns()
        channel.close()
        return time.perf_counter_ns() - t0

    n = _n(1000, scale)
    n_call = _n(400, scale)
    setup0: Samples = []
    total0: Samples = []
    setup1: Samples = []
    teardown1: Samples = []
    total1: Samples = []
    raw_close: Samples = []
    try:
        for _ in range(20):
            fixture_cycle(empty)
            fixture_cycle(one_call)
            raw_close_after_call()
        with _no_gc():
            for _ in range(n):
                a, b = fixture_cycle(empty)
                setup0.append(a)
                total0.append(a + b)
            for _ in range(n_call):
                a, b = fixture_cycle(one_call)
                setup1.append(a)
                teardown1.append(b)
                total1.append(a + b)
                raw_close.append(raw_close_after_call())
    finally:
        pool.close()
        raw.stop()
    return [
        Row("1  reuse: get+reset (setup)", setup0),
        Row("1  reuse: setup+teardown, no channel", total0, target=("abs", 0.5)),
        Row("1  reuse: teardown, test used 1 channel [raw: channel.close()]", teardown1, raw_close),
        Row("1  reuse: setup+teardown, test used 1 channel", total1, target=("abs", 0.5)),
    ]


# 2. a fresh server per test ----------------------------------------------------------------


def bench_fresh(transport: Transport, scale: float) -> list[Row]:
    tmpdir = tempfile.mkdtemp(prefix="grpc-deadlines-bench-")
    servicer = ProbeServicer()
    counter = 0

    def pkg() -> tuple[int, int]:
        time.sleep(SETTLE)
        t0 = time.perf_counter_ns()
        server = GrpcTestServer(transport=transport).start()
        t1 = time.perf_counter_ns()
        server.close()
        t2 = time.perf_counter_ns()
        return t1 - t0, t2 - t1

    def raw(private_dir: bool) -> tuple[int, int]:
        """Raw grpc; with ``private_dir`` (unix only) it also makes and removes a 0700
        directory per server, as GrpcTestServer does."""
        nonlocal counter
        counter += 1
        address = _raw_address(transport, tmpdir, f"raw-{counter}")
        time.sleep(SETTLE)
        t0 = time.perf_counter_ns()
        private = None
        if private_dir:
            private = tempfile.mkdtemp(prefix="grpc-deadlines-")
            os.chmod(private, 0o700)
            address = f"unix:{os.path.join(private, 'server.sock')}"
        server = grpc.server(ThreadPoolExecutor(max_workers=MAX_WORKERS), options=[("grpc.so_reuseport", 0)])
        add_ProbeServicer_to_server(servicer, server)
        if not server.add_insecure_port(address):
            raise RuntimeError(f"could not bind {address}")
        server.start()
        t1 = time.perf_counter_ns()
        server.stop(None).wait()
        if private is not None:
            shutil.rmtree(private, ignore_errors=True)
        t2 = time.perf_counter_ns()
        _unlink_socket(address)
        return t1 - t0, t2 - t1

    variants = ["pkg", "raw"] + (["raw+dir"] if transport == "unix" else [])
    run: dict[str, Callable[[], tuple[int, int]]] = {
        "pkg": pkg,
        "raw": lambda: raw(False),
        "raw+dir": lambda: raw(True),
    }
    starts: dict[str, Samples] = {v: [] for v in variants}
    stops: dict[str, Samples] = {v: [] for v in variants}
    n = _n(300, scale)
    try:
        for _ in range(20):
            for v in variants:
                run[v]()
        with _no_gc():
            for i in range(n):
                k = i % len(variants)
                for v in variants[k:] + variants[:k]:  # rotate the order to cancel drift
                    a, b = run[v]()
                    starts[v].append(a)
                    stops[v].append(b)
    finally:
        shutil.rmtree(tmpdir, ignore_errors=True)
    totals = {v: [a + b for a, b in zip(starts[v], stops[v], strict=True)] for v in variants}
    rows = [
        Row(f"2  fresh {transport}: start", starts["pkg"], starts["raw"]),
        Row(f"2  fresh {transport}: close [raw: stop(None).wait()]", stops["pkg"], stops["raw"]),
        Row(f"2  fresh {transport}: start+close", totals["pkg"], totals["raw"], target=("ratio", 1.2)),
    ]
    if "raw+dir" in variants:
        rows.append(
            Row(
                f"2  fresh {transport}: start+close [raw + mkdtemp/rmtree per server]",
                totals["pkg"],
                totals["raw+dir"],
            )
        )
    return rows


# 3. unary round trip -----------------------------------------------------------------------


def bench_rtt(transport: Transport, scale: float) -> list[Row]:
    tmpdir = tempfile.mkdtemp(prefix="grpc-deadlines-bench-")
    server = GrpcTestServer(transport=transport).start()
    raw = _RawServer(ProbeServicer(), _raw_address(transport, tmpdir, "rtt"))
    channel = grpc.insecure_channel(raw.target)
    pkg_stub = server.probe()
    raw_stub = ProbeStub(channel)

    def pkg() -> int:
        t0 = time.perf_counter_ns()
        pkg_stub.Unary(ProbeRequest(), timeout=TIMEOUT)
        return time.perf_counter_ns() - t0

    def raw_call() -> int:
        t0 = time.perf_counter_ns()
        raw_stub.Unary(ProbeRequest(), timeout=TIMEOUT)
        return time.perf_counter_ns() - t0

    n = _n(2000, scale)
    p: Samples = []
    r: Samples = []
    try:
        for _ in range(200):
            pkg()
            raw_call()
        server.reset()  # drop the warm-up records
        with _no_gc():
            for i in range(n):
                if i % 2 == 0:
                    p.append(pkg())
                    r.append(raw_call())
                else:
                    r.append(raw_call())
                    p.append(pkg())
    finally:
        channel.close()
        raw.stop()
        server.close()
        shutil.rmtree(tmpdir, ignore_errors=True)
    return [Row(f"3  unary RTT {transport} (interleaved)", p, r, target=("ratio", 1.15))]


# 4. teardown after a held handler ----------------------------------------------------------


def bench_held(scale: float) -> list[Row]:
    n = _n(150, scale)

    def pkg_close() -> int:
        server = GrpcTestServer().start()
        gate = server.hold(UNARY)
        future = server.probe().Unary.future(ProbeRequest(), timeout=30)
        if not gate.wait_entered(10):
            raise RuntimeError("the held call never reached the handler")
        time.sleep(SETTLE)
        t0 = time.perf_counter_ns()
        server.close()
        elapsed = time.perf_counter_ns() - t0
        future.exception(10)  # the call ends (CANCELLED) before the next iteration
        return elapsed

    def raw_close() -> int:
        servicer = _HeldServicer()
        raw = _RawServer(servicer, "127.0.0.1:0")
        channel = grpc.insecure_channel(raw.target)
        future = ProbeStub(channel).Unary.future(ProbeRequest(), timeout=30)
        if not servicer.entered.wait(10):
            raise RuntimeError("the held call never reached the handler")
        time.sleep(SETTLE)
        t0 = time.perf_counter_ns()
        servicer.release.set()
        channel.close()
        raw.server.stop(None).wait()
        elapsed = time.perf_counter_ns() - t0
        future.exception(10)
        return elapsed

    pool = ServerPool([(add_ProbeServicer_to_server, ProbeServicer())], DAGSTER)
    pool.get()
    raw_servicer = _HeldServicer()
    raw_pooled = _RawServer(raw_servicer, "127.0.0.1:0")

    def pkg_reset() -> int:
        s = pool.get()
        s.reset()
        gate = s.hold(UNARY)
        future = s.probe().Unary.future(ProbeRequest(), timeout=30)
        if not gate.wait_entered(10):
            raise RuntimeError("the held call never reached the handler")
        t0 = time.perf_counter_ns()
        s.reset()
        s.close_channels()
        elapsed = time.perf_counter_ns() - t0
        future.exception(10)
        return elapsed

    def raw_reset() -> int:
        raw_servicer.entered.clear()
        raw_servicer.release.clear()
        channel = grpc.insecure_channel(raw_pooled.target)
        future = ProbeStub(channel).Unary.future(ProbeRequest(), timeout=30)
        if not raw_servicer.entered.wait(10):
            raise RuntimeError("the held call never reached the handler")
        t0 = time.perf_counter_ns()
        raw_servicer.release.set()
        channel.close()
        elapsed = time.perf_counter_ns() - t0
        future.exception(10)
        return elapsed

    pc: Samples = []
    rc: Samples = []
    pr: Samples = []
    rr: Samples = []
    try:
        for _ in range(10):
            pkg_close()
            raw_close()
            pkg_reset()
            raw_reset()
        with _no_gc():
            for i in range(n):
                if i % 2 == 0:
                    pc.append(pkg_close())
                    rc.append(raw_close())
                else:
                    rc.append(raw_close())
                    pc.append(pkg_close())
            for i in range(n):
                if i % 2 == 0:
                    pr.append(pkg_reset())
                    rr.append(raw_reset())
                else:
                    rr.append(raw_reset())
                    pr.append(pkg_reset())
    finally:
        pool.close()
        raw_servicer.release.set()
        raw_pooled.stop()
    return [
        Row("4  held call: fresh close() [raw: release+close+stop]", pc, rc, target=("abs", 10.0)),
        Row("4  held call: pooled reset+close_channels [raw: release+close]", pr, rr),
    ]


# main ------------------------------------------------------------------------------------


def _print_table(rows: list[Row]) -> None:
    print_table(
        ["row", "n", "pkg med", "pkg p95", "raw med", "raw p95", "ratio", "target", "result"],
        [row.cells() for row in rows],
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument(
        "--scale", type=float, default=1.0, help="multiply the iteration counts (default 1.0)"
    )
    args = parser.parse_args(argv)
    scale: float = args.scale
    started = time.perf_counter()
    print(versions())
    print("load average at start: {:.2f} {:.2f} {:.2f}".format(*os.getloadavg()))
    print("times in ms; ratio = package median / raw grpcio median\n")
    rows: list[Row] = []
    rows += bench_reuse(scale)
    for transport in TRANSPORTS:
        rows += bench_fresh(transport, scale)
    for transport in TRANSPORTS:
        rows += bench_rtt(transport, scale)
    rows += bench_held(scale)
    _print_table(rows)
    load = "{:.2f} {:.2f} {:.2f}".format(*os.getloadavg())
    print(f"\n{time.perf_counter() - started:.1f} s; load average at end: {load}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
