"""Target 6 of the speed issue: a long run, watched by a real browser the whole time.

After 2,000,000 steps: a new client's snapshot is at most 150 KB and arrives within 150 ms of
connecting; the server's RSS and the run's worker's RSS each stay under 400 MB; in Chromium,
after 10 minutes of streaming the page's JS heap is under 150 MB and the chart keeps a bounded
number of points. And what the run leaves on disk.

The real server (`python -m backend`) trains one run (batch 32, an evaluation every 1,000 steps)
while headless Chromium keeps the page open and streaming; every ~30 s it samples the server's
RSS, its worker's RSS, the page's JS heap (CDP), the chart's point count, the step and the size
of the server's home (database and checkpoint files). Since issue 8 the server process holds the
registry, the store and the fan-out, and the run trains in a worker process (bench/memory.py):
the two are measured apart. At the end, N fresh websocket clients connect one after another and
time their snapshot, and the run's disk use is read with the store's own account (`run_bytes`:
every step's loss and rate are kept up to 2,000,000 steps a run, the bucketed history past that)
and as files (database and WAL, checkpoint files). MB here is 10^6 bytes.

    .venv/bin/python -m bench.long_run [--steps 2000000] [--browser-minutes 10] [--timeout-minutes 60]

Results: bench/results/long_run.json (every sample included).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from playwright.sync_api import Browser, BrowserContext, CDPSession, Page, Route, sync_playwright
from playwright.sync_api import TimeoutError as PlaywrightTimeout

from backend.store.store import MAX_STORED_STEPS, Store
from bench.client import call
from bench.live import one_snapshot
from bench.memory import home_bytes, peak_rss_mb, rss_mb, tree
from bench.stats import Figure
from harness.chromium import CHROMIUM, CHROMIUM_ARGS, LOCAL_HOSTS
from harness.server import ROOT, running_server

RESULTS = ROOT / "bench" / "results" / "long_run.json"

TARGET_STEPS = 2_000_000  # the figure, for the projection of the snapshot size
MB = 1_000_000
SNAPSHOT_MAX_BYTES = 150_000  # "150 KB", read strictly
SNAPSHOT_MAX_MS = 150.0
RSS_MAX_MB = 400.0
HEAP_MAX_MB = 150.0
POINTS_MAX = 8000  # the chart counts as bounded while it never holds more
SNAPSHOT_CLIENTS = 5
END_STATUSES = ("finished", "diverged", "interrupted")
EVAL_TRACES = ("train loss", "dev loss")

READ_PAGE_JS = """() => {
    const chart = document.getElementById('chart');
    const traces = {};
    for (const t of (chart && chart.data) || []) traces[t.name] = (t.x || []).length;
    const step = Number(document.getElementById('step').textContent.replace(/,/g, ''));
    return {
        traces,
        step: Number.isFinite(step) ? step : -1,
        status: document.getElementById('status').textContent,
        connection: document.getElementById('connection').textContent,
    };
}"""
PAGE_DONE_JS = "statuses => statuses.includes(document.getElementById('status').textContent)"


# ---- measurements ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class Sample:
    t_s: float  # seconds since the run was started
    step: int  # the server's step
    page_step: int  # the step the page shows
    status: str  # the server's status
    connection: str  # the page's connection pill ("live" while streaming)
    rss_mb: float  # the server process: registry, store, fan-out
    worker_rss_mb: float  # the run's worker process (0 when it has none)
    worker_peak_mb: float  # its VmHWM
    home_mb: float  # the server's home on disk: database, WAL, checkpoint files
    heap_used_mb: float  # CDP Performance.getMetrics: JSHeapUsedSize
    heap_total_mb: float  # JSHeapTotalSize
    dom_nodes: int
    chart_points: int  # the sum of len(trace.x) over the chart's traces
    traces: dict[str, int]

    def line(self) -> str:
        return (
            f"[{self.t_s:7.1f} s] step {self.step:>10,} (page {self.page_step:>10,}) {self.status:<8} "
            f"RSS {self.rss_mb:6.1f} MB, worker {self.worker_rss_mb:6.1f} MB  disk {self.home_mb:6.1f} MB  "
            f"heap {self.heap_used_mb:6.1f} MB  points {self.chart_points:>6,}  {self.connection}"
        )


@dataclass
class Watch:
    """What the page asked for that was not local, and what went wrong in it."""

    blocked: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def route(self, r: Route) -> None:
        url = r.request.url
        if url.startswith(("data:", "blob:")) or urlsplit(url).hostname in LOCAL_HOSTS:
            r.continue_()
        else:
            self.blocked.append(url)
            r.abort()

    def attach(self, page: Page) -> None:
        page.on("pageerror", lambda e: self.errors.append(f"page error: {e}"))
        page.on("console", lambda m: self.errors.append(f"console: {m.text}") if m.type == "error" else None)


def heap_metrics(cdp: CDPSession) -> dict[str, float]:
    metrics = cdp.send("Performance.getMetrics")["metrics"]
    return {m["name"]: float(m["value"]) for m in metrics}


def heap_after_gc_mb(cdp: CDPSession) -> float:
    cdp.send("HeapProfiler.collectGarbage")
    return heap_metrics(cdp)["JSHeapUsedSize"] / MB


def take_sample(page: Page, cdp: CDPSession, base: str, run_id: str, server: Server, t0: float) -> Sample:
    run = call(base, "GET", f"/api/runs/{run_id}")
    seen: dict[str, Any] = page.evaluate(READ_PAGE_JS)
    heap = heap_metrics(cdp)
    traces = {str(k): int(v) for k, v in seen["traces"].items()}
    processes = tree(server.pid)  # the run's worker: the only one (the default run's has gone idle)
    return Sample(
        t_s=round(time.monotonic() - t0, 2),
        step=int(run["step"]),
        page_step=int(seen["step"]),
        status=str(run["status"]),
        connection=str(seen["connection"]),
        rss_mb=round(rss_mb(server.pid), 2),
        worker_rss_mb=max(processes.workers_rss_mb, default=0.0),
        worker_peak_mb=max(processes.workers_peak_mb, default=0.0),
        home_mb=round(home_bytes(server.home)["total"] / MB, 2),
        heap_used_mb=round(heap["JSHeapUsedSize"] / MB, 2),
        heap_total_mb=round(heap["JSHeapTotalSize"] / MB, 2),
        dom_nodes=int(heap.get("Nodes", 0)),
        chart_points=sum(traces.values()),
        traces=traces,
    )


@dataclass(frozen=True)
class Server:
    url: str
    pid: int
    home: Path


# ---- the new clients' snapshots -----------------------------------------------------------------
async def snapshots(ws_url: str, n: int) -> list[tuple[float, str]]:
    return [await one_snapshot(ws_url) for _ in range(n)]


def compact_size(value: Any) -> int:
    return len(json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode())


def measure_snapshots(base: str, n: int) -> dict[str, Any]:
    ws_url = "ws" + base.removeprefix("http") + "/ws/runs/current"
    with ThreadPoolExecutor(1) as pool:  # Playwright's sync API holds this thread's event loop
        got = pool.submit(asyncio.run, snapshots(ws_url, n)).result()
    times = Figure([round(ms, 2) for ms, _ in got])
    sizes = Figure([float(len(text.encode())) for _, text in got])
    msg = json.loads(got[-1][1])
    assert msg["type"] == "snapshot", f"the first message was {msg['type']!r}, not a snapshot"
    evals, every = msg["evals"], int(msg["run"]["hparams"]["eval_every"])
    per_eval = compact_size(evals) / len(evals) if evals else 0.0
    target_evals = TARGET_STEPS // every + 1
    return {
        "clients": n,
        "ms": times.as_dict(),
        "bytes": sizes.as_dict(),
        "step": msg["run"]["step"],
        "evals": len(evals),
        "changes": len(msg["changes"]),
        "history_points": len(msg["history"]["step"]),
        "bytes_evals": compact_size(evals),
        "bytes_history": compact_size(msg["history"]),
        "bytes_per_eval": round(per_eval, 1),
        # if nothing but the evaluations grew: the snapshot at the 2,000,000 steps
        "projected_bytes_at_target": round(sizes.median + max(0, target_evals - len(evals)) * per_eval),
        "target_steps": TARGET_STEPS,
        "target_evals": target_evals,
    }


# ---- the browser and the run --------------------------------------------------------------------
def open_page(browser: Browser, base: str, watch: Watch) -> tuple[BrowserContext, Page, CDPSession]:
    ctx = browser.new_context(viewport={"width": 1440, "height": 900}, device_scale_factor=1)
    ctx.route("**/*", watch.route)
    page = ctx.new_page()
    watch.attach(page)
    page.goto(base + "/")
    page.wait_for_function("() => document.getElementById('connection').textContent === 'live'", timeout=30_000)
    page.wait_for_function("() => document.getElementById('status').textContent === 'paused'", timeout=30_000)
    cdp = ctx.new_cdp_session(page)
    cdp.send("Performance.enable")
    return ctx, page, cdp


def wait_page_done(page: Page, seconds: float) -> bool:
    """Wait up to `seconds` for the page to show the run over; say whether it does."""
    try:
        page.wait_for_function(PAGE_DONE_JS, arg=list(END_STATUSES), timeout=max(1.0, seconds * 1000), polling=250)
    except PlaywrightTimeout:
        return False
    return True


@dataclass
class Timeline:
    start: float  # time.monotonic() when the run was started
    browser_until: float  # the page stays open at least until then
    hard_until: float  # everything stops then
    done_at: float | None = None  # when the page showed the run over

    def over(self, now: float) -> bool:
        return (self.done_at is not None and now >= self.browser_until) or now >= self.hard_until

    def next_wake(self, next_sample: float) -> float:
        wake = min(next_sample, self.hard_until)
        return min(wake, self.browser_until) if self.done_at is not None else wake


def stream(page: Page, sample: Callable[[], Sample], timeline: Timeline, interval: float) -> list[Sample]:
    """Keep the page streaming, sampling every `interval` seconds, until the run is over and the
    page has been open long enough, or the hard deadline."""
    samples: list[Sample] = []
    next_sample = timeline.start
    while True:
        now = time.monotonic()
        if now >= next_sample:
            samples.append(sample())
            print(samples[-1].line(), flush=True)
            next_sample = now + interval
        if timeline.over(now):
            return samples
        wait = max(0.05, timeline.next_wake(next_sample) - now)
        if timeline.done_at is not None:
            page.wait_for_timeout(wait * 1000)
        elif wait_page_done(page, wait):
            timeline.done_at = time.monotonic()
            print(f"the page shows the run over after {timeline.done_at - timeline.start:.1f} s", flush=True)
            next_sample = timeline.done_at  # a sample at the end of training


def defaults_env() -> dict[str, str]:
    return {k: "" for k in os.environ if k.startswith("MAKEMORE_")}  # the defaults, whatever the shell says


@dataclass(frozen=True)
class Plan:
    steps: int
    browser_minutes: float
    timeout_minutes: float
    sample_seconds: float


def run(steps: int, browser_minutes: float, timeout_minutes: float, sample_seconds: float = 30.0) -> dict[str, Any]:
    """Train `steps` steps with the page open and streaming; return (and save) the results."""
    plan = Plan(steps, browser_minutes, timeout_minutes, sample_seconds)
    wall0 = time.monotonic()
    with tempfile.TemporaryDirectory() as tmp:
        log, home = Path(tmp) / "server.log", Path(tmp) / "home"
        env = {**defaults_env(), "MAKEMORE_HOME": str(home)}
        try:
            with running_server(env=env, log=log) as server, sync_playwright() as pw:
                browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
                try:
                    result = measure(Server(server.url, server.pid, home), browser, plan, wall0)
                finally:
                    browser.close()
        except Exception:
            print("server log (tail):\n" + (log.read_text()[-3000:] if log.exists() else ""))
            raise
    result["wall_s"] = round(time.monotonic() - wall0, 1)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=1) + "\n")
    return result


def measure(server: Server, browser: Browser, plan: Plan, wall0: float) -> dict[str, Any]:
    """Create the run paused, open the page, start the run and watch it; then the new clients,
    and the run's disk use."""
    base = server.url
    watch = Watch()
    created = call(base, "POST", "/api/runs", {"max_steps": plan.steps, "start": False})
    run_id = created["id"]
    ctx, page, cdp = open_page(browser, base, watch)
    call(base, "PATCH", f"/api/runs/{run_id}", {"status": "running"})
    start = time.monotonic()
    timeline = Timeline(start, start + plan.browser_minutes * 60, wall0 + plan.timeout_minutes * 60)
    print(
        f"run {run_id}: {plan.steps:,} steps, batch {created['hparams']['batch_size']}, "
        f"eval every {created['hparams']['eval_every']:,}; page open in headless Chromium",
        flush=True,
    )
    samples = stream(page, lambda: take_sample(page, cdp, base, run_id, server, start), timeline, plan.sample_seconds)
    page_open_s = time.monotonic() - start
    end = call(base, "GET", f"/api/runs/{run_id}")
    if end["status"] == "running":  # the hard deadline: measure the snapshot on a quiet server, as when finished
        end = call(base, "PATCH", f"/api/runs/{run_id}", {"status": "paused"})
    heap_gc = heap_after_gc_mb(cdp)
    snap = measure_snapshots(base, SNAPSHOT_CLIENTS)
    rss = {"final": round(rss_mb(server.pid), 1), "peak": peak_rss_mb(server.pid)}
    disk = disk_use(server, run_id)
    ctx.close()
    train_s = (timeline.done_at or time.monotonic()) - start
    reached = {
        "step": end["step"],
        "status": end["status"],
        "finished": end["status"] == "finished" and end["step"] >= plan.steps,
        "page_open_min": round(page_open_s / 60, 2),
        "train_s": round(train_s, 1),
        "steps_per_s": round(end["step"] / train_s, 1) if train_s > 0 else None,
        "timed_out": timeline.done_at is None or page_open_s < plan.browser_minutes * 60 - 1,
    }
    return summarize(plan, reached, snap, rss, disk, heap_gc, samples, watch)


def disk_use(server: Server, run_id: str) -> dict[str, Any]:
    """The run's share of the store (its own account) and the home's files, the server still up
    (the WAL as the server keeps it)."""
    call(server.url, "GET", f"/api/runs/{run_id}/checkpoints")  # flushes the store's queue
    store = Store(server.home)
    stored_steps = sum(chunk.n for chunk in store.steps(run_id))
    return {
        "run_bytes": store.run_bytes(run_id),
        "stored_steps": stored_steps,
        "stored_steps_cap": MAX_STORED_STEPS,
        "home": home_bytes(server.home),
    }


def summarize(
    plan: Plan,
    reached: dict[str, Any],
    snap: dict[str, Any],
    rss: dict[str, float | None],
    disk: dict[str, Any],
    heap_gc: float,
    samples: list[Sample],
    watch: Watch,
) -> dict[str, Any]:
    last = samples[-1]  # stream() always takes at least one
    peak = rss["peak"]
    return {
        "target": {k: v for k, v in asdict(plan).items() if k != "sample_seconds"},
        "sample_seconds": plan.sample_seconds,
        "reached": reached,
        "snapshot": snap,
        "rss_mb": {
            "final": rss["final"],
            "max_sampled": max(s.rss_mb for s in samples),
            "peak": round(peak, 1) if peak is not None else None,  # VmHWM: the kernel's high-water mark
        },
        "worker_rss_mb": {
            "max_sampled": max(s.worker_rss_mb for s in samples),
            "peak": max(s.worker_peak_mb for s in samples),  # its VmHWM, as last seen
        },
        "disk": {**disk, "home_mb_sampled": [s.home_mb for s in samples]},
        "heap_mb": {
            "final": last.heap_used_mb,
            "max": max(s.heap_used_mb for s in samples),
            "after_gc": round(heap_gc, 2),
        },
        "chart_points": {
            "final": last.chart_points,
            "max": max(s.chart_points for s in samples),
            "final_traces": last.traces,
            # the evaluation traces are not downsampled: one point per evaluation each, the rest is capped
            "projected_at_target": last.chart_points + (snap["target_evals"] - snap["evals"]) * len(EVAL_TRACES),
        },
        "page": {"blocked": watch.blocked, "errors": watch.errors[:50]},
        "samples": [asdict(s) for s in samples],
    }


# ---- the report ---------------------------------------------------------------------------------
def verdicts(r: dict[str, Any]) -> list[tuple[str, str, str, bool]]:
    """(what, measured, limit, passed) per figure of the target."""
    snap, rss, heap, pts = r["snapshot"], r["rss_mb"], r["heap_mb"], r["chart_points"]
    size, ms = Figure(snap["bytes"]["samples"]), Figure(snap["ms"]["samples"])
    peak = rss["peak"] if rss["peak"] is not None else rss["max_sampled"]
    out = [
        ("snapshot size", size.fmt(0, " B"), f"<= {SNAPSHOT_MAX_BYTES:,} B", max(size.samples) <= SNAPSHOT_MAX_BYTES),
        (
            f"snapshot arrival (median of {snap['clients']})",
            ms.fmt(1, " ms"),
            f"<= {SNAPSHOT_MAX_MS:.0f} ms",
            ms.median <= SNAPSHOT_MAX_MS,
        ),
        (
            "server RSS (peak; registry, store, fan-out)",
            f"{peak:,.1f} MB (final {rss['final']:,.1f})",
            f"< {RSS_MAX_MB:.0f} MB",
            peak < RSS_MAX_MB,
        ),
        (
            "JS heap (max while open)",
            f"{heap['max']:,.1f} MB (final {heap['final']:,.1f}, after GC {heap['after_gc']:,.1f})",
            f"< {HEAP_MAX_MB:.0f} MB",
            heap["max"] < HEAP_MAX_MB,
        ),
        (
            "chart points (max)",
            f"{pts['max']:,} (final {pts['final']:,})",
            f"<= {POINTS_MAX:,}",
            pts["max"] <= POINTS_MAX,
        ),
    ]
    if "worker_rss_mb" in r:  # results from before issue 8 (training in the server) have neither
        worker, disk = r["worker_rss_mb"], r["disk"]
        out += [
            (
                "the run's worker RSS (peak; the trainer)",
                f"{worker['peak']:,.1f} MB (max sampled {worker['max_sampled']:,.1f})",
                f"< {RSS_MAX_MB:.0f} MB",
                worker["peak"] < RSS_MAX_MB,
            ),
            (
                "disk: the run (store's account), the home",
                f"{disk['run_bytes'] / MB:,.1f} MB, home {disk['home']['total'] / MB:,.1f} MB"
                f" ({disk['stored_steps']:,} steps stored, {disk['home']['checkpoint_files']} checkpoint files)",
                f"<= {disk['stored_steps_cap']:,} steps stored",
                disk["stored_steps"] <= disk["stored_steps_cap"],
            ),
        ]
    return out


def report(r: dict[str, Any]) -> None:
    reached, snap = r["reached"], r["snapshot"]
    print()
    print(
        f"reached step {reached['step']:,} of {r['target']['steps']:,} ({reached['status']}) in "
        f"{reached['train_s']:,.1f} s = {reached['steps_per_s'] or 0:,.0f} steps/s; page open "
        f"{reached['page_open_min']:.1f} min; wall {r['wall_s']:,.1f} s"
    )
    print(
        f"snapshot: {snap['evals']:,} evals ({snap['bytes_evals']:,} B, {snap['bytes_per_eval']:.0f} B each), "
        f"{snap['history_points']:,} history points ({snap['bytes_history']:,} B), {snap['changes']} changes; "
        f"projected at {snap['target_steps']:,} steps: {snap['projected_bytes_at_target']:,} B"
    )
    pts = r["chart_points"]
    print(
        f"chart traces at the end: {pts['final_traces']}; projected at {snap['target_steps']:,} steps "
        f"({snap['target_evals']:,} evals): {pts['projected_at_target']:,} points"
    )
    if r["page"]["blocked"] or r["page"]["errors"]:
        print(f"page: blocked {r['page']['blocked']}, errors {r['page']['errors'][:5]}")
    print()
    rows = verdicts(r)
    width = max(len(w) for w, *_ in rows)
    measured_w = max(len(m) for _, m, *_ in rows)
    print(f"{'target 6':<{width}}  {'measured':<{measured_w}}  {'limit':<12}  verdict")
    for what, measured, limit, ok in rows:
        verdict = ("bounded" if ok else "UNBOUNDED") if what.startswith("chart") else ("pass" if ok else "FAIL")
        print(f"{what:<{width}}  {measured:<{measured_w}}  {limit:<12}  {verdict}")
    target = r["target"]
    if not reached["finished"]:
        print(
            f"INCOMPLETE: step {reached['step']:,} of {target['steps']:,} when the run ended or the "
            f"{target['timeout_minutes']:g}-minute timeout struck; the figures are for what was reached"
        )
    if reached["page_open_min"] < target["browser_minutes"] - 0.02:
        print(f"INCOMPLETE: the page was open {reached['page_open_min']:.1f} of {target['browser_minutes']:g} minutes")
    print(f"\nresults: {RESULTS.relative_to(ROOT)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=TARGET_STEPS)
    parser.add_argument("--browser-minutes", type=float, default=10.0)
    parser.add_argument("--timeout-minutes", type=float, default=60.0)
    parser.add_argument("--sample-seconds", type=float, default=30.0)
    args = parser.parse_args()
    if not CHROMIUM.exists():
        parser.error(f"no Chromium at {CHROMIUM} (apt-get install chromium)")
    result = run(args.steps, args.browser_minutes, args.timeout_minutes, args.sample_seconds)
    report(result)


if __name__ == "__main__":
    main()
