"""Issue 10, item 10: how often an evaluation brings a gradient noise-scale estimate.

Runs of the real server, evaluating every 1,000 steps: the lecture's (plain SGD, lr 0.1) and an
Adam run (init "scaled", lr 0.01), each to `steps`; from the run's history, the share of
evaluations that carry an estimate and the longest stretch of evaluations without one.

    python -m bench.noise_scale [--steps 30000] [--repeats 1]
"""

from __future__ import annotations

import argparse
import time
from typing import Any

from bench.server import Bench, bench_server
from bench.stats import Figure

RUNS: dict[str, dict[str, Any]] = {
    "lecture": {},
    "adam": {"optimizer": "adam", "init": "scaled", "lr": 0.01},
}


def longest_gap(flags: list[bool]) -> int:
    """The most consecutive False values."""
    longest = run = 0
    for flag in flags:
        run = 0 if flag else run + 1
        longest = max(longest, run)
    return longest


def _one(bench: Bench, spec: dict[str, Any], steps: int) -> dict[str, Any]:
    run = bench.call("POST", "/api/runs", {**spec, "max_steps": steps, "eval_every": 1000, "start": True})
    t0 = time.monotonic()
    while bench.call("GET", f"/api/runs/{run['id']}")["status"] != "finished":
        if time.monotonic() - t0 > 1800:
            raise TimeoutError("the run did not finish")
        time.sleep(0.2)  # poll interval
    seconds = time.monotonic() - t0
    history = bench.call("GET", f"/api/runs/{run['id']}/history")
    flags = [e["b_noise"] is not None for e in history["evals"]]
    return {"evaluations": len(flags), "with_estimate": sum(flags), "longest_gap": longest_gap(flags), "s": seconds}


def noise_frequency(steps: int = 30_000, repeats: int = 1) -> dict[str, Any]:
    out: dict[str, Any] = {"steps": steps}
    with bench_server() as bench:
        for name, spec in RUNS.items():
            results = [_one(bench, spec, steps) for _ in range(repeats)]
            share = Figure([r["with_estimate"] / r["evaluations"] for r in results])
            gap = max(r["longest_gap"] for r in results)
            print(
                f"  {name}: {results[-1]['with_estimate']} of {results[-1]['evaluations']} evaluations"
                f" with an estimate (share {share.fmt(2)}); longest stretch without: {gap} evaluations"
                f" ({results[-1]['s']:.0f} s)"
            )
            out[name] = {"share": share.as_dict(), "longest_gap": gap, "runs": results}
    return out


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=30_000)
    parser.add_argument("--repeats", type=int, default=1)
    args = parser.parse_args()
    noise_frequency(args.steps, args.repeats)
