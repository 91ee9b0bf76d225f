"""Issue 8, target 4: `POST /api/runs` answers within 300 ms (p95, warm), and the new run's first
`steps` message arrives within 1 s.

A real server, warm: its forkserver is up (the default run has its worker) and a few runs have
been created and deleted before the first sample. For each sample a websocket follows the newest
run (`/ws/runs/current`, as the page does); we time the POST (its answer comes once the run is
stored and its worker launched) and, from the same start, the new run's snapshot and its first
`steps` message (the worker builds the run, evaluates step 0 and trains a first ~0.1 s).
Then the run is deleted (its worker killed): nothing else trains while we measure.
"""

from __future__ import annotations

import asyncio
import random
import time
from typing import Any

from bench.client import call
from bench.live import Viewer, wait_until
from bench.server import Bench, bench_server
from bench.stats import Figure, percentile

WARM = 3  # runs created and deleted before the first sample


async def _one(bench: Bench) -> tuple[float, float, float]:
    """(ms to the POST's answer, to the new run's snapshot, to its first steps message)."""
    viewer = Viewer(bench.ws_url)  # follows the newest run
    await viewer.open()
    await wait_until(lambda: viewer.next_step is not None, 30, "the follower's first snapshot")
    snapshot, steps = viewer.expect("snapshot"), viewer.expect("steps")
    t0 = time.perf_counter()
    run = await asyncio.to_thread(call, bench.server.url, "POST", "/api/runs", {})
    answered = time.perf_counter()
    t_snap, snap = await asyncio.wait_for(snapshot, 30)
    t_steps, first = await asyncio.wait_for(steps, 30)
    await viewer.close()
    await bench.acall("DELETE", f"/api/runs/{run['id']}")
    if snap["run"]["id"] != run["id"] or first["step"][0] != 0 or t_steps < t_snap:
        raise RuntimeError(f"unexpected messages: snapshot of {snap['run']['id']}, steps from {first['step'][0]}")
    return (answered - t0) * 1000, (t_snap - t0) * 1000, (t_steps - t0) * 1000


async def _create(samples: int) -> dict[str, Any]:
    rng = random.Random(0)
    post, snapshot, steps = [], [], []
    with bench_server() as bench:
        default = await bench.acall("GET", "/api/runs/current")
        await wait_until(
            lambda: bench.call("GET", f"/api/runs/{default['id']}")["last_eval"] is not None, 60, "the default run"
        )
        for i in range(WARM + samples):
            p, s, f = await _one(bench)
            if i >= WARM:
                post.append(p)
                snapshot.append(s)
                steps.append(f)
            await asyncio.sleep(rng.uniform(0.2, 0.5))  # spread out: not a burst of creations
    out: dict[str, Any] = {"samples": samples}
    for name, values, limit in (
        ("post_ms", post, 300.0),
        ("snapshot_ms", snapshot, None),
        ("first_steps_ms", steps, 1000.0),
    ):
        fig = Figure(values)
        out[name] = {**fig.as_dict(), "p95": percentile(values, 0.95)}
        print(
            f"  {name}: median {fig.median:.0f} | p95 {percentile(values, 0.95):.0f} | max {max(values):.0f} ms"
            + (f" (limit {limit:.0f})" if limit else "")
        )
    return out


def create(samples: int = 20) -> dict[str, Any]:
    return asyncio.run(_create(samples))
