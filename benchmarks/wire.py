"""Benchmark the wire proxy with no fault in force: a unary call through it against the same call
made directly, to the same ``GrpcTestServer``.

Run ``python benchmarks/wire.py`` (``--scale 0.25`` for a quick look). The two channels'
calls alternate in blocks of 50, the order swapping from block to block. It prints one table:
medians and p95 in milliseconds, the ratio of the medians and PASS/MISS against the target
(1.5x). These are benchmarks, not test assertions: the exit status is 0 whatever the figures.
"""

from __future__ import annotations

import argparse
import gc
import os
import sys
import time

import grpc
from _report import median, percentile, print_table, versions

from pytest_grpc_deadlines import GrpcTestServer, WireProxy
from pytest_grpc_deadlines.probe import ProbeRequest, ProbeStub

TARGET = 1.5
WARM_UP = 200
BLOCK = 50


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--scale", type=float, default=1.0, help="multiply the call count, 2000")
    args = parser.parse_args(argv)
    n = max(BLOCK, round(2000 * args.scale))
    started = time.perf_counter()
    print(versions())
    print("load average at start: {:.2f} {:.2f} {:.2f}".format(*os.getloadavg()))
    print("times in ms; ratio = through the proxy / direct\n")
    with GrpcTestServer() as server, WireProxy(server.target) as proxy:
        channels = {
            "proxy": grpc.insecure_channel(proxy.target),
            "direct": grpc.insecure_channel(server.target),
        }
        stubs = {name: ProbeStub(channel) for name, channel in channels.items()}
        request = ProbeRequest()
        samples: dict[str, list[int]] = {name: [] for name in stubs}
        try:
            for stub in stubs.values():
                for _ in range(WARM_UP):
                    stub.Unary(request, timeout=5)
            for block in range(0, n, BLOCK):
                order = ("proxy", "direct") if (block // BLOCK) % 2 == 0 else ("direct", "proxy")
                gc.collect()
                gc.disable()
                try:
                    for name in order:
                        stub = stubs[name]
                        for _ in range(min(BLOCK, n - block)):
                            t0 = time.perf_counter_ns()
                            stub.Unary(request, timeout=5)
                            samples[name].append(time.perf_counter_ns() - t0)
                finally:
                    gc.enable()
                server.reset()  # drop records, untimed
        finally:
            for channel in channels.values():
                channel.close()
    proxied, direct = median(samples["proxy"]), median(samples["direct"])
    ratio = proxied / direct
    print_table(
        ["row", "n", "proxy med", "proxy p95", "direct med", "direct p95", "ratio", "target", "result"],
        [
            [
                "unary through the proxy, no fault",
                str(len(samples["proxy"])),
                f"{proxied / 1e6:.3f}",
                f"{percentile(samples['proxy'], 0.95) / 1e6:.3f}",
                f"{direct / 1e6:.3f}",
                f"{percentile(samples['direct'], 0.95) / 1e6:.3f}",
                f"{ratio:.3f}x",
                f"<= {TARGET:g}x",
                "PASS" if ratio <= TARGET else "MISS",
            ]
        ],
    )
    load = "{:.2f} {:.2f} {:.2f}".format(*os.getloadavg())
    print(f"\n{time.perf_counter() - started:.1f} s; load average at end: {load}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
