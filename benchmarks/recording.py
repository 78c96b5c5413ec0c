"""Benchmark the client-side call recording: a recorded channel against an unrecorded one.

Run ``python benchmarks/recording.py`` (``--scale 0.25`` for a quick look). Both channels dial
the same ``GrpcTestServer`` (probe service, no behaviour configured); the calls alternate in one
loop. It prints one table: medians and p95 in milliseconds, the ratio of the medians and
PASS/MISS against the target. These are benchmarks, not test assertions: the exit status is 0
whatever the figures.

Variants, per kind of call (blocking unary, ``.future()`` unary, a server stream of 10 messages;
then ``grpc.aio`` unary and server stream against an ``AioGrpcTestServer``):

- ``on``: ``recording.install()`` then ``grpc.insecure_channel(target)``: grpc's own channel,
  whose calls are recorded and carry the pairing header (so the server also pairs the call);
- ``off``: raw grpc: the recording is uninstalled (untimed) around each of these calls, so grpc's
  classes hold grpc's own functions, exactly as without the plugin;
- ``off+header``: raw grpc sending the same pairing header, so the server does exactly the same
  work as for ``on`` and the difference is the client-side recording alone.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import itertools
import os
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import grpc
from _report import median, percentile, print_table, versions

from pytest_grpc_deadlines import AioGrpcTestServer, GrpcTestServer
from pytest_grpc_deadlines.calls import _recording as recording
from pytest_grpc_deadlines.calls._recorder import CALL_ID_HEADER, RECORDER
from pytest_grpc_deadlines.probe import ProbeAioStub, ProbeRequest, ProbeStub

TIMEOUT = 5.0
TARGET = 1.10
WARM_UP = 200
#: Records pile up on both sides (the recorder's list, the server's calls); drop them, untimed,
#: every CHUNK iterations so the lists stay short and a GC pass never lands in a timed call.
CHUNK = 500
VARIANTS = ("on", "off", "off+header")
#: The variants alternate in blocks of this many calls (see ``_raw``).
BLOCK = 50

Samples = list[int]  # nanoseconds
Call = Callable[[], object]


def _ms(ns: float) -> str:
    return f"{ns / 1e6:.3f}"


@dataclass
class Row:
    name: str
    on: Samples
    off: Samples
    target: float | None = None

    def cells(self) -> list[str]:
        on_med, off_med = median(self.on), median(self.off)
        ratio = on_med / off_med
        cells = [self.name, str(len(self.on)), _ms(on_med), _ms(percentile(self.on, 0.95))]
        cells += [_ms(off_med), _ms(percentile(self.off, 0.95)), f"{ratio:.3f}x"]
        if self.target is None:
            return [*cells, "(info)", ""]
        return [*cells, f"<= {self.target:g}x", "PASS" if ratio <= self.target else "MISS"]


@contextmanager
def _no_gc() -> Iterator[None]:
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def _calls(stubs: dict[str, ProbeStub]) -> dict[str, dict[str, Call]]:
    """kind -> variant -> one call (returns when the call has ended)."""
    unary = ProbeRequest()
    stream = ProbeRequest(responses=10)
    ids = itertools.count(1)

    def header(variant: str) -> tuple[tuple[str, str], ...] | None:
        if variant != "off+header":
            return None
        return ((CALL_ID_HEADER, f"bench-{next(ids)}"),)

    def blocking(stub: ProbeStub, variant: str) -> Call:
        return lambda: stub.Unary(unary, timeout=TIMEOUT, metadata=header(variant))

    def future(stub: ProbeStub, variant: str) -> Call:
        return lambda: stub.Unary.future(unary, timeout=TIMEOUT, metadata=header(variant)).result()

    def streaming(stub: ProbeStub, variant: str) -> Call:
        def call() -> int:
            count = 0
            for _ in stub.ServerStream(stream, timeout=TIMEOUT, metadata=header(variant)):
                count += 1
            if count != 10:
                raise RuntimeError(f"the stream gave {count} messages, not 10")
            return count

        return call

    kinds = {"unary": blocking, "unary .future()": future, "server stream x10": streaming}
    return {kind: {v: make(stubs[v], v) for v in VARIANTS} for kind, make in kinds.items()}


def _timed(call: Call) -> int:
    t0 = time.perf_counter_ns()
    call()
    return time.perf_counter_ns() - t0


@contextmanager
def _raw(variant: str) -> Iterator[None]:
    """grpc exactly as without the plugin for the unrecorded variants: the recording is
    uninstalled around their block. (Per call it would cost the next recorded call more than
    the recording itself: changing a class empties Python's attribute cache for it.)"""
    if variant == "on":
        yield
        return
    recording.uninstall()
    try:
        yield
    finally:
        recording.install()


def bench(server: GrpcTestServer, kind: str, variants: dict[str, Call], n: int) -> list[Row]:
    samples: dict[str, Samples] = {v: [] for v in VARIANTS}
    for v, call in variants.items():
        with _raw(v):
            for _ in range(WARM_UP):
                call()
    done = 0
    while done < n:
        server.reset()  # drop records, untimed
        RECORDER.start_test(None)
        with _no_gc():
            for block, start in enumerate(range(done, min(n, done + CHUNK), BLOCK)):
                count = min(BLOCK, n - start)
                k = block % len(VARIANTS)
                for v in VARIANTS[k:] + VARIANTS[:k]:  # rotate the order to cancel drift
                    with _raw(v):
                        samples[v].extend(_timed(variants[v]) for _ in range(count))
        done = min(n, done + CHUNK)
    return [
        Row(f"{kind}: recorded vs unrecorded", samples["on"], samples["off"], TARGET),
        Row(f"{kind}: recorded vs unrecorded + header", samples["on"], samples["off+header"]),
    ]


async def _bench_aio(n: int) -> list[Row]:
    """``grpc.aio`` calls to an ``AioGrpcTestServer`` on this loop: recorded vs raw grpc."""
    server = await AioGrpcTestServer().start()
    on = grpc.aio.insecure_channel(server.target)
    with _raw("off"):
        off = grpc.aio.insecure_channel(server.target)
    stubs = {"on": ProbeAioStub(on), "off": ProbeAioStub(off), "off+header": ProbeAioStub(off)}
    unary, stream = ProbeRequest(), ProbeRequest(responses=10)
    ids = itertools.count(1)

    def header(stub: ProbeAioStub) -> tuple[tuple[str, str], ...] | None:
        if stub is not stubs["off+header"]:
            return None
        return ((CALL_ID_HEADER, f"bench-aio-{next(ids)}"),)

    async def call_unary(stub: ProbeAioStub) -> None:
        await stub.Unary(unary, timeout=TIMEOUT, metadata=header(stub))

    async def call_stream(stub: ProbeAioStub) -> None:
        messages = stub.ServerStream(stream, timeout=TIMEOUT, metadata=header(stub))
        count = len([m async for m in messages])
        if count != 10:
            raise RuntimeError(f"the stream gave {count} messages, not 10")

    rows: list[Row] = []
    try:
        for kind, call in (("aio unary", call_unary), ("aio server stream x10", call_stream)):
            samples: dict[str, Samples] = {"on": [], "off": [], "off+header": []}
            for v in samples:
                with _raw(v):
                    for _ in range(WARM_UP):
                        await call(stubs[v])
            for block, start in enumerate(range(0, n, BLOCK)):
                if start % CHUNK == 0:
                    server.reset()  # drop records, untimed
                    RECORDER.start_test(None)
                k = block % len(VARIANTS)
                for v in VARIANTS[k:] + VARIANTS[:k]:  # rotate the order to cancel drift
                    with _raw(v), _no_gc():
                        for _ in range(min(BLOCK, n - start)):
                            t0 = time.perf_counter_ns()
                            await call(stubs[v])
                            samples[v].append(time.perf_counter_ns() - t0)
            rows.append(Row(f"{kind}: recorded vs unrecorded", samples["on"], samples["off"], TARGET))
            rows.append(Row(f"{kind}: recorded vs unrecorded + header", samples["on"], samples["off+header"]))
    finally:
        await on.close()
        await off.close()
        await server.close()
    return rows


def _print_table(rows: list[Row]) -> None:
    print_table(
        ["row", "n", "on med", "on p95", "off med", "off p95", "ratio", "target", "result"],
        [row.cells() for row in rows],
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument(
        "--scale", type=float, default=1.0, help="multiply the iteration count, 2000 (default 1.0)"
    )
    args = parser.parse_args(argv)
    n = max(5, round(2000 * args.scale))
    started = time.perf_counter()
    print(versions())
    print("load average at start: {:.2f} {:.2f} {:.2f}".format(*os.getloadavg()))
    print("times in ms; ratio = recorded median / unrecorded median\n")
    rows: list[Row] = []
    recording.install()
    # as the plugin does for its session: call sites relative to the invocation directory
    RECORDER.push(os.getcwd())
    server = GrpcTestServer().start()
    channels = {
        "on": grpc.insecure_channel(server.target),
        "off": recording.raw_insecure_channel(server.target),
        "off+header": recording.raw_insecure_channel(server.target),
    }
    try:
        stubs = {v: ProbeStub(channel) for v, channel in channels.items()}
        before = len(RECORDER.all_calls())
        stubs["on"].Unary(ProbeRequest(), timeout=TIMEOUT)
        with _raw("off"):
            stubs["off"].Unary(ProbeRequest(), timeout=TIMEOUT)
        if len(RECORDER.all_calls()) != before + 1:
            raise RuntimeError("the recorded channel did not record, or the raw one did")
        for kind, variants in _calls(stubs).items():
            rows += bench(server, kind, variants, n)
        rows += asyncio.run(_bench_aio(n))
    finally:
        for channel in channels.values():
            channel.close()
        server.close()
        recording.uninstall()
    _print_table(rows)
    load = "{:.2f} {:.2f} {:.2f}".format(*os.getloadavg())
    print(f"\n{time.perf_counter() - started:.1f} s; load average at end: {load}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
