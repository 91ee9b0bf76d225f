"""Issue 11, speed target 3: with 100 runs stored and 2 training, the overview stream
(`WS /ws/runs`) with a few subscribers costs the trainers < 5%.

100 finished runs of `steps` steps are written straight into a temporary home (bench/stored.py,
as the restart benchmark does); the real server starts on it, and two new runs (the default
model, batch 32, an evaluation every 1,000 steps) train throughout. Then windows alternate
(A B A B ...): without any subscriber to /ws/runs, and with SUBSCRIBERS of them, each reading
and parsing every message (they connect before the window, get their snapshot of the 100
newest runs, and close after it). Each window: both runs' steps/s added up (the server's step
counters), the CPU seconds per second of the server's processes (the overview lives in the
server; the runs train in its workers), of this process (the subscribers) and of everything
else on the machine (bench/cpu.py), and what the subscribers received. The order alternates
within pairs (A B, B A, ...) so that a trend in the shared machine's load cancels out. The ratio
is with / without, per pair; target >= 0.95.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from websockets.asyncio.client import ClientConnection, connect

from bench.cpu import Meter, Usage
from bench.server import Bench, bench_server, rates, set_status, wait_training
from bench.stats import Figure
from bench.stored import StoredRuns

SUBSCRIBERS = 5
SETTLE = 1.0  # seconds between a change of subscribers and the window (snapshots sent, closes done)


@dataclass
class Subscriber:
    """A reader of /ws/runs, as the runs list or a compare view: parses every message."""

    url: str
    kinds: dict[str, int] = field(default_factory=dict)
    rows: int = 0  # run rows received in runs_changed messages
    snapshot_runs: int = 0
    ws: ClientConnection | None = None
    task: asyncio.Task[None] | None = None

    async def open(self) -> None:
        self.ws = await connect(self.url, max_size=None, open_timeout=30)
        self.task = asyncio.create_task(self._read())

    async def _read(self) -> None:
        assert self.ws is not None
        async for text in self.ws:
            msg = json.loads(text)
            kind = msg["type"]
            self.kinds[kind] = self.kinds.get(kind, 0) + 1
            if kind == "runs":
                self.snapshot_runs = len(msg["runs"])
            elif kind == "runs_changed":
                self.rows += len(msg["runs"])

    async def close(self) -> None:
        if self.task:
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self.task
        if self.ws:
            await self.ws.close()


async def _window(bench: Bench, runs: list[str], seconds: float) -> tuple[float, Usage]:
    """(both runs' steps/s added up, the CPU used meanwhile) over one window."""
    meter = Meter(bench.server.pid)
    both = await rates(bench, runs, seconds)
    return sum(both), meter.read()


async def _with_subscribers(
    bench: Bench, runs: list[str], seconds: float, stored: int
) -> tuple[float, Usage, dict[str, Any]]:
    url = bench.server.url.replace("http://", "ws://") + "/ws/runs"
    subs = [Subscriber(url) for _ in range(SUBSCRIBERS)]
    await asyncio.gather(*(s.open() for s in subs))
    await asyncio.sleep(SETTLE)  # their snapshots go out before the window
    counted = [s.rows for s in subs]
    rate, used = await _window(bench, runs, seconds)
    rows = [s.rows - c for s, c in zip(subs, counted, strict=True)]
    snapshot = min(s.snapshot_runs for s in subs)
    for s in subs:
        await s.close()
    if min(rows) == 0 or snapshot < min(stored, 100):
        raise RuntimeError(f"subscribers got {rows} run rows in the window, snapshots of {snapshot} runs")
    await asyncio.sleep(SETTLE)  # closes done before the next window
    return rate, used, {"rows_per_s": Figure([r / seconds for r in rows]).median, "kinds": subs[0].kinds}


async def _compare(home: Path, stored: int, seconds: float, pairs: int) -> dict[str, Any]:
    without: list[tuple[float, Usage]] = []
    with_: list[tuple[float, Usage]] = []
    received: list[dict[str, Any]] = []
    with bench_server(env={"MAKEMORE_HOME": str(home)}) as bench:
        listed = bench.call("GET", f"/api/runs?limit={stored + 10}")
        runs = [bench.new_run()["id"] for _ in range(2)]
        before = [bench.step(r) for r in runs]
        await set_status(bench, runs, "running")
        await wait_training(bench, runs, before)
        await asyncio.sleep(2 * SETTLE)  # warm-up
        try:
            for i in range(pairs):  # A B, B A, A B, ...: a trend in the machine's load cancels out
                for alone in (i % 2 == 0, i % 2 == 1):
                    if alone:  # no subscriber
                        without.append(await _window(bench, runs, seconds))
                    else:
                        rate, used, got = await _with_subscribers(bench, runs, seconds, stored)
                        with_.append((rate, used))
                        received.append(got)
        finally:
            await set_status(bench, runs, "paused")
    a, b = Figure([r for r, _ in without]), Figure([r for r, _ in with_])
    ratio = Figure([y / x for (x, _), (y, _) in zip(without, with_, strict=True)])
    ca, cb = Figure([u.server_cores for _, u in without]), Figure([u.server_cores for _, u in with_])
    oa, ob = Figure([u.others_cores for _, u in without]), Figure([u.others_cores for _, u in with_])
    bench_a, bench_b = Figure([u.bench_cores for _, u in without]), Figure([u.bench_cores for _, u in with_])
    pa = Figure([u.server_process_cores for _, u in without])
    pb = Figure([u.server_process_cores for _, u in with_])
    rows_per_s = Figure([r["rows_per_s"] for r in received])
    print(
        f"  {len(listed)} runs stored, 2 training: without subscribers {a.fmt(0)} steps/s | with {SUBSCRIBERS}"
        f" {b.fmt(0)} steps/s | with / without {ratio.fmt(3)}x (>= 0.95)\n"
        f"  cores used by the server's processes {ca.fmt(3)} vs {cb.fmt(3)} (the server process alone"
        f" {pa.fmt(3)} vs {pb.fmt(3)}), by this process (the subscribers)"
        f" {bench_a.fmt(3)} vs {bench_b.fmt(3)}, by everything else {oa.fmt(2)} vs {ob.fmt(2)}"
        f" | each subscriber got {rows_per_s.fmt(1)} run rows/s"
    )
    return {
        "stored_runs": stored,
        "listed_runs": len(listed),
        "training": 2,
        "subscribers": SUBSCRIBERS,
        "seconds": seconds,
        "without_steps_per_s": a.as_dict(),
        "with_steps_per_s": b.as_dict(),
        "ratio": ratio.as_dict(),
        "server_cores_without": ca.as_dict(),
        "server_cores_with": cb.as_dict(),
        "server_process_cores_without": pa.as_dict(),
        "server_process_cores_with": pb.as_dict(),
        "subscribers_cores_without": bench_a.as_dict(),
        "subscribers_cores_with": bench_b.as_dict(),
        "others_cores_without": oa.as_dict(),
        "others_cores_with": ob.as_dict(),
        "subscriber_rows_per_s": rows_per_s.as_dict(),
        "subscriber_messages": received[-1]["kinds"],
    }


def overview_cost(stored: int = 100, steps: int = 200_000, seconds: float = 10.0, pairs: int = 5) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="makemore-bench-overview-") as tmp:
        home = Path(tmp) / "runs"
        writer = StoredRuns(home)
        try:
            took = writer.add(stored, steps)
        finally:
            writer.close()
        print(f"  wrote {stored:,} runs of {steps:,} steps in {took:.0f} s", flush=True)
        return asyncio.run(_compare(home, stored, seconds, pairs))
