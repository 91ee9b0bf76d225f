"""Issue 8, target 3: with the store on, a run trains at >= 0.95x its speed with the store off.

Two real servers side by side: one as shipped, one started with the bench-only switch
MAKEMORE_BENCH_NO_STORE=1 (Settings.bench_no_store: its store keeps run records but writes no
steps, evaluations or checkpoints). Each has one run (the default model, batch 32, an evaluation
and so a checkpoint every 1,000 steps) and a websocket viewer reading everything; they train in
turn (off, on, off, on ...), never at once, and steps/s come from each server's step counter.
"""

from __future__ import annotations

import asyncio
from contextlib import ExitStack
from typing import Any

from bench.live import open_viewers
from bench.server import bench_server, train_rates
from bench.stats import alternate_async

WARM_UP = 1.0


async def _compare(seconds: float, rounds: int) -> dict[str, Any]:
    with ExitStack() as stack:
        off = stack.enter_context(bench_server(env={"MAKEMORE_BENCH_NO_STORE": "1"}))
        on = stack.enter_context(bench_server(env={"MAKEMORE_BENCH_NO_STORE": ""}))
        run_off, run_on = off.new_run()["id"], on.new_run()["id"]
        viewers = [
            *(await open_viewers(off.ws_url_of(run_off), 1)),
            *(await open_viewers(on.ws_url_of(run_on), 1)),
        ]

        async def rate_off() -> float:
            return (await train_rates(off, [run_off], seconds, WARM_UP))[0]

        async def rate_on() -> float:
            return (await train_rates(on, [run_on], seconds, WARM_UP))[0]

        a, b, ratio = await alternate_async(rate_off, rate_on, rounds)
        stored = on.call("GET", f"/api/runs/{run_on}/checkpoints")
        not_stored = off.call("GET", f"/api/runs/{run_off}/checkpoints")
        gaps = sum(len(v.gaps) for v in viewers)
        for v in viewers:
            await v.close()
    print(
        f"  store off {a.fmt(0)} steps/s | store on {b.fmt(0)} steps/s | on/off {ratio.fmt(2)}x (>= 0.95)"
        f" | checkpoints kept: on {len(stored)}, off {len(not_stored)} | viewer gaps {gaps}"
    )
    return {
        "seconds": seconds,
        "store_off_steps_per_s": a.as_dict(),
        "store_on_steps_per_s": b.as_dict(),
        "ratio": ratio.as_dict(),
        "checkpoints_kept": {"on": len(stored), "off": len(not_stored)},
        "viewer_gaps": gaps,
    }


def store_cost(seconds: float = 10.0, rounds: int = 3) -> dict[str, Any]:
    return asyncio.run(_compare(seconds, rounds))
