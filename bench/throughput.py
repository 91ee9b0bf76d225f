"""Target 1: training throughput of the running server (default model, one websocket viewer,
evaluation every 1,000 steps) against the lecture's loop, at batch 32, 512 and 4,096; and what
each lever gives (in-process, at batch 32 and 4,096). Since issue 8 the server's run trains in a
worker process of its own (with the cores to itself for big batches: it is the only run that
trains); the figure is still the run's steps/s as the server counts them.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

import torch
import torch.nn.functional as F

from backend.config import DEFAULT_DATA
from backend.core.data import Dataset, Examples, Splits
from backend.core.model import MLP, ModelShape, SGDStep
from backend.training.spec import RunSpec
from backend.training.trainer import Trainer
from bench.lecture import lecture_loop
from bench.live import open_viewers
from bench.server import Bench, bench_server, wait_training
from bench.stats import Figure
from harness.server import ROOT


def baseline(batch: int, seconds: float, threads: int | None = None) -> float:
    """The lecture's loop in a fresh process, default threads unless `threads` is given."""
    extra = ["--threads", str(threads)] if threads else []
    out = subprocess.run(
        [sys.executable, "-m", "bench.lecture", "--batch", str(batch), "--seconds", str(seconds), *extra],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    return float(json.loads(out.stdout)["steps_per_s"])


async def server_rate(bench: Bench, batch: int, seconds: float) -> float:
    """Steps per second of the server's run at this batch size, from its own step counter."""
    before = await asyncio.to_thread(bench.step)
    run = await bench.acall("PATCH", "/api/runs/current", {"batch_size": batch, "status": "running"})
    await wait_training(bench, [run["id"]], [before])  # a worker let go while paused starts again first
    await asyncio.sleep(1.0)  # warm-up: the first steps after a resume run cold
    s0, t0 = await asyncio.to_thread(bench.step), time.perf_counter()
    await asyncio.sleep(seconds)  # the measurement window
    s1, t1 = await asyncio.to_thread(bench.step), time.perf_counter()
    await bench.acall("PATCH", "/api/runs/current", {"status": "paused"})
    return (s1 - s0) / (t1 - t0)


async def _server_vs_lecture(batches: list[int], seconds: float, pairs: int) -> dict[str, object]:
    results: dict[str, object] = {}
    with bench_server() as bench:
        bench.new_run()
        (viewer,) = await open_viewers(bench.ws_url, 1)  # reads everything while we measure
        for batch in batches:
            xs, ys = [], []
            for _ in range(pairs):  # A B A B ...: the server is paused while the lecture runs
                xs.append(await asyncio.to_thread(baseline, batch, seconds))
                ys.append(await server_rate(bench, batch, seconds))
            base, app = Figure(xs), Figure(ys)
            ratio = Figure([y / x for x, y in zip(xs, ys, strict=True)])
            print(
                f"  batch {batch:>5}: lecture {base.fmt(0)} steps/s | server {app.fmt(0)} steps/s"
                f" | ratio {ratio.fmt(2)}x | viewer gaps: {len(viewer.gaps)}"
            )
            results[str(batch)] = {
                "lecture_steps_per_s": base.as_dict(),
                "server_steps_per_s": app.as_dict(),
                "ratio": ratio.as_dict(),
                "viewer_steps": viewer.steps,
                "viewer_gaps": len(viewer.gaps),
            }
        await viewer.close()
    return results


def server_vs_lecture(batches: list[int], seconds: float, pairs: int) -> dict[str, object]:
    return asyncio.run(_server_vs_lecture(batches, seconds, pairs))


# ---- levers, in-process -------------------------------------------------------------------------
def steps_per_second(step: Callable[[], object], seconds: float, warm_up: int = 20) -> float:
    """Call `step` until `seconds` have passed (after a warm-up); return its rate."""
    for _ in range(warm_up):
        step()
    i, start = 0, time.perf_counter()
    while True:
        step()
        i += 1
        if i % 16 == 0 and time.perf_counter() - start >= seconds:
            return i / (time.perf_counter() - start)


def _manual_allocating(ex: Examples, batch: int, seconds: float) -> float:
    """Hand-written backward, no autograd, but fresh tensors every op and torch.tanh."""
    m = MLP.lecture_init(ModelShape(27))
    C, W1, b1, W2, b2 = m.parameters()

    def step() -> None:
        ix = torch.randint(0, len(ex), (batch,))
        X, Y = ex.X[ix], ex.Y[ix]
        emb = C[X].view(batch, -1)
        h = torch.tanh(emb @ W1 + b1)
        logp = F.log_softmax(h @ W2 + b2, 1)
        loss = F.nll_loss(logp, Y)
        d = logp.exp()
        d[torch.arange(batch), Y] -= 1
        d /= batch
        dz = (d @ W2.T) * (1 - h * h)
        demb = dz @ W1.T
        dC = torch.zeros_like(C).index_add_(0, X.view(-1), demb.view(-1, C.shape[1]))
        for p, g in ((C, dC), (W1, emb.T @ dz), (b1, dz.sum(0)), (W2, h.T @ d), (b2, d.sum(0))):
            p.add_(g, alpha=-0.01)
        loss.item()

    return steps_per_second(step, seconds)


def _sgdstep(threads: int, via_sigmoid: bool = True) -> Callable[[Examples, int, float], float]:
    def run(ex: Examples, batch: int, seconds: float) -> float:
        torch.set_num_threads(threads)
        sgd = SGDStep(MLP.lecture_init(ModelShape(27)), tanh_via_sigmoid=via_sigmoid)
        idx = torch.empty(batch, dtype=torch.long)
        g = torch.Generator().manual_seed(0)

        def step() -> None:
            torch.randint(0, len(ex), (batch,), generator=g, out=idx)
            sgd(ex.X, ex.Y, idx, 0.01).item()

        return steps_per_second(step, seconds)

    return run


def _trainer_thread(ex: Examples, batch: int, seconds: float) -> float:
    """The Trainer that a run's worker runs (its thread, lock, divergence check, coalescing,
    checkpoints taken), without a process, a server, evaluations or viewers."""
    splits = Splits(ex, ex, ex)
    spec = RunSpec(lr=0.01, batch_size=batch, eval_every=10**6, max_steps=10**8)
    chars = tuple(".abcdefghijklmnopqrstuvwxyz")
    t = Trainer(spec, splits, chars, lambda e: None, max_threads=os.cpu_count() or 1)
    t.start(running=True)
    time.sleep(0.5)  # warm-up
    s0, t0 = t.step, time.perf_counter()
    time.sleep(seconds)  # the measurement window
    rate = (t.step - s0) / (time.perf_counter() - t0)
    t.stop()
    return rate


T = TypeVar("T")
DEFAULT_THREADS = torch.get_num_threads()  # before anything in this process changes it


def levers(batches: list[int], seconds: float, rounds: int) -> dict[str, object]:
    """Each variant in turn, `rounds` times round-robin; medians and ratios to the lecture loop.

    In a process of its own whose main thread runs no parallel kernel, and each variant on a
    thread that ends with it: an OpenMP pool left behind by anything else (this process's other
    benchmarks, an earlier variant) makes libgomp put its workers to sleep between kernels, which
    would slow every two-thread variant, the lecture's included (backend/runtime/openmp.py)."""
    out = subprocess.run(
        [sys.executable, "-m", "bench.throughput", json.dumps([batches, seconds, rounds])],
        cwd=ROOT,
        stdout=subprocess.PIPE,  # the table goes to stderr, as it is measured
        text=True,
        check=True,
    )
    result: dict[str, object] = json.loads(out.stdout)
    return result


def _levers(batches: list[int], seconds: float, rounds: int) -> dict[str, object]:
    ex = _on_fresh_thread(lambda: Dataset.from_file(DEFAULT_DATA).splits(3).train)
    default_threads = DEFAULT_THREADS
    variants: dict[str, Callable[[Examples, int, float], float]] = {
        f"lecture loop, default threads ({default_threads})": lambda e, b, s: _run_lecture(e, b, s, default_threads),
        "lecture loop, 1 thread": lambda e, b, s: _run_lecture(e, b, s, 1),
        "hand-written backward, allocating, torch.tanh, 1 thread": lambda e, b, s: _with_threads(
            1, _manual_allocating, e, b, s
        ),
        "+ preallocated buffers, fused updates (SGDStep), torch.tanh, 1 thread": _sgdstep(1, via_sigmoid=False),
        "+ tanh as 2*sigmoid(2x)-1 (SGDStep as the server runs it), 1 thread": _sgdstep(1),
        f"SGDStep, {default_threads} threads": _sgdstep(default_threads),
        "the Trainer thread around SGDStep (threads chosen by batch size)": _trainer_thread,
    }
    out: dict[str, object] = {}
    for batch in batches:
        secs = seconds if batch < 1000 else seconds * 2
        samples: dict[str, list[float]] = {k: [] for k in variants}
        for _ in range(rounds):
            for name, fn in variants.items():
                samples[name].append(_on_fresh_thread(fn, ex, batch, secs))
        base = samples[next(iter(variants))]
        print(f"  batch {batch}:", file=sys.stderr, flush=True)
        table = {}
        for name, xs in samples.items():
            fig = Figure(xs)
            ratio = Figure([x / b for x, b in zip(xs, base, strict=True)])
            print(f"    {name:<72} {fig.fmt(0):>22} steps/s  {ratio.fmt(2)}x", file=sys.stderr, flush=True)
            table[name] = {"steps_per_s": fig.as_dict(), "ratio_to_lecture": ratio.as_dict()}
        out[str(batch)] = table
    return out


def _on_fresh_thread(fn: Callable[..., T], *args: object) -> T:
    """`fn(*args)` on a thread that ends with it, and its OpenMP pool with it."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(fn, *args).result()


def _run_lecture(ex: Examples, batch: int, seconds: float, threads: int) -> float:
    return _with_threads(threads, lambda e, b, s: lecture_loop(e.X, e.Y, b, s), ex, batch, seconds)


def _with_threads(threads: int, fn: Callable[[Examples, int, float], float], ex: Examples, b: int, s: float) -> float:
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        return fn(ex, b, s)
    finally:
        torch.set_num_threads(before)


if __name__ == "__main__":  # python -m bench.throughput '[[32, 4096], 5, 3]': the levers, as JSON
    print(json.dumps(_levers(*json.loads(sys.argv[1]))))
