"""Issue 8, target 6: a restart with 200 stored runs of 200,000 steps: `/api/health` <= 1 s, the API
ready <= 4 s, `GET /api/runs` <= 100 ms, a stored run's snapshot <= 150 ms; and the server's RSS
< 400 MB with 1,000 stored runs.

The runs are written straight into a temporary home (bench/stored.py: real chunks, evaluations,
changes and checkpoint files, as a finished 200,000-step run leaves them). Then the real server
(`python -m backend`) starts on that home, several times:

- health: from the process's start to its first `/api/health` answer; API ready: to its first
  `GET /api/runs/current` answer (it waits for the store, the registry's crash recovery and the
  forkserver's start);
- `GET /api/runs` (100 runs, the default page), each on a fresh connection as a browser's first
  fetch would be; `?limit=1000` too, for reference;
- a stored run's snapshot: from the websocket's connect call to its first message, for runs that
  nobody opened since the server started (cold: built from the store);
- memory, after all of that and after names were sampled from a few runs (which loads their
  weights from checkpoints): the server's RSS and peak (VmHWM), and its other processes apart.

Then 800 more runs are written and the same is measured with 1,000: RSS is judged there.
"""

from __future__ import annotations

import asyncio
import random
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.client import call
from bench.live import one_snapshot
from bench.server import Bench, bench_server
from bench.stats import Figure, percentile
from bench.stored import StoredRuns

LIMITS = {"health_s": 1.0, "api_ready_s": 4.0, "list_ms": 100.0, "snapshot_ms": 150.0, "rss_mb": 400.0}


def _timed_ms(url: str, path: str) -> tuple[float, Any]:
    t0 = time.perf_counter()
    body = call(url, "GET", path)
    return (time.perf_counter() - t0) * 1000, body


async def _snapshots(bench: Bench, run_ids: list[str]) -> list[float]:
    out = []
    for rid in run_ids:
        ms, text = await one_snapshot(bench.ws_url_of(rid))
        if not text.startswith('{"type":"snapshot"'):
            raise RuntimeError(f"run {rid}: the first message is not a snapshot: {text[:100]}")
        out.append(ms)
    return out


def _one_start(home: Path, runs: int, unopened: list[str], snapshots: int, lists: int) -> dict[str, Any]:
    """Start the server on `home`, measure, stop it. Takes the runs to open from `unopened`."""
    with bench_server(env={"MAKEMORE_HOME": str(home)}) as bench:
        url = bench.server.url
        t0 = time.monotonic()
        call(url, "GET", "/api/runs/current")  # answered once the application is ready
        api_s = bench.server.started_in + time.monotonic() - t0
        listed = [_timed_ms(url, "/api/runs") for _ in range(lists)]
        if len(listed[-1][1]) != min(100, runs):
            raise RuntimeError(f"GET /api/runs listed {len(listed[-1][1])} of {runs} runs")
        list_all = [_timed_ms(url, "/api/runs?limit=1000")[0] for _ in range(max(2, lists // 4))]
        opened = [unopened.pop() for _ in range(min(snapshots, len(unopened)))]
        snaps = asyncio.run(_snapshots(bench, opened))
        for rid in opened[:6]:  # more than the 4 models the server keeps loaded
            call(url, "GET", f"/api/runs/{rid}/sample?n=20&seed=1")
        memory = bench.processes()
    return {
        "health_s": bench.server.started_in,
        "api_ready_s": api_s,
        "list_ms": [ms for ms, _ in listed],
        "list_1000_ms": list_all,
        "snapshot_ms": snaps,
        "memory": memory.as_dict(),
    }


def _measure(home: Path, runs: int, unopened: list[str], starts: int, snapshots: int, lists: int) -> dict[str, Any]:
    got = [_one_start(home, runs, unopened, snapshots, lists) for _ in range(starts)]
    health = Figure([g["health_s"] for g in got])
    api = Figure([g["api_ready_s"] for g in got])
    lists_ms = [x for g in got for x in g["list_ms"]]
    list_1000 = [x for g in got for x in g["list_1000_ms"]]
    snaps = [x for g in got for x in g["snapshot_ms"]]
    rss = Figure([g["memory"]["server_rss_mb"] for g in got])
    last = got[-1]["memory"]
    peak = Figure([g["memory"]["server_peak_mb"] or 0.0 for g in got])
    print(
        f"  {runs:,} stored runs, {starts} starts: health {health.fmt(2, ' s')} | API ready {api.fmt(2, ' s')}"
        f" | GET /api/runs median {Figure(lists_ms).median:.1f}, p95 {percentile(lists_ms, 0.95):.1f} ms"
        f" (limit=1000: median {Figure(list_1000).median:.0f} ms)"
        f" | snapshot median {Figure(snaps).median:.0f}, p95 {percentile(snaps, 0.95):.0f} ms ({len(snaps)} runs)"
        f" | server RSS {rss.fmt(0, ' MB')}, peak {peak.fmt(0, ' MB')}"
        f" | forkserver {last['forkserver_rss_mb']:.0f} MB, {len(last['workers_rss_mb'])} workers,"
        f" all processes {last['total_pss_mb']:.0f} MB PSS"
    )
    return {
        "runs": runs,
        "starts": starts,
        "health_s": health.as_dict(),
        "api_ready_s": api.as_dict(),
        "list_ms": {**Figure(lists_ms).as_dict(), "p95": percentile(lists_ms, 0.95)},
        "list_1000_ms": Figure(list_1000).as_dict(),
        "snapshot_ms": {**Figure(snaps).as_dict(), "p95": percentile(snaps, 0.95)},
        "server_rss_mb": rss.as_dict(),
        "server_peak_mb": peak.as_dict(),
        "memory": [g["memory"] for g in got],
    }


def restart(
    runs: int = 200, more_runs: int = 1000, steps: int = 200_000, starts: int = 3, snapshots: int = 10, lists: int = 20
) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="makemore-bench-restart-") as tmp:
        home = Path(tmp)
        writer = StoredRuns(home)
        try:
            took = writer.add(runs, steps)
            print(f"  wrote {runs:,} runs of {steps:,} steps in {took:.0f} s", flush=True)
            ids = [r.id for r in writer.store.runs(limit=10**6)]
        finally:
            writer.close()
        unopened = random.Random(0).sample(ids, len(ids))
        first = _measure(home, runs, unopened, starts, snapshots, lists)
        writer = StoredRuns(home)
        try:
            took = writer.add(more_runs - runs, steps)
            print(f"  wrote {more_runs - runs:,} more runs in {took:.0f} s", flush=True)
            more = [r.id for r in writer.store.runs(limit=more_runs - runs)]
        finally:
            writer.close()
        unopened = random.Random(1).sample(more, len(more))
        second = _measure(home, more_runs, unopened, starts, snapshots, lists)
    return {"steps": steps, "limits": LIMITS, "first": first, "more": second}
