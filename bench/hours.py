"""A run that trained for hours, opened in the single view: 12,000,000 steps (~70 minutes at 3,000
steps/s) with an evaluation every 1,000 (12,001 of them), written straight into the store
(bench/stored.py). The real server starts on that home; the run's snapshot (its websocket's first
message, what the single view opens with): its size and how many evaluations it carries, its time
from the connect call, the first time after the server started (its one-time work included: torch
for the run's embedding map) and `snapshots` times more (each built from the store again: a
stopped run leaves memory with its last viewer), and the server's RSS after.

Every evaluation went into every snapshot, 33 bytes each, growing without end (a live run at
12.6 M steps: 412 KB); a snapshot now carries at most 6,000 (channel.SNAPSHOT_EVALS).
"""

from __future__ import annotations

import asyncio
import json
import tempfile
from pathlib import Path
from typing import Any

import psutil

from bench.live import one_snapshot
from bench.server import bench_server
from bench.stats import Figure, percentile
from bench.stored import StoredRuns

LIMITS = {"snapshot_bytes": 250_000, "snapshot_ms": 150.0}


def hours(steps: int = 12_000_000, snapshots: int = 10) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="makemore-bench-hours-") as tmp:
        home = Path(tmp) / "runs"
        writer = StoredRuns(home)
        try:
            took = writer.add(1, steps)
            run_id = writer.store.runs(limit=1)[0].id
        finally:
            writer.close()
        print(f"  wrote a run of {steps:,} steps in {took:.0f} s", flush=True)
        with bench_server(env={"MAKEMORE_HOME": str(home)}) as bench:
            url = bench.ws_url_of(run_id)
            first_ms, text = asyncio.run(one_snapshot(url))
            again = [asyncio.run(one_snapshot(url))[0] for _ in range(snapshots)]
            rss_mb = psutil.Process(bench.server.pid).memory_info().rss / 2**20
    snap = json.loads(text)
    if snap.get("type") != "snapshot" or snap["run"]["step"] != steps:
        raise RuntimeError(f"not the run's snapshot: {text[:200]}")
    size, evals = len(text.encode()), len(snap["evals"])
    again_ms = Figure(again)
    print(
        f"  a run of {steps:,} steps ({steps // 1000 + 1:,} evaluations): its snapshot {size:,} B,"
        f" {evals:,} evaluations; the first {first_ms:.0f} ms, again median {again_ms.median:.0f} ms"
        f" (p95 {percentile(again, 0.95):.0f}); server RSS {rss_mb:.0f} MB",
        flush=True,
    )
    return {
        "steps": steps,
        "evaluations": steps // 1000 + 1,
        "limits": LIMITS,
        "snapshot_bytes": size,
        "snapshot_evals": evals,
        "first_ms": first_ms,
        "again_ms": {**again_ms.as_dict(), "p95": percentile(again, 0.95)},
        "server_rss_mb": rss_mb,
    }
