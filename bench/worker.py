"""Issue 8, target 1: a run in a worker process trains at >= 2.0x the lecture loop's steps/s at
batch 32, and >= 0.95x today's in-thread figure.

Three contenders, in turn (A B C A B C ...), one at a time:

- the lecture's loop (bench/lecture.py) in a fresh process, default threads (the target's
  baseline), and again with one torch thread (for reference: on a busy machine two OpenMP
  threads on two cores collapse, and the default-threads figure with them);
- "in-thread": the Trainer on a thread of this process, as the server ran it before issue 8
  (one Trainer for the run's life, resumed for each window and paused after it): its events
  cross to another thread, which encodes each one to JSON as the event loop did for the viewers;
  its checkpoints (the trainer takes them now) are captured and dropped;
- "worker": a run of the real server, trained by its worker process (store on, one websocket
  viewer reading everything), resumed for the window and paused after it.

All three: the default model, the built-in names, an evaluation every 1,000 steps (not for the
lecture's loop, which never evaluates), steps/s from each one's own step counter.

On a busy machine the share of CPU each one gets from the scheduler moves the steps/s more than
the architecture does, so the in-thread trainer and the worker are also measured per second of
CPU they use: this process's CPU time for the one (the trainer, and the thread that encodes its
events), the worker's plus the server's for the other (the fan-out and the store are its cost).
"""

from __future__ import annotations

import asyncio
import os
import queue
import threading
import time
from typing import Any

import psutil

from backend.config import DEFAULT_DATA
from backend.core.data import Dataset, Splits
from backend.runtime.runtime import LocalRuntime
from backend.streaming.messages import encode, event_message
from backend.training.protocol import CheckpointTaken, Event, Status, Update
from backend.training.spec import RunSpec
from backend.training.trainer import Trainer
from bench.live import open_viewers
from bench.server import Bench, bench_server, set_status, wait_training
from bench.stats import Figure
from bench.throughput import baseline

WARM_UP = 1.0  # seconds of training before each window


def cpu_s(*pids: int) -> float:
    """User + system CPU seconds of these processes so far."""
    return sum(sum(psutil.Process(pid).cpu_times()[:2]) for pid in pids)


class InThread:
    """A run's Trainer on a thread of this process, as the server ran it before issue 8: one
    Trainer for the run's life, resumed and paused (so its evaluations and noise-scale estimates
    fall as the worker's do), its events crossing to another thread that encodes each one as the
    event loop did for the viewers, its checkpoints (the trainer takes them now) dropped; torch
    threads as the server would give its one training run."""

    def __init__(self, splits: Splits, chars: tuple[str, ...], batch: int) -> None:
        self.events: queue.SimpleQueue[Event | None] = queue.SimpleQueue()
        self.consumer = threading.Thread(target=self._consume, name="event-loop-stand-in")
        self.consumer.start()
        spec = RunSpec(max_steps=100_000_000, batch_size=batch)
        self.trainer = Trainer(spec, splits, chars, self.events.put, max_threads=LocalRuntime().share(1))
        self.trainer.start(running=False)  # evaluates step 0 and waits, as a new run's worker does

    def _consume(self) -> None:  # the event loop's share of the work: every event encoded once
        while (event := self.events.get()) is not None:
            if not isinstance(event, CheckpointTaken):
                encode(event_message(event))

    def rate(self, seconds: float) -> tuple[float, float]:
        """(steps per second, steps per CPU second of this process) over a window."""
        t = self.trainer
        t.submit(Update(status=Status.RUNNING)).result(60)
        try:
            time.sleep(WARM_UP)  # warm-up
            s0, t0, c0 = t.step, time.perf_counter(), cpu_s(os.getpid())
            time.sleep(seconds)  # the measurement window
            steps, cpu = t.step - s0, cpu_s(os.getpid()) - c0
            return steps / (time.perf_counter() - t0), steps / cpu
        finally:
            t.submit(Update(status=Status.PAUSED)).result(60)

    def close(self) -> None:
        self.trainer.stop()
        self.events.put(None)
        self.consumer.join()


async def worker_rate(bench: Bench, run_id: str, seconds: float) -> tuple[float, float]:
    """(steps per second, steps per CPU second of the worker and the server) of the server's run."""
    before = await asyncio.to_thread(bench.step, run_id)
    await set_status(bench, [run_id], "running")
    try:
        await wait_training(bench, [run_id], [before])
        await asyncio.sleep(WARM_UP)  # warm-up
        where = (await bench.acall("GET", f"/api/runs/{run_id}"))["worker"]  # "local:<pid>"
        pids = (bench.server.pid, int(where.split(":")[1]))
        s0, t0, c0 = await asyncio.to_thread(bench.step, run_id), time.perf_counter(), cpu_s(*pids)
        await asyncio.sleep(seconds)  # the measurement window
        s1, t1, c1 = await asyncio.to_thread(bench.step, run_id), time.perf_counter(), cpu_s(*pids)
        return (s1 - s0) / (t1 - t0), (s1 - s0) / (c1 - c0)
    finally:
        await set_status(bench, [run_id], "paused")


async def _compare(batch: int, seconds: float, rounds: int) -> dict[str, Any]:
    ds = Dataset.from_file(DEFAULT_DATA)
    splits = ds.splits(3)
    lecture, lecture_1, thread, worker, thread_cpu, worker_cpu = [], [], [], [], [], []
    with bench_server() as bench:
        run = bench.new_run(batch_size=batch)
        (viewer,) = await open_viewers(bench.ws_url_of(run["id"]), 1)  # reads everything
        in_thread = await asyncio.to_thread(InThread, splits, ds.vocab.chars, batch)
        for _ in range(rounds):
            lecture.append(await asyncio.to_thread(baseline, batch, seconds))
            lecture_1.append(await asyncio.to_thread(baseline, batch, seconds, 1))
            rate, per_cpu = await asyncio.to_thread(in_thread.rate, seconds)
            thread.append(rate)
            thread_cpu.append(per_cpu)
            rate, per_cpu = await worker_rate(bench, run["id"], seconds)
            worker.append(rate)
            worker_cpu.append(per_cpu)
        await asyncio.to_thread(in_thread.close)
        gaps = len(viewer.gaps)
        await viewer.close()
    a, a1, b, c = Figure(lecture), Figure(lecture_1), Figure(thread), Figure(worker)
    vs_lecture = Figure([w / x for x, w in zip(lecture, worker, strict=True)])
    vs_lecture_1 = Figure([w / x for x, w in zip(lecture_1, worker, strict=True)])
    vs_thread = Figure([w / x for x, w in zip(thread, worker, strict=True)])
    b_cpu, c_cpu = Figure(thread_cpu), Figure(worker_cpu)
    vs_thread_cpu = Figure([w / x for x, w in zip(thread_cpu, worker_cpu, strict=True)])
    print(
        f"  batch {batch}: lecture {a.fmt(0)} (1 thread: {a1.fmt(0)}) | in-thread {b.fmt(0)} | worker {c.fmt(0)}"
        f" steps/s\n  worker/lecture {vs_lecture.fmt(2)}x (>= 2.0; 1 thread: {vs_lecture_1.fmt(2)}x)"
        f" | worker/in-thread {vs_thread.fmt(2)}x (>= 0.95) | viewer gaps {gaps}\n"
        f"  per CPU second: in-thread {b_cpu.fmt(0)} | worker + server {c_cpu.fmt(0)} steps"
        f" | ratio {vs_thread_cpu.fmt(2)}x"
    )
    return {
        "batch": batch,
        "seconds": seconds,
        "lecture_steps_per_s": a.as_dict(),
        "lecture_1_thread_steps_per_s": a1.as_dict(),
        "in_thread_steps_per_s": b.as_dict(),
        "worker_steps_per_s": c.as_dict(),
        "worker_vs_lecture": vs_lecture.as_dict(),
        "worker_vs_lecture_1_thread": vs_lecture_1.as_dict(),
        "worker_vs_in_thread": vs_thread.as_dict(),
        "in_thread_steps_per_cpu_s": b_cpu.as_dict(),
        "worker_steps_per_cpu_s": c_cpu.as_dict(),
        "worker_vs_in_thread_per_cpu_s": vs_thread_cpu.as_dict(),
        "viewer_gaps": gaps,
    }


def worker_vs_thread(batch: int = 32, seconds: float = 10.0, rounds: int = 3) -> dict[str, Any]:
    return asyncio.run(_compare(batch, seconds, rounds))
