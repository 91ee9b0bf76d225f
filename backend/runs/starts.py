"""Bursts of new runs, kept to bounded work.

A worker costs the machine most while it starts: the fork, then building the run (its examples,
its model) before it says Ready. Fifty runs created at once used to start fifty workers at once,
each only to evaluate step 0 and wait: ~95 processes, a load of 70, and a training run at a tenth
of its speed for half a minute. So:

- `StartPool`: at most `limit` workers (the cores) between their launch and their Ready (or their
  end) at once; the others wait their turn.
- `first_evaluation`: a new run that does not train yet gets its step-0 evaluation here, in the
  server, from the very code its worker would run (a Trainer, paused at step 0: the same
  events and the same checkpoint), one run at a time, and no worker at all.
"""

from __future__ import annotations

import asyncio
import os
import threading
from pathlib import Path

from backend.core.data import Dataset
from backend.runtime.priority import MAX_NICENESS
from backend.runtime.wire import CheckpointData, Exited, Ready, WorkerMessage
from backend.training.checkpoint import encode
from backend.training.protocol import CheckpointTaken, Event
from backend.training.spec import HParams, RunSpec
from backend.training.trainer import Trainer

# a worker that says neither Ready nor goodbye within this long gives its place up anyway (a Ray
# actor waiting for a node, say): the bound protects the machine, it must not wedge the server
START_SECONDS = 60.0
# a step-0 evaluation takes ~0.1 s for the lecture's model on names.txt, seconds for the biggest
# models on the biggest word lists; one that takes longer than this is given up
EVALUATION_SECONDS = 300.0


class StartPool:
    """Workers starting at once, at most `limit`: `await slot()` before launching one, and hand
    each of its messages to the slot (`Slot.seen`); its Ready or Exited frees the place."""

    def __init__(self, limit: int) -> None:
        self.limit = max(1, limit)
        self._free = asyncio.Semaphore(self.limit)
        self.starting = 0  # workers launched and not yet Ready (or gone)

    async def slot(self) -> Slot:
        await self._free.acquire()
        self.starting += 1
        return Slot(self)

    def _release(self) -> None:
        self.starting -= 1
        self._free.release()


class Slot:
    """One place in a StartPool, held until the worker it was taken for is Ready or gone."""

    def __init__(self, pool: StartPool) -> None:
        self._pool: StartPool | None = pool
        self._timer = asyncio.get_running_loop().call_later(START_SECONDS, self.release)

    def seen(self, msg: WorkerMessage) -> None:
        if isinstance(msg, Ready | Exited):
            self.release()

    def release(self) -> None:
        """Give the place back (once; later calls do nothing)."""
        if self._pool is not None:
            self._timer.cancel()
            self._pool._release()
            self._pool = None


def first_evaluation(spec: RunSpec, dataset: Dataset, hparams: HParams, nice: int = 0) -> list[Event | CheckpointData]:
    """What a new run's worker says when it starts paused and is stopped: its starting settings,
    its step-0 evaluation (with the embedding map and the noise estimate), and its step-0
    checkpoint, as it would cross to the server. Blocking: on a thread of its own, that ends with
    it (openmp.py), and whose niceness it raises by `nice`, as a worker's (priority.py): the
    server's answers come first, and the runs that train share the cores with it fairly."""
    if nice > 0 and hasattr(os, "setpriority") and Path("/proc/self/task").is_dir():  # Linux: per thread
        tid = threading.get_native_id()
        os.setpriority(os.PRIO_PROCESS, tid, min(MAX_NICENESS, os.getpriority(os.PRIO_PROCESS, tid) + nice))
    events: list[Event] = []
    lock, evaluated = threading.Lock(), threading.Event()

    def emit(event: Event) -> None:
        with lock:
            events.append(event)
        if isinstance(event, CheckpointTaken):  # its first comes once the evaluation is over
            evaluated.set()

    trainer = Trainer(
        spec,
        dataset.splits(spec.block_size),
        dataset.vocab.chars,
        emit,
        max_threads=1,  # a worker that does not train has one thread (scheduler.threads_for)
        hparams=hparams,
    )
    trainer.start(running=False)  # its thread inherits this one's niceness
    # a Stop is taken between two pieces of an evaluation, and cuts it short: it waits until the
    # evaluation is over (at most EVALUATION_SECONDS; past that the run gets none here, and its
    # worker evaluates step 0 when it starts)
    evaluated.wait(EVALUATION_SECONDS)
    trainer.stop("paused")
    with lock:
        checkpoints = [e for e in events if isinstance(e, CheckpointTaken)]
        said: list[Event | CheckpointData] = [e for e in events if not isinstance(e, CheckpointTaken)]
    if checkpoints:
        # the trainer checkpoints step 0 more than once (after the evaluation, while it waits,
        # as it stops): the same state; the last one is stored, as it would be from a worker
        last = checkpoints[-1]
        said.append(CheckpointData(last.step, encode(spec, last.state, dataset.vocab.chars)))
    return said
