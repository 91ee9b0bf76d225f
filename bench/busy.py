"""Issue 10, item 1: a bigger batch must not train slower per example on a busy machine.

The running server (default model, one websocket viewer) trains at batch 255 and 256 in turn
(A B A B ...) while another CPU-bound process keeps one core busy; the figure is the examples/s
at 256 over those at 255, per pair, and its median. Batch 256 is where the trainer may use more
than one torch thread: with more OpenMP threads than idle cores, libgomp's threads wait on each
other (REFERENCE §2: 0.20x). The same pairs on a machine without the extra process follow.

    python -m bench.busy [--pairs 5] [--seconds 4]
"""

from __future__ import annotations

import argparse
import asyncio
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager

from bench.live import open_viewers
from bench.server import bench_server
from bench.stats import Figure
from bench.throughput import server_rate

SMALL, BIG = 255, 256


@contextmanager
def cpu_hog() -> Iterator[subprocess.Popen[bytes]]:
    """Another process that keeps one core busy for as long as it lasts."""
    hog = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        yield hog
    finally:
        hog.kill()
        hog.wait(10)


async def _pairs(pairs: int, seconds: float, busy: bool) -> dict[str, object]:
    with bench_server() as bench:
        bench.new_run()
        (viewer,) = await open_viewers(bench.ws_url, 1)
        xs, ys = [], []
        with cpu_hog() if busy else _nothing():
            for _ in range(pairs):
                xs.append(await server_rate(bench, SMALL, seconds) * SMALL)
                ys.append(await server_rate(bench, BIG, seconds) * BIG)
        await viewer.close()
    small, big = Figure(xs), Figure(ys)
    ratio = Figure([y / x for x, y in zip(xs, ys, strict=True)])
    label = "one CPU-bound process beside" if busy else "nothing beside"
    print(
        f"  {label}: batch {SMALL} {small.fmt(0)} examples/s | batch {BIG} {big.fmt(0)} examples/s"
        f" | ratio {ratio.fmt(2)}x"
    )
    return {
        f"examples_per_s_{SMALL}": small.as_dict(),
        f"examples_per_s_{BIG}": big.as_dict(),
        "ratio": ratio.as_dict(),
    }


@contextmanager
def _nothing() -> Iterator[None]:
    yield


def busy(pairs: int = 5, seconds: float = 4.0) -> dict[str, object]:
    return {
        "busy": asyncio.run(_pairs(pairs, seconds, busy=True)),
        "idle": asyncio.run(_pairs(pairs, seconds, busy=False)),
        "seconds": seconds,
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=4.0)
    args = parser.parse_args()
    busy(args.pairs, args.seconds)
