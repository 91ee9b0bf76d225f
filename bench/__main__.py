"""`python -m bench` (make bench): every benchmark of the speed issue, in one invocation.

Each comparison alternates baseline and app (A B A B ...) and reports medians, ranges and ratios.
Results go to bench/results/latest.json (merged with the parts not rerun) and a table of the
last run into bench/README.md. Everything stops by itself and talks only to 127.0.0.1.

    python -m bench                      # all of it (about an hour: the long run is 2M steps)
    python -m bench --quick              # short windows, for a smoke test
    python -m bench --only throughput evaluation
    python -m bench --only worker --quick --results bench/results/try.json   # trying a part out
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from bench import (
    busy,
    compare,
    create,
    diag_cost,
    diagnostics,
    disk,
    evaluation,
    hours,
    inside_page,
    latency,
    long_run,
    noise_scale,
    optimizers,
    overview_cost,
    parallel,
    restart,
    startup,
    store_cost,
    sweep,
    throughput,
    toolbox,
    viewers,
    worker,
)
from bench.report import write_readme
from harness.server import ROOT

RESULTS = ROOT / "bench" / "results" / "latest.json"


def plan(quick: bool) -> dict[str, Callable[[], Any]]:
    s = 0.2 if quick else 1.0  # scale of every measurement window
    pairs = 1 if quick else 3
    return {
        "startup": lambda: startup.startup(2 if quick else 5),
        "evaluation": lambda: {f"block_size_{b}": evaluation.compare(b, 2 if quick else 5) for b in (3, 8)},
        "levers": lambda: throughput.levers([32, 4096], 5 * s, pairs),
        "throughput": lambda: throughput.server_vs_lecture([32, 512, 4096], 10 * s, pairs),
        "viewers": lambda: viewers.many_viewers(100, 60 * s, pairs),
        "stalled_viewer": lambda: viewers.stalled_viewer(max(60 * s, 30), pairs),  # the queue must overflow
        "latency": lambda: latency.latency(50 if quick else 200),
        "latency_big": lambda: latency.latency_big(20 if quick else 100),
        "busy": lambda: busy.busy(pairs, 4 * s),
        "noise_scale": lambda: noise_scale.noise_frequency(10_000 if quick else 30_000),
        "toolbox": lambda: toolbox.toolbox(1 if quick else 3),
        "optimizers": lambda: optimizers.optimizers([32, 512], 2 * s, 1 if quick else 8),
        "long_run": lambda: long_run.run(100_000 if quick else 2_000_000, 1 if quick else 10, 10 if quick else 60),
        "hours": lambda: hours.hours(2_000_000 if quick else 12_000_000, 1 if quick else 3, 2 if quick else 5),
        # issue 8: runs in worker processes, side by side, in a store
        "worker": lambda: worker.worker_vs_thread(32, 10 * s, pairs),
        "two_runs": lambda: parallel.two_runs(10 * s, pairs),
        "store_cost": lambda: store_cost.store_cost(10 * s, pairs),
        "create": lambda: create.create(5 if quick else 20),
        "disk": lambda: disk.disk(20_000 if quick else 200_000),
        # issue 11: the compare view
        "compare": lambda: compare.compare(20, 20_000 if quick else 200_000, 2 if quick else 5, 5 if quick else 20),
        "restart": lambda: (
            restart.restart(20, 50, starts=1, snapshots=5, lists=10) if quick else restart.restart(200, 1000)
        ),
        # issue 11: a sweep's runs side by side; the overview stream's cost to the trainers
        "sweep": lambda: sweep.sweep(6, 5_000 if quick else 20_000, pairs),
        "overview_cost": lambda: (
            overview_cost.overview_cost(20, 20_000, 2, 2) if quick else overview_cost.overview_cost(100, 200_000, 6, 8)
        ),
        # issue 23: a diagnostic point and a gradient-direction pass against a training step
        "diagnostics": lambda: diagnostics.diagnostics(3 if quick else 9),
        # issue 23: a run with its diagnostics against one without; the Inside panel in Chromium
        "diag_cost": lambda: diag_cost.diag_cost(32, 4 * s, 1 if quick else 14),
        "inside_redraw": lambda: inside_page.redraw(1 if quick else 3, 20 * s),
        "inside_longtasks": lambda: inside_page.long_run(30_000 if quick else 300_000, 60 * s),
    }


def machine() -> dict[str, Any]:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torch_threads_default": torch.get_num_threads(),
    }


def _load() -> str:
    return " / ".join(f"{x:.2f}" for x in os.getloadavg())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="short windows, one pair: a smoke test")
    parser.add_argument("--only", nargs="+", help="run only these parts")
    parser.add_argument("--skip", nargs="+", default=[], help="skip these parts")
    parser.add_argument(
        "--results",
        type=Path,
        default=RESULTS,
        help=f"write the results here instead (then bench/README.md's table is left alone); default {RESULTS}",
    )
    args = parser.parse_args()
    parts = plan(args.quick)
    chosen = [p for p in (args.only or parts) if p not in args.skip]
    unknown = [p for p in chosen if p not in parts]
    if unknown:
        parser.error(f"unknown parts {unknown}; choose from {list(parts)}")
    out: Path = args.results.resolve()
    results: dict[str, Any] = json.loads(out.read_text()) if out.exists() else {}
    for name in chosen:
        print(f"== {name} (load average {_load()})", flush=True)
        before = os.getloadavg()
        result = parts[name]()
        after = os.getloadavg()
        print(f"   load average after {_load()}", flush=True)
        results[name] = {
            "result": result,
            "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
            "quick": args.quick,
            # the machine is shared: how busy it was (1, 5, 15 min) when the part started and ended
            "load_average": {"before": list(before), "after": list(after)},
        }
        results["machine"] = machine()
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(results, indent=1))
    if out == RESULTS:
        write_readme(results)
        print(f"results: {RESULTS.relative_to(ROOT)}; table: bench/README.md")
    else:
        print(f"results: {out} (bench/README.md left alone)")


if __name__ == "__main__":
    main()
