"""Issue 23: what the network's inside costs a run, against one training step at batch 32.

On the lecture's model and data/names.txt, one torch thread (as the trainer at batch 32), after
1,000 steps of SGD 0.1 so that the weights look trained: medians of
- one training step (blocks of `block` steps, per step);
- one diagnostic point (backend/core/diagnostics.py): the copy of the weights before the step,
  then the step's gradients, the applied update, the hidden layer on the 1,024-row probe, the
  parameters' figures and the JSON text: everything a point adds to its step;
- one gradient-direction pass (backend/core/gradcos.py): the full-split gradient, then the
  cosines at batch 1, 4, 16, 32, 64, 256 and 1,024, 16 draws each;
and from them the cadences: a diagnostic point every N steps costs <= 3%; the gradient pass at
every k-th evaluation (one per 1,000 steps) costs <= 5%. Each figure is timed in this thread's CPU
time and in wall time; the cadences come from the CPU time, which other processes on a shared
machine disturb less.

    python -m bench.diagnostics [--repeats 9]
"""

from __future__ import annotations

import argparse
import json
import math
import time
from typing import Any

import torch

from backend.config import DEFAULT_DATA
from backend.core import diagnostics as diag
from backend.core import gradcos
from backend.core.data import Dataset
from backend.core.evaluate import CountedExamples, chunk_rows
from backend.core.model import MLP, ModelShape
from backend.core.optim import Optimizer, OptimizerSpec
from bench.stats import Figure

DIAG_SHARE = 0.03
GRAD_SHARE = 0.05
EVAL_EVERY = 1000


def diagnostics(repeats: int = 9, block: int = 500, threads: int = 1) -> dict[str, Any]:
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        return _measure(repeats, block)
    finally:
        torch.set_num_threads(before)


def _measure(repeats: int, block: int) -> dict[str, Any]:
    ds = Dataset.from_file(DEFAULT_DATA)
    splits = ds.splits(3)
    ex = splits.train
    model = MLP.lecture_init(ModelShape(ds.vocab.size))
    opt = Optimizer(model, OptimizerSpec("sgd"))
    gen = torch.Generator().manual_seed(42)

    def batch() -> torch.Tensor:
        return torch.randint(0, len(ex), (32,), generator=gen)

    for _ in range(1000):
        opt.step(ex.X, ex.Y, batch(), 0.1).item()
    counted = CountedExamples.from_splits([ex, splits.dev], ds.vocab.size, chunk_rows(model.shape))
    probe = ex.X[diag.probe_rows(len(ex), 42)]
    scratch = diag.Scratch()  # the work tensors a trainer's Diagnoser keeps from point to point

    # Each figure in CPU seconds of this thread (time.thread_time) and in wall seconds: on a shared
    # machine the wall figures carry the other processes' share; the cadences use the CPU ones.
    cpu: dict[str, list[float]] = {k: [] for k in ("step_us", "point_us", "full_ms", "cos_ms")}
    wall: dict[str, list[float]] = {k: [] for k in cpu}
    size = 0
    for r in range(repeats):
        idxs = [batch() for _ in range(block)]
        c0, w0 = time.thread_time(), time.perf_counter()
        for idx in idxs:
            opt.step(ex.X, ex.Y, idx, 0.1).item()  # .item(), as the trainer's loop reads each loss
        cpu["step_us"].append((time.thread_time() - c0) / block * 1e6)
        wall["step_us"].append((time.perf_counter() - w0) / block * 1e6)

        c0, w0 = time.thread_time(), time.perf_counter()
        before = diag.snapshot(model)
        c1, w1 = time.thread_time(), time.perf_counter()
        opt.step(ex.X, ex.Y, batch(), 0.1).item()
        c2, w2 = time.thread_time(), time.perf_counter()
        point = diag.diagnostic_point(
            r, model, probe, diag.step_gradients(opt.step), diag.applied_updates(model, before), scratch
        )
        size = len(json.dumps(point, allow_nan=False))
        cpu["point_us"].append((c1 - c0 + time.thread_time() - c2) * 1e6)
        wall["point_us"].append((w1 - w0 + time.perf_counter() - w2) * 1e6)

        c0, w0 = time.thread_time(), time.perf_counter()
        full = gradcos.full_gradient(model, counted)
        c1, w1 = time.thread_time(), time.perf_counter()
        gradcos.cosines(model, ex, full, gradcos.draw_generator(42, r), current=32)
        cpu["full_ms"].append((c1 - c0) * 1000)
        wall["full_ms"].append((w1 - w0) * 1000)
        cpu["cos_ms"].append((time.thread_time() - c1) * 1000)
        wall["cos_ms"].append((time.perf_counter() - w1) * 1000)

    c = {k: Figure(v) for k, v in cpu.items()}
    w = {k: Figure(v) for k, v in wall.items()}
    step, point_f = c["step_us"].median, c["point_us"].median
    grad_ms = c["full_ms"].median + c["cos_ms"].median
    every_steps = math.ceil(point_f / (DIAG_SHARE * step))
    # the gradient pass at an evaluation, against the 1,000 steps between two evaluations
    grad_share = grad_ms * 1000 / (EVAL_EVERY * step)
    every_evals = math.ceil(grad_share / GRAD_SHARE)
    for name, figs in (("CPU", c), ("wall", w)):
        print(
            f"  {name}: one step at batch 32 {figs['step_us'].fmt(0, ' us')} | one diagnostic point"
            f" {figs['point_us'].fmt(0, ' us')} | full gradient {figs['full_ms'].fmt(1, ' ms')}"
            f" | cosines {figs['cos_ms'].fmt(1, ' ms')}"
        )
    print(
        f"  a point = {point_f / step:.1f} steps ({size:,} B of JSON): every {every_steps:,} steps keeps it within"
        f" {DIAG_SHARE:.0%}; the gradient pass = {grad_share:.1%} of {EVAL_EVERY:,} steps: at every"
        f" {every_evals} evaluation(s) within {GRAD_SHARE:.0%}"
    )
    return {
        "cpu": {k: f.as_dict() for k, f in c.items()},
        "wall": {k: f.as_dict() for k, f in w.items()},
        "point_json_bytes": size,
        "point_every_steps": every_steps,
        "gradient_pass_share_per_evaluation": grad_share,
        "gradient_pass_every_evaluations": every_evals,
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=9)
    diagnostics(parser.parse_args().repeats)
