"""Issue 8, target 2: two runs at once on two cores train together at >= 1.7x one run's steps/s.

One real server (MAKEMORE_MAX_RUNNING at its default, the cores), two runs (the default model,
batch 32, an evaluation every 1,000 steps), each with a websocket viewer reading everything.
In turn: one run alone (the two take turns at it), then both at once; steps/s from the server's
step counters, over the same window length. The ratio is both runs' steps/s added up over the
figure of the run alone next to it.
"""

from __future__ import annotations

import asyncio
import os
from typing import Any

from bench.cpu import Meter
from bench.live import open_viewers
from bench.server import bench_server, train_rates
from bench.stats import Figure

WARM_UP = 1.0


async def _compare(seconds: float, rounds: int) -> dict[str, Any]:
    alone, together, each = [], [], []
    others: dict[str, list[float]] = {"alone": [], "together": []}  # cores used by the rest of the machine
    with bench_server() as bench:
        runs = [bench.new_run()["id"] for _ in range(2)]
        viewers = [(await open_viewers(bench.ws_url_of(r), 1))[0] for r in runs]
        for i in range(rounds):
            meter = Meter(bench.server.pid)
            (rate,) = await train_rates(bench, [runs[i % 2]], seconds, WARM_UP)
            others["alone"].append(meter.read().others_cores)
            alone.append(rate)
            meter = Meter(bench.server.pid)
            both = await train_rates(bench, runs, seconds, WARM_UP)
            others["together"].append(meter.read().others_cores)
            together.append(sum(both))
            each.append(both)
        gaps = sum(len(v.gaps) for v in viewers)
        for v in viewers:
            await v.close()
    a, b = Figure(alone), Figure(together)
    ratio = Figure([t / x for x, t in zip(alone, together, strict=True)])
    print(
        f"  one run {a.fmt(0)} steps/s | two runs together {b.fmt(0)} steps/s"
        f" (each: {', '.join(f'{x:,.0f} + {y:,.0f}' for x, y in each)}) | ratio {ratio.fmt(2)}x (>= 1.7)"
        f" | viewer gaps {gaps} | {os.cpu_count()} cores, of which everything else on the machine used"
        f" {Figure(others['alone']).fmt(2)} (one run) and {Figure(others['together']).fmt(2)} (two)"
    )
    return {
        "seconds": seconds,
        "cores": os.cpu_count(),
        "one_run_steps_per_s": a.as_dict(),
        "two_runs_steps_per_s": b.as_dict(),
        "two_runs_each": each,
        "ratio": ratio.as_dict(),
        "viewer_gaps": gaps,
        "others_cores": {k: Figure(v).as_dict() for k, v in others.items()},
    }


def two_runs(seconds: float = 10.0, rounds: int = 3) -> dict[str, Any]:
    return asyncio.run(_compare(seconds, rounds))
