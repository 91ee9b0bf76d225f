"""The page on a long run (issue 10, item 2): is the main thread free while a long run streams?

A fresh tab on a run at step S (an evaluation every 500 steps) streams for 20 s: the share of
that time spent in long tasks (> 50 ms; PerformanceObserver 'longtask'), the longest, the
synchronous time of each Plotly.react, and the Sample button's round trip (from the click to
the names on the page, against the real server) every 2 s.

Targets: long tasks < 15% of the 20 s; Sample answers within 300 ms at any point of a
1,000,000-step run.

Two ways to get the long run:
  synthetic (default): the run is fed to the page's own message handler (harness/synthetic_run.py)
      at the server's pace (3,000 steps/s in 10 messages a second), while the real server trains
      a run of its own so that Sample's answer comes from a busy server.
  --real-steps N: the real server trains N steps first (an evaluation every 500), then a fresh
      tab opens on it and streams the real websocket.

`--baseline REV` serves the page's files (frontend/) of git revision REV to every other tab
(A B A B ...), so the figures of the old and the new page come from the same run of the bench.

    .venv/bin/python -m bench.page [--start 1000000] [--pairs 3] [--baseline 297f41f]
    .venv/bin/python -m bench.page --real-steps 300000 --pairs 1
"""

from __future__ import annotations

import argparse
import io
import json
import mimetypes
import statistics
import subprocess
import tarfile
import tempfile
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from playwright.sync_api import Browser, Route, sync_playwright

from bench.client import call
from bench.stats import Figure
from harness.chromium import CHROMIUM, CHROMIUM_ARGS, LOCAL_HOSTS
from harness.server import ROOT, running_server
from harness.synthetic_run import feed, install_probe, mute_socket, read_probe

RESULTS = ROOT / "bench" / "results" / "page.json"
WINDOW_S = 20.0
SAMPLE_EVERY_S = 2.0
LONGTASK_SHARE_MAX = 0.15
SAMPLE_MS_MAX = 300.0


def export_frontend(rev: str, into: Path) -> Path:
    """frontend/ as it was at `rev`, in a directory of its own."""
    tar = subprocess.run(["git", "archive", rev, "frontend"], cwd=ROOT, check=True, capture_output=True).stdout
    with tarfile.open(fileobj=io.BytesIO(tar)) as t:
        t.extractall(into, filter="data")
    return into / "frontend"


def serve_from(frontend: Path) -> Any:
    """A route handler: the page's own files from `frontend`, the rest from the server."""

    def handle(route: Route) -> None:
        path = urlsplit(route.request.url).path
        if path == "/":
            file = frontend / "index.html"
        elif path.startswith("/static/"):
            file = frontend / path.removeprefix("/static/")
        else:
            route.continue_()
            return
        if not file.is_file():
            route.fulfill(status=404, body="not found")
            return
        route.fulfill(body=file.read_bytes(), content_type=mimetypes.guess_type(file.name)[0] or "text/plain")

    return handle


def one_tab(
    browser: Browser, base: str, run: dict[str, Any], frontend: Path | None, synthetic: dict[str, Any] | None
) -> dict[str, Any]:
    ctx = browser.new_context(viewport={"width": 1440, "height": 900}, device_scale_factor=1)
    blocked: list[str] = []

    def local_only(route: Route) -> None:
        if urlsplit(route.request.url).hostname in LOCAL_HOSTS or route.request.url.startswith("data:"):
            route.fallback()
        else:
            blocked.append(route.request.url)
            route.abort()

    ctx.route("**/*", local_only)
    if frontend is not None:
        ctx.route("**/*", serve_from(frontend))  # added last: asked first
    page = ctx.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    try:
        if synthetic is not None:
            mute_socket(page)
        page.goto(base + "/")
        page.wait_for_function("() => document.getElementById('connection').textContent === 'live'", timeout=30_000)
        page.wait_for_function("() => window.Plotly", timeout=30_000)
        if synthetic is not None:
            feed(page, run, **synthetic)
        else:
            page.wait_for_function("() => document.getElementById('status').textContent === 'running'", timeout=30_000)
        install_probe(page)
        page.wait_for_timeout(2000)  # the first draws of a fresh tab, before the window
        page.evaluate("() => window.probe.reset()")
        t0 = time.monotonic()
        clicks = 0
        while time.monotonic() - t0 < WINDOW_S:
            page.click("#sample-button", timeout=10_000)
            clicks += 1
            page.wait_for_function("n => window.probe.samples.length >= n", arg=clicks, timeout=10_000)
            page.wait_for_timeout(max(0.0, SAMPLE_EVERY_S * clicks - (time.monotonic() - t0)) * 1000)
        probe = read_probe(page)
        step = page.locator("#step").inner_text()
    finally:
        ctx.close()
    if errors or blocked:
        raise RuntimeError(f"the page failed: errors {errors[:5]}, blocked {blocked[:5]}")
    redraws = {k: round(statistics.median(v), 1) for k, v in probe["redraws"].items() if v}
    worst = {k: round(max(v), 1) for k, v in probe["redraws"].items() if v}
    return {
        "longtask_share": round(probe["longtask_share"], 4),
        "longtasks": probe["longtasks"],
        "longest_ms": round(probe["longest_ms"], 1),
        "sample_ms": [round(x, 1) for x in probe["samples"]],
        "redraw_ms_median": redraws,
        "redraw_ms_max": worst,
        "redraws": {k: len(v) for k, v in probe["redraws"].items()},
        "step_at_end": step,
    }


def measure(args: argparse.Namespace) -> dict[str, Any]:
    env = {k: "" for k in __import__("os").environ if k.startswith("MAKEMORE_")}
    with tempfile.TemporaryDirectory() as tmp, running_server(env=env) as server:
        base = server.url
        baseline = export_frontend(args.baseline, Path(tmp)) if args.baseline else None
        if args.real_steps:
            run = call(base, "POST", "/api/runs", {"max_steps": 100_000_000, "eval_every": 500, "start": True})
            print(f"training {args.real_steps:,} steps first ...", flush=True)
            while (step := call(base, "GET", f"/api/runs/{run['id']}")["step"]) < args.real_steps:
                time.sleep(2)  # a by-hand benchmark: poll the trainer now and then
            print(f"at step {step:,}", flush=True)
            synthetic = None
        else:
            # the server trains a run of its own (Sample asks it), the page shows the fed one
            run = call(base, "POST", "/api/runs", {"max_steps": 100_000_000, "eval_every": 500, "start": True})
            synthetic = {"start": args.start, "evalEvery": 500, "rate": 3000}
        tabs: dict[str, list[dict[str, Any]]] = {"baseline": [], "page": []}
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
            try:
                for i in range(args.pairs):
                    order = [("baseline", baseline), ("page", None)] if baseline else [("page", None)]
                    for name, frontend in order:
                        result = one_tab(browser, base, run, frontend, synthetic)
                        tabs[name].append(result)
                        print(f"[{i + 1}/{args.pairs}] {name}: {json.dumps(result)}", flush=True)
            finally:
                browser.close()
    return {
        "start": args.real_steps or args.start,
        "real": bool(args.real_steps),
        "baseline_rev": args.baseline,
        "tabs": tabs,
    }


def report(r: dict[str, Any]) -> None:
    print(
        f"\nthe page on a run at step {r['start']:,} ({'real' if r['real'] else 'synthetic'}), {WINDOW_S:g} s windows"
    )
    for name, tabs in r["tabs"].items():
        if not tabs:
            continue
        share = Figure([100 * t["longtask_share"] for t in tabs])
        longest = Figure([t["longest_ms"] for t in tabs])
        sample = Figure([max(t["sample_ms"]) for t in tabs])
        chart = Figure([t["redraw_ms_median"].get("chart", 0.0) for t in tabs])
        ok = max(share.samples) < 100 * LONGTASK_SHARE_MAX and max(sample.samples) <= SAMPLE_MS_MAX
        label = f"{name} ({r['baseline_rev']})" if name == "baseline" else name
        print(
            f"  {label:<20} long tasks {share.fmt(1, '%')} | longest {longest.fmt(0, ' ms')} | "
            f"Sample worst {sample.fmt(0, ' ms')} | loss chart redraw (median) {chart.fmt(1, ' ms')} -> "
            f"{'pass' if ok else 'FAIL'}"
        )
    base, page = r["tabs"]["baseline"], r["tabs"]["page"]
    if base and page:
        ratios = Figure(
            [b["longtask_share"] / max(p["longtask_share"], 1e-4) for b, p in zip(base, page, strict=False)]
        )
        print(f"  long-task share, baseline / page: {ratios.fmt(1, 'x')}")
    print(f"targets: long tasks < {100 * LONGTASK_SHARE_MAX:g}% of {WINDOW_S:g} s, Sample <= {SAMPLE_MS_MAX:g} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--start", type=int, default=1_000_000, help="the fed run's step when the tab opens")
    parser.add_argument("--real-steps", type=int, default=0, help="train this many real steps instead of feeding")
    parser.add_argument("--pairs", type=int, default=3)
    parser.add_argument("--baseline", default=None, help="a git revision whose frontend/ the other tabs get")
    args = parser.parse_args()
    if not CHROMIUM.exists():
        parser.error(f"no Chromium at {CHROMIUM}")
    result = measure(args)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=1) + "\n")
    report(result)


if __name__ == "__main__":
    main()
