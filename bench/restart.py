"""Issue 8, target 6: a restart with 200 stored runs of 200,000 steps: `/api/health` <= 1 s, the API
ready <= 4 s, `GET /api/runs` <= 100 ms, a stored run's snapshot <= 150 ms; and the server's RSS
< 400 MB with 1,000 stored runs.

The runs are written straight into a temporary home (bench/stored.py: real chunks, evaluations,
changes and checkpoint files, as a finished 200,000-step run leaves them). Then the real server
(`python -m backend`) starts on that home several times, each start alternating with one on a
home that holds a single run (the default run a fresh server creates, paused at step 0): the
same work but for the stored runs, side by side.

- health: from the process's start to its first `/api/health` answer; API ready: to its first
  `GET /api/runs/current` answer (it waits for torch, the store, the registry's crash recovery);
  and the CPU seconds the server process had used by then;
- `GET /api/runs` (100 runs, the default page), each on a fresh connection as a browser's first
  fetch would be; `?limit=1000` too, for reference;
- a stored run's snapshot: from the websocket's connect call to its first message, for runs that
  nobody opened since the server started (cold: built from the store);
- for both, also the server's CPU time per request (its total over the requests, divided): on a
  busy machine the wall times grow with the load, the CPU time hardly;
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

import psutil

from bench.client import call
from bench.live import one_snapshot
from bench.server import Bench, bench_server
from bench.stats import Figure, percentile
from bench.stored import StoredRuns

LIMITS = {"health_s": 1.0, "api_ready_s": 4.0, "list_ms": 100.0, "snapshot_ms": 150.0, "rss_mb": 400.0}


def _cpu_s(bench: Bench) -> float:
    return float(sum(psutil.Process(bench.server.pid).cpu_times()[:2]))


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


def _ready(bench: Bench) -> tuple[float, float]:
    """(seconds from the start to the API's first answer, CPU seconds the server had used then)."""
    t0 = time.monotonic()
    call(bench.server.url, "GET", "/api/runs/current")  # answered once the application is ready
    return bench.server.started_in + time.monotonic() - t0, _cpu_s(bench)


def _start_only(home: Path) -> dict[str, float]:
    with bench_server(env={"MAKEMORE_HOME": str(home)}) as bench:
        api_s, cpu = _ready(bench)
    return {"health_s": bench.server.started_in, "api_ready_s": api_s, "cpu_at_ready_s": cpu}


def _one_start(home: Path, runs: int, unopened: list[str], snapshots: int, lists: int) -> dict[str, Any]:
    """Start the server on `home`, measure, stop it. Takes the runs to open from `unopened`."""
    with bench_server(env={"MAKEMORE_HOME": str(home)}) as bench:
        url = bench.server.url
        api_s, cpu_ready = _ready(bench)
        c0 = _cpu_s(bench)
        listed = [_timed_ms(url, "/api/runs") for _ in range(lists)]
        list_cpu = (_cpu_s(bench) - c0) / lists
        if len(listed[-1][1]) != min(100, runs):
            raise RuntimeError(f"GET /api/runs listed {len(listed[-1][1])} of {runs} runs")
        list_all = [_timed_ms(url, "/api/runs?limit=1000")[0] for _ in range(max(2, lists // 4))]
        opened = [unopened.pop() for _ in range(min(snapshots, len(unopened)))]
        c0 = _cpu_s(bench)
        snaps = asyncio.run(_snapshots(bench, opened))
        snap_cpu = (_cpu_s(bench) - c0) / len(opened)
        for rid in opened[:6]:  # more than the 4 models the server keeps loaded
            call(url, "GET", f"/api/runs/{rid}/sample?n=20&seed=1")
        memory = bench.processes()
    return {
        "health_s": bench.server.started_in,
        "api_ready_s": api_s,
        "cpu_at_ready_s": cpu_ready,
        "list_ms": [ms for ms, _ in listed],
        "list_cpu_ms": list_cpu * 1000,
        "list_1000_ms": list_all,
        "snapshot_ms": snaps,
        "snapshot_cpu_ms": snap_cpu * 1000,
        "memory": memory.as_dict(),
    }


def _measure(
    home: Path, one: Path, runs: int, unopened: list[str], starts: int, snapshots: int, lists: int
) -> dict[str, Any]:
    got, base = [], []
    for _ in range(starts):  # A B A B ...: a home with one run, then the stored runs' home
        base.append(_start_only(one))
        got.append(_one_start(home, runs, unopened, snapshots, lists))

    def fig(key: str, of: list[dict[str, Any]]) -> Figure:
        return Figure([g[key] for g in of])

    health, api, cpu = fig("health_s", got), fig("api_ready_s", got), fig("cpu_at_ready_s", got)
    health_1, api_1, cpu_1 = fig("health_s", base), fig("api_ready_s", base), fig("cpu_at_ready_s", base)
    lists_ms = [x for g in got for x in g["list_ms"]]
    list_1000 = [x for g in got for x in g["list_1000_ms"]]
    snaps = [x for g in got for x in g["snapshot_ms"]]
    list_cpu, snap_cpu = fig("list_cpu_ms", got), fig("snapshot_cpu_ms", got)
    rss = Figure([g["memory"]["server_rss_mb"] for g in got])
    peak = Figure([g["memory"]["server_peak_mb"] or 0.0 for g in got])
    last = got[-1]["memory"]
    print(
        f"  {runs:,} stored runs, {starts} starts (a home with 1 run in brackets):"
        f" health {health.fmt(2, ' s')} ({health_1.fmt(2, ' s')}) | API ready {api.fmt(2, ' s')} ({api_1.fmt(2, ' s')})"
        f" | CPU used by then {cpu.fmt(2, ' s')} ({cpu_1.fmt(2, ' s')})\n"
        f"  GET /api/runs median {Figure(lists_ms).median:.1f}, p95 {percentile(lists_ms, 0.95):.1f} ms,"
        f" CPU {list_cpu.fmt(1, ' ms')} a request (limit=1000: median {Figure(list_1000).median:.0f} ms)"
        f" | snapshot median {Figure(snaps).median:.0f}, p95 {percentile(snaps, 0.95):.0f} ms,"
        f" CPU {snap_cpu.fmt(0, ' ms')} a snapshot ({len(snaps)} runs)\n"
        f"  server RSS {rss.fmt(0, ' MB')}, peak {peak.fmt(0, ' MB')}"
        f" | forkserver {last['forkserver_rss_mb']:.0f} MB, {len(last['workers_rss_mb'])} workers,"
        f" all processes {last['total_pss_mb']:.0f} MB PSS"
    )
    return {
        "runs": runs,
        "starts": starts,
        "health_s": health.as_dict(),
        "api_ready_s": api.as_dict(),
        "cpu_at_ready_s": cpu.as_dict(),
        "one_run_home": {
            "health_s": health_1.as_dict(),
            "api_ready_s": api_1.as_dict(),
            "cpu_at_ready_s": cpu_1.as_dict(),
        },
        "list_ms": {**Figure(lists_ms).as_dict(), "p95": percentile(lists_ms, 0.95)},
        "list_cpu_ms": list_cpu.as_dict(),
        "list_1000_ms": Figure(list_1000).as_dict(),
        "snapshot_ms": {**Figure(snaps).as_dict(), "p95": percentile(snaps, 0.95)},
        "snapshot_cpu_ms": snap_cpu.as_dict(),
        "server_rss_mb": rss.as_dict(),
        "server_peak_mb": peak.as_dict(),
        "memory": [g["memory"] for g in got],
    }


def _one_run_home(home: Path) -> None:
    """What a fresh server leaves: its default run, paused at step 0 with its checkpoint."""
    with bench_server(env={"MAKEMORE_HOME": str(home)}) as bench:
        deadline = time.monotonic() + 120
        while not bench.call("GET", "/api/runs/current/checkpoints"):
            if time.monotonic() > deadline:
                raise TimeoutError("the default run has no checkpoint")
            time.sleep(0.2)  # poll interval


def restart(
    runs: int = 200, more_runs: int = 1000, steps: int = 200_000, starts: int = 3, snapshots: int = 10, lists: int = 20
) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="makemore-bench-restart-") as tmp:
        home, one = Path(tmp) / "runs", Path(tmp) / "one"
        _one_run_home(one)
        writer = StoredRuns(home)
        try:
            took = writer.add(runs, steps)
            print(f"  wrote {runs:,} runs of {steps:,} steps in {took:.0f} s", flush=True)
            ids = [r.id for r in writer.store.runs(limit=10**6)]
        finally:
            writer.close()
        unopened = random.Random(0).sample(ids, len(ids))
        first = _measure(home, one, runs, unopened, starts, snapshots, lists)
        if more_runs <= runs:  # the first part alone
            return {"steps": steps, "limits": LIMITS, "first": first}
        writer = StoredRuns(home)
        try:
            took = writer.add(more_runs - runs, steps)
            print(f"  wrote {more_runs - runs:,} more runs in {took:.0f} s", flush=True)
            more = [r.id for r in writer.store.runs(limit=more_runs - runs)]
        finally:
            writer.close()
        unopened = random.Random(1).sample(more, len(more))
        second = _measure(home, one, more_runs, unopened, starts, snapshots, lists)
    return {"steps": steps, "limits": LIMITS, "first": first, "more": second}
