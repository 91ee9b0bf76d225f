"""A run that trained for hours, opened in the single view: 12,000,000 steps (~70 minutes at 3,000
steps/s) with an evaluation every 1,000 (12,001 of them), written straight into the store
(bench/stored.py) beside a run of 200,000 steps. The real server starts on that home `starts`
times; each time, once the API is ready and the short run opened (the process's first snapshot
does one-time work), the long run's snapshot (its websocket's first message, what the single view
opens with): its time from the connect call, built from the store, then `snapshots` times more,
one after the other (from memory while the run is still loaded, else built again: a stopped run
leaves memory with its last viewer); its size and how many evaluations it carries; and the
server's RSS after.

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

from bench.client import call
from bench.live import one_snapshot
from bench.server import bench_server
from bench.stats import Figure, percentile
from bench.stored import StoredRuns

LIMITS = {"snapshot_bytes": 250_000, "snapshot_ms": 150.0}


def hours(steps: int = 12_000_000, starts: int = 3, snapshots: int = 5) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="makemore-bench-hours-") as tmp:
        home = Path(tmp) / "runs"
        writer = StoredRuns(home)
        try:
            took = writer.add(1, 200_000) + writer.add(1, steps)
            long_id, short_id = (r.id for r in writer.store.runs(limit=2))  # newest first
        finally:
            writer.close()
        print(f"  wrote a run of {steps:,} steps and one of 200,000 in {took:.0f} s", flush=True)
        built, again, rss_mb = [], [], []
        for _ in range(starts):
            with bench_server(env={"MAKEMORE_HOME": str(home)}) as bench:
                call(bench.server.url, "GET", "/api/runs/current")  # answered once the application is ready
                asyncio.run(one_snapshot(bench.ws_url_of(short_id)))
                ms, text = asyncio.run(one_snapshot(bench.ws_url_of(long_id)))
                built.append(ms)
                again += [asyncio.run(one_snapshot(bench.ws_url_of(long_id)))[0] for _ in range(snapshots)]
                rss_mb.append(psutil.Process(bench.server.pid).memory_info().rss / 2**20)
    snap = json.loads(text)
    if snap.get("type") != "snapshot" or snap["run"]["step"] != steps:
        raise RuntimeError(f"not the run's snapshot: {text[:200]}")
    size, evals = len(text.encode()), len(snap["evals"])
    built_ms, again_ms, rss = Figure(built), Figure(again), Figure(rss_mb)
    print(
        f"  a run of {steps:,} steps ({steps // 1000 + 1:,} evaluations): its snapshot {size:,} B,"
        f" {evals:,} evaluations; built from the store {built_ms.fmt(0, ' ms')}, again median"
        f" {again_ms.median:.0f} ms (p95 {percentile(again, 0.95):.0f}); server RSS {rss.fmt(0, ' MB')}",
        flush=True,
    )
    return {
        "steps": steps,
        "evaluations": steps // 1000 + 1,
        "limits": LIMITS,
        "snapshot_bytes": size,
        "snapshot_evals": evals,
        "built_ms": built_ms.as_dict(),
        "again_ms": {**again_ms.as_dict(), "p95": percentile(again, 0.95)},
        "server_rss_mb": rss.as_dict(),
    }
