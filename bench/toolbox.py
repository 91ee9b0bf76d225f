"""The figures of the toolbox issue, through the API of a real server process:

- the learning-rate finder's suggestion and the sweep's duration on a fresh default run, and
  again mid-run (at step 10,000);
- the gradient noise scale at step 0, 10,000 and 100,000 of a default run;
- the first-step loss and the dev loss after the lecture's 200,000-step schedule (lr 0.1, then
  0.01 from step 100,000, as a step schedule) with init "scaled".

    python -m bench.toolbox [--repeats 3]
"""

from __future__ import annotations

import argparse
import asyncio
import time
from typing import Any

from bench.live import open_viewers
from bench.server import Bench, bench_server
from bench.stats import Figure


def lr_find(bench: Bench) -> dict[str, Any]:
    bench.call("POST", "/api/runs/current/lr-find", {})
    deadline = time.monotonic() + 120
    before = bench.call("GET", "/api/runs/current")["step"]
    while time.monotonic() < deadline:
        try:
            result: dict[str, Any] = bench.call("GET", "/api/runs/current/lr-find")
        except OSError:  # 404 until the first sweep ends
            result = {}
        if result.get("step") == before and result.get("seconds") is not None:
            return result
        time.sleep(0.05)  # poll interval
    raise TimeoutError("no sweep result")


def train_to(bench: Bench, steps: int) -> dict[str, Any]:
    bench.call("PATCH", "/api/runs/current", {"max_steps": steps, "status": "running"})
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        run: dict[str, Any] = bench.call("GET", "/api/runs/current")
        # the noise estimate follows the last evaluation on its own thread
        done = run["status"] == "finished" and run["step"] == steps
        if done and run["last_eval"] and run["last_eval"]["b_noise"] is not None:
            return run
        time.sleep(0.1)  # poll interval
    raise TimeoutError(f"not at step {steps}")


def default_run(repeats: int) -> dict[str, Any]:
    fresh, mid, noise = [], [], []
    with bench_server() as bench:
        for _ in range(repeats):
            bench.call("POST", "/api/runs", {"start": False})
            first = bench.call("GET", "/api/runs/current")
            while first["last_eval"] is None or first["last_eval"]["b_noise"] is None:
                time.sleep(0.05)  # poll interval: the step-0 evaluation and its noise estimate
                first = bench.call("GET", "/api/runs/current")
            fresh.append(lr_find(bench))
            at_10k = train_to(bench, 10_000)
            mid.append(lr_find(bench))
            at_100k = train_to(bench, 100_000)
            noise.append([r["last_eval"]["b_noise"] for r in (first, at_10k, at_100k)])
    out = {
        "fresh_suggestion": Figure([r["suggestion"] for r in fresh]).as_dict(),
        "fresh_seconds": Figure([r["seconds"] for r in fresh]).as_dict(),
        "mid_run_suggestion": Figure([r["suggestion"] for r in mid]).as_dict(),
        "mid_run_seconds": Figure([r["seconds"] for r in mid]).as_dict(),
        "noise_scale": {str(s): Figure([n[i] for n in noise]).as_dict() for i, s in enumerate((0, 10_000, 100_000))},
    }
    f = {k: Figure(v["samples"]) for k, v in out.items() if k != "noise_scale"}
    for name, key in (("fresh default run", "fresh"), ("step 10,000", "mid_run")):
        print(f"  LR finder, {name}: suggestion {f[key + '_suggestion'].fmt(4)} in {f[key + '_seconds'].fmt(2, ' s')}")
    for s, v in out["noise_scale"].items():
        print(f"  gradient noise scale at step {int(s):,}: {Figure(v['samples']).fmt(1)}")
    return out


async def _scaled(repeats: int) -> dict[str, Any]:
    first, dev, train = [], [], []
    with bench_server() as bench:
        for _ in range(repeats):
            bench.call(
                "POST",
                "/api/runs",
                {
                    "init": "scaled",
                    "start": False,
                    "schedule": {"kind": "step", "at": 100_000, "factor": 0.1},
                    "max_steps": 200_000,
                },
            )
            (viewer,) = await open_viewers(bench.ws_url, 1)
            first_steps = viewer.expect("steps")
            await bench.acall("PATCH", "/api/runs/current", {"status": "running"})
            run = await asyncio.to_thread(train_to, bench, 200_000)
            first.append(await _first_loss(first_steps))
            dev.append(run["last_eval"]["dev_loss"])
            train.append(run["last_eval"]["train_loss"])
            await viewer.close()
    print(
        f"  init scaled, lecture schedule: first-step loss {Figure(first).fmt(4)};"
        f" after 200,000 steps train {Figure(train).fmt(4)}, dev {Figure(dev).fmt(4)}"
    )
    return {
        "first_step_loss": Figure(first).as_dict(),
        "train_loss": Figure(train).as_dict(),
        "dev_loss": Figure(dev).as_dict(),
    }


async def _first_loss(fut: asyncio.Future[tuple[float, dict[str, Any]]]) -> float:
    _, msg = await fut
    return float(msg["loss"][0]) if msg["step"][0] == 0 else float("nan")


def scaled_run(repeats: int) -> dict[str, Any]:
    return asyncio.run(_scaled(repeats))


def toolbox(repeats: int = 3) -> dict[str, Any]:
    return {"default": default_run(repeats), "scaled": scaled_run(repeats)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=3)
    toolbox(parser.parse_args().repeats)


if __name__ == "__main__":
    main()
