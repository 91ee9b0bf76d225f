"""The lecture's final schedule, set live through the API of a real server process:
lr 0.1 for 100,000 steps, then lr 0.01 up to 200,000. Prints the exact train/dev losses.

    python -m bench.schedule [--data FILE]     (default: the built-in names)
"""

from __future__ import annotations

import argparse
import time

from bench.client import call, wait_status
from harness.server import running_server


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", help="word list (default: the built-in names)")
    parser.add_argument("--steps", type=int, default=200_000)
    args = parser.parse_args()
    half = args.steps // 2
    with running_server(*(["--data", args.data] if args.data else [])) as server:
        base = server.url
        t0 = time.perf_counter()
        call(base, "POST", "/api/runs", {"max_steps": half, "lr": 0.1})
        first = wait_status(base, "finished", timeout=3600)
        t1 = time.perf_counter()
        call(base, "PATCH", "/api/runs/current", {"lr": 0.01, "max_steps": args.steps, "status": "running"})
        last = wait_status(base, "finished", timeout=3600)
        t2 = time.perf_counter()
    print(f"dataset {last['dataset']['name']}: {last['dataset']['train_examples']:,} training examples")
    for run, lr in ((first, "0.1"), (last, "0.01")):
        e = run["last_eval"]
        print(f"step {run['step']:,} (lr {lr}): train {e['train_loss']:.4f}  dev {e['dev_loss']:.4f}")
    print(f"wall: {t1 - t0:.1f} s + {t2 - t1:.1f} s = {args.steps / (t2 - t0):,.0f} steps/s including evaluations")


if __name__ == "__main__":
    main()
