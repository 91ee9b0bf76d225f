"""Issue 11, speed target 1: a sweep of 6 learning rates x 20,000 steps (the lecture's model,
batch 32) finishes in at most 1 / 0.7 of the ideal time, ideal = 6 x 20,000 steps / (2 cores x
one run's steps/s alone).

One real server (`python -m backend`, a fresh temporary home, MAKEMORE_MAX_RUNNING at its
default: the cores). In turn, `rounds` times (A B A B ...):

- alone: one run of 20,000 steps (lr 0.1) made by `POST /api/runs` with `start`, polled every
  POLL seconds until it finishes. Its steps/s: from the step counter between the first poll
  past WARM_STEPS and the last poll before the end (the training rate: the target's "one run's
  steps/s alone"); also from the POST to the finish (the worker's start and the evaluations in
  it) and from its own training seconds;
- the sweep: `POST /api/sweeps` with `lr_range` (the lecture's search, 10^-3 .. 10^0, log-spaced)
  and `base.max_steps`; polled the same way until none of its runs trains or waits. Its time:
  from the POST to the poll that sees the last run done.

ideal = the steps the sweep's runs trained (6 x 20,000 unless one diverged) / (cores x the
alone figure of the same round); the ratio is ideal / actual (target >= 0.7). Beside it, to
tell where time goes: the sweep's runs' own training seconds added up over (cores x the sweep's
time) (how full the slots were) and each run's steps/s in the sweep against the run alone (what
two runs at once cost each other); and the CPU the server's processes used (server, forkserver,
workers) and what everything else on the machine used meanwhile (bench/cpu.py), with the
sweep's steps per CPU second of the server's processes against the run alone's.

What the sweep finds: each rate's dev loss at its last evaluation (step 20,000) and its best,
the rate with the lowest final dev loss (the runs are seeded alike, so every round finds the same).
"""

from __future__ import annotations

import os
import time
from typing import Any

from bench.cpu import Meter, Usage
from bench.server import Bench, bench_server
from bench.stats import Figure

POLL = 0.2  # seconds between polls of a run or a sweep (the same for both)
WARM_STEPS = 1_000  # the alone rate is measured past this step (a fresh worker's first steps run cold)
LR_RANGE = {"min": 0.001, "max": 1.0}  # the lecture's search: lre = linspace(-3, 0), lrs = 10**lre
DONE = ("finished", "diverged", "paused", "interrupted")


def _alone(bench: Bench, steps: int, timeout: float) -> tuple[dict[str, float], Usage]:
    meter = Meter(bench.server.pid)
    t0 = time.perf_counter()
    run = bench.call("POST", "/api/runs", {"max_steps": steps, "lr": 0.1, "start": True})
    seen: list[tuple[float, int]] = []  # (time, step) while it trains
    started = None  # seconds from the POST to the first poll that sees a step trained
    deadline = time.monotonic() + timeout
    while run["status"] not in DONE:
        if time.monotonic() > deadline:
            raise TimeoutError(f"the run alone did not finish {steps:,} steps in {timeout:.0f} s")
        time.sleep(POLL)
        run = bench.call("GET", f"/api/runs/{run['id']}")
        if run["status"] == "running" and run["step"] < steps:
            seen.append((time.perf_counter(), run["step"]))
        if started is None and run["step"] > 0:
            started = time.perf_counter() - t0
    wall, usage = time.perf_counter() - t0, meter.read()
    if run["status"] != "finished":
        raise RuntimeError(f"the run alone ended {run['status']}: {run['detail']}")
    warm = [(t, s) for t, s in seen if s >= min(WARM_STEPS, steps // 10)]
    if len(warm) < 2:
        raise RuntimeError(f"too few polls of the run alone while it trained ({len(warm)})")
    (ta, sa), (tb, sb) = warm[0], warm[-1]
    bench.call("DELETE", f"/api/runs/{run['id']}")
    return {
        "steps_per_s": (sb - sa) / (tb - ta),
        "steps_per_cpu_s": steps / (usage.server_cores * usage.seconds),
        "end_to_end_steps_per_s": steps / wall,
        "own_steps_per_s": steps / run["train_seconds"],
        "seconds": wall,
        "start_s": started if started is not None else wall,
    }, usage


def _sweep(bench: Bench, n: int, steps: int, timeout: float) -> tuple[float, list[dict[str, Any]], Usage]:
    meter = Meter(bench.server.pid)
    t0 = time.perf_counter()
    body = {"base": {"max_steps": steps}, "lr_range": {**LR_RANGE, "n": n}, "name": "bench: the lecture's lr search"}
    sweep = bench.call("POST", "/api/sweeps", body)
    deadline = time.monotonic() + timeout
    while any(r["status"] in ("running", "queued") for r in sweep["runs"]):
        if time.monotonic() > deadline:
            raise TimeoutError(f"the sweep did not finish in {timeout:.0f} s")
        time.sleep(POLL)
        sweep = bench.call("GET", f"/api/sweeps/{sweep['id']}")
    took, usage = time.perf_counter() - t0, meter.read()
    runs: list[dict[str, Any]] = sweep["runs"]
    return took, runs, usage


def sweep(n: int = 6, steps: int = 20_000, rounds: int = 3) -> dict[str, Any]:
    cores = os.cpu_count() or 1
    alone, actual, ideal, ratio, full, each_vs_alone = [], [], [], [], [], []
    found: list[dict[str, Any]] = []
    usage: dict[str, list[dict[str, float]]] = {"alone": [], "sweep": []}
    per_cpu_s: list[float] = []
    timeout = 20 * n * steps / 1000  # at 50 steps/s: something is wrong
    with bench_server() as bench:
        _alone(bench, min(steps, 2_000), timeout)  # warm-up: the forkserver's first worker starts cold
        for _ in range(rounds):
            one, used_alone = _alone(bench, steps, timeout)
            alone.append(one)
            took, runs, used = _sweep(bench, n, steps, timeout)
            usage["alone"].append(used_alone.as_dict())
            usage["sweep"].append(used.as_dict())
            trained = sum(r["step"] for r in runs)
            per_cpu_s.append(trained / (used.server_cores * used.seconds) / one["steps_per_cpu_s"])
            best_ideal = trained / (cores * one["steps_per_s"])
            actual.append(took)
            ideal.append(best_ideal)
            ratio.append(best_ideal / took)
            full.append(sum(r["train_seconds"] for r in runs) / (cores * took))
            each_vs_alone.append(Figure([r["step"] / r["train_seconds"] / one["own_steps_per_s"] for r in runs]).median)
            found = runs
            print(
                f"  alone {one['steps_per_s']:,.0f} steps/s (end to end {one['end_to_end_steps_per_s']:,.0f},"
                f" first step after {one['start_s']:.1f} s)"
                f" | sweep {n} x {steps:,} in {took:.1f} s, ideal {best_ideal:.1f} s: {best_ideal / took:.2f}x"
                f" | slots full {full[-1]:.2f}, a run's steps/s in the sweep / alone {each_vs_alone[-1]:.2f}"
                f" | cores: alone {used_alone.server_cores:.2f} (others {used_alone.others_cores:.2f}),"
                f" sweep {used.server_cores:.2f} (others {used.others_cores:.2f});"
                f" steps per CPU second, sweep / alone {per_cpu_s[-1]:.2f}",
                flush=True,
            )
    results = [
        {
            "lr": r["hparams"]["lr"],
            "status": r["status"],
            "step": r["step"],
            "dev_loss": r["last_eval"]["dev_loss"] if r["last_eval"] else None,
            "train_loss": r["last_eval"]["train_loss"] if r["last_eval"] else None,
            "best_dev_loss": r["best_dev_loss"],
        }
        for r in sorted(found, key=lambda r: r["hparams"]["lr"])
    ]
    finals = [r for r in results if r["dev_loss"] is not None and r["status"] == "finished"]
    best = min(finals, key=lambda r: r["dev_loss"]) if finals else None
    r_fig = Figure(ratio)
    print(
        f"  ideal / actual {r_fig.fmt(2)}x (>= 0.7) | "
        + ", ".join(f"lr {r['lr']:g}: dev {r['dev_loss']:.4f}" for r in finals)
        + (f" | best lr {best['lr']:g}, dev {best['dev_loss']:.4f}" if best else " | no run finished")
    )
    return {
        "runs": n,
        "steps": steps,
        "cores": cores,
        "lr_range": LR_RANGE,
        "alone_steps_per_s": Figure([a["steps_per_s"] for a in alone]).as_dict(),
        "alone_end_to_end_steps_per_s": Figure([a["end_to_end_steps_per_s"] for a in alone]).as_dict(),
        "alone_own_steps_per_s": Figure([a["own_steps_per_s"] for a in alone]).as_dict(),
        "alone_first_step_s": Figure([a["start_s"] for a in alone]).as_dict(),
        "sweep_seconds": Figure(actual).as_dict(),
        "ideal_seconds": Figure(ideal).as_dict(),
        "ratio": r_fig.as_dict(),
        "slots_full": Figure(full).as_dict(),
        "run_in_sweep_vs_alone": Figure(each_vs_alone).as_dict(),
        "steps_per_cpu_s_sweep_vs_alone": Figure(per_cpu_s).as_dict(),
        "sweep_server_cores": Figure([u["server_cores"] for u in usage["sweep"]]).as_dict(),
        "sweep_others_cores": Figure([u["others_cores"] for u in usage["sweep"]]).as_dict(),
        "alone_server_cores": Figure([u["server_cores"] for u in usage["alone"]]).as_dict(),
        "alone_others_cores": Figure([u["others_cores"] for u in usage["alone"]]).as_dict(),
        "usage": usage,
        "results": results,
        "best": best,
    }
