"""Issue 8, target 1: a run in a worker process trains at >= 2.0x the lecture loop's steps/s at
batch 32, and >= 0.95x today's in-thread figure.

Three contenders, in turn (A B C A B C ...), one at a time:

- the lecture's loop (bench/lecture.py) in a fresh process, default threads (the target's
  baseline), and again with one torch thread (for reference: on a busy machine two OpenMP
  threads on two cores collapse, and the default-threads figure with them);
- "in-thread": the Trainer on a thread of this process, as the server ran it before issue 8:
  its events cross to another thread, which encodes each one to JSON as the event loop did
  for the viewers; its checkpoints (the trainer takes them now) are captured and dropped;
- "worker": a run of the real server, trained by its worker process (store on, one websocket
  viewer reading everything), resumed for the window and paused after it.

All three: the default model, the built-in names, an evaluation every 1,000 steps (not for the
lecture's loop, which never evaluates), steps/s from each one's own step counter.
"""

from __future__ import annotations

import asyncio
import queue
import threading
import time
from typing import Any

from backend.core.data import Dataset, Splits
from backend.runtime.runtime import LocalRuntime
from backend.server.config import DEFAULT_DATA
from backend.server.messages import encode, event_message
from backend.training.protocol import CheckpointTaken, Event
from backend.training.spec import RunSpec
from backend.training.trainer import Trainer
from bench.live import open_viewers
from bench.server import bench_server, train_rates
from bench.stats import Figure
from bench.throughput import baseline

WARM_UP = 1.0  # seconds of training before each window


def in_thread_rate(splits: Splits, chars: tuple[str, ...], batch: int, seconds: float) -> float:
    """Steps per second of a Trainer on a thread of this process, as the server ran it before
    issue 8 (torch threads as the server would give its one training run)."""
    events: queue.SimpleQueue[Event | None] = queue.SimpleQueue()

    def consume() -> None:  # the event loop's share of the work: every event encoded once
        while (event := events.get()) is not None:
            if not isinstance(event, CheckpointTaken):
                encode(event_message(event))

    consumer = threading.Thread(target=consume, name="event-loop-stand-in")
    consumer.start()
    spec = RunSpec(max_steps=100_000_000, batch_size=batch)
    trainer = Trainer(spec, splits, chars, events.put, max_threads=LocalRuntime().share(1))
    trainer.start(running=True)
    try:
        time.sleep(WARM_UP)  # warm-up
        s0, t0 = trainer.step, time.perf_counter()
        time.sleep(seconds)  # the measurement window
        return (trainer.step - s0) / (time.perf_counter() - t0)
    finally:
        trainer.stop()
        events.put(None)
        consumer.join()


async def _compare(batch: int, seconds: float, rounds: int) -> dict[str, Any]:
    ds = Dataset.from_file(DEFAULT_DATA)
    splits = ds.splits(3)
    lecture, lecture_1, thread, worker = [], [], [], []
    with bench_server() as bench:
        run = bench.new_run(batch_size=batch)
        (viewer,) = await open_viewers(bench.ws_url_of(run["id"]), 1)  # reads everything
        for _ in range(rounds):
            lecture.append(await asyncio.to_thread(baseline, batch, seconds))
            lecture_1.append(await asyncio.to_thread(baseline, batch, seconds, 1))
            thread.append(await asyncio.to_thread(in_thread_rate, splits, ds.vocab.chars, batch, seconds))
            (rate,) = await train_rates(bench, [run["id"]], seconds, WARM_UP)
            worker.append(rate)
        gaps = len(viewer.gaps)
        await viewer.close()
    a, a1, b, c = Figure(lecture), Figure(lecture_1), Figure(thread), Figure(worker)
    vs_lecture = Figure([w / x for x, w in zip(lecture, worker, strict=True)])
    vs_lecture_1 = Figure([w / x for x, w in zip(lecture_1, worker, strict=True)])
    vs_thread = Figure([w / x for x, w in zip(thread, worker, strict=True)])
    print(
        f"  batch {batch}: lecture {a.fmt(0)} (1 thread: {a1.fmt(0)}) | in-thread {b.fmt(0)} | worker {c.fmt(0)}"
        f" steps/s\n  worker/lecture {vs_lecture.fmt(2)}x (>= 2.0; 1 thread: {vs_lecture_1.fmt(2)}x)"
        f" | worker/in-thread {vs_thread.fmt(2)}x (>= 0.95) | viewer gaps {gaps}"
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
        "viewer_gaps": gaps,
    }


def worker_vs_thread(batch: int = 32, seconds: float = 10.0, rounds: int = 3) -> dict[str, Any]:
    return asyncio.run(_compare(batch, seconds, rounds))
