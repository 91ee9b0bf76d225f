"""Runs: a trainer and its channel, and the registry that keeps them (one trains at a time).

The registry lives on the event loop (built in the app's lifespan). This module holds the one
place where the trainer thread reaches the event loop: `_emitter`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from starlette.concurrency import run_in_threadpool

from backend.core.data import Dataset
from backend.core.evaluate import CountedExamples
from backend.core.model import MLP, ModelShape
from backend.core.optim import OptimizerSpec
from backend.server.channel import Channel, Subscriber
from backend.server.datasets import DatasetRegistry
from backend.server.messages import finite, hparams_public
from backend.server.openmp import run_in_own_thread
from backend.server.schemas import ConstantSchedule, RunCreate, RunPublic, schedule_of
from backend.training.trainer import Event, HParams, Status, Trainer

log = logging.getLogger(__name__)


def _emitter(loop: asyncio.AbstractEventLoop, channel: Channel) -> Callable[[Event], None]:
    """THE thread -> event loop crossing: the trainer's events are handed to the loop, in order."""

    def emit(event: Event) -> None:
        loop.call_soon_threadsafe(channel.publish, event)

    return emit


@dataclass
class Run:
    id: str
    spec: RunCreate
    dataset: Dataset
    trainer: Trainer
    channel: Channel
    _test_set: CountedExamples | None = None

    def public(self) -> RunPublic:
        t, spec, splits = self.trainer, self.spec, self.dataset.splits(self.spec.block_size)
        e = t.last_eval
        return RunPublic.model_validate(
            {
                "id": self.id,
                "status": t.status,
                "detail": t.detail,
                "step": t.step,
                "config": {
                    "block_size": spec.block_size,
                    "n_embd": spec.n_embd,
                    "n_hidden": spec.n_hidden,
                    "seed": spec.seed,
                    "max_steps": t.max_steps,
                    "init": spec.init,
                    "optimizer": spec.optimizer,
                    "momentum": spec.momentum if spec.optimizer == "momentum" else None,
                    "dataset": spec.dataset,
                },
                "hparams": hparams_public(t.hparams),
                "dataset": {
                    "name": self.dataset.name,
                    "words": len(self.dataset.words),
                    "vocab_size": self.dataset.vocab.size,
                    "train_examples": len(splits.train),
                    "dev_examples": len(splits.dev),
                    "test_examples": len(splits.test),
                },
                "params": t.model.shape.n_params,
                "last_eval": None
                if e is None
                else {
                    "step": e.step,
                    "train_loss": finite(e.train_loss, 6),
                    "dev_loss": finite(e.dev_loss, 6),
                    "b_noise": finite(t.noise[1], 1) if t.noise is not None and t.noise[0] == e.step else None,
                },
                "train_seconds": round(t.train_seconds, 3),
            }
        )

    def public_dict(self) -> dict[str, Any]:
        return self.public().model_dump(mode="json")

    def test_set(self) -> CountedExamples:
        """The test split, counted (built on first use: most runs never look at it). Blocking."""
        if self._test_set is None:
            test = self.dataset.splits(self.spec.block_size).test
            self._test_set = CountedExamples.from_splits([test], self.dataset.vocab.size)
        return self._test_set


class RunRegistry:
    def __init__(
        self, datasets: DatasetRegistry, loop: asyncio.AbstractEventLoop, keep_runs: int, max_threads: int
    ) -> None:
        self.datasets = datasets
        self._loop = loop
        self._keep = keep_runs
        self._max_threads = max_threads
        self._runs: OrderedDict[str, Run] = OrderedDict()  # oldest first
        self._followers: set[Subscriber] = set()  # viewers of /ws/runs/current
        self._create_lock = asyncio.Lock()
        self._default: asyncio.Task[Run] | None = None

    def build(self, spec: RunCreate, dataset: Dataset) -> Run:
        """Make a run, not yet started. Blocking (builds examples): call it off the loop."""
        shape = ModelShape(dataset.vocab.size, spec.block_size, spec.n_embd, spec.n_hidden)
        init = MLP.scaled_init if spec.init == "scaled" else MLP.lecture_init
        channel = Channel()
        trainer = Trainer(
            init(shape, spec.seed),
            dataset.splits(spec.block_size),
            dataset.vocab.chars,
            HParams(
                spec.lr,
                spec.batch_size,
                spec.eval_every,
                schedule_of(spec.schedule or ConstantSchedule(kind="constant")),
            ),
            spec.max_steps,
            spec.seed,
            _emitter(self._loop, channel),
            self._max_threads,
            OptimizerSpec(spec.optimizer, spec.momentum),
        )
        run = Run(secrets.token_hex(6), spec, dataset, trainer, channel)
        channel.describe = run.public_dict
        return run

    async def create(self, spec: RunCreate, check: Callable[[Run], None] = lambda run: None) -> Run:
        """Build a run, stop the others, make it current and start it. `check` may reject the
        built run (it raises) before anything else changes."""
        entry = self.datasets.get(spec.dataset)
        if entry is None:
            raise KeyError(spec.dataset)
        async with self._create_lock:
            run = await run_in_own_thread(self.build, spec, entry.dataset)
            check(run)
            for other in self.active():
                await run_in_threadpool(other.trainer.stop, "stopped: a new run was created")
            self.install(run)
            return run

    def install(self, run: Run) -> Run:
        """Make `run` the current one and start it; viewers of the current run follow it."""
        self._runs[run.id] = run
        while len(self._runs) > self._keep:
            _, old = self._runs.popitem(last=False)
            for sub in list(old.channel.subscribers):
                sub.close()
        run.trainer.start(running=run.spec.start)
        for sub in self._followers:
            sub.switch(run.channel)
        log.info("run %s created (%s)", run.id, run.spec.model_dump())
        return run

    def start_default(self, spec: RunCreate) -> None:
        """Create the first run in the background (building examples takes a few hundred ms)."""
        self._default = asyncio.create_task(self.create(spec))

    async def find(self, run_id: str) -> Run | None:
        """A run by id; "current" is the newest, waited for while the first one is being built."""
        if run_id != "current":
            return self.get(run_id)
        if not self._runs and self._default is not None:
            with contextlib.suppress(Exception):  # a failure is logged by the task; the answer is "none"
                await asyncio.shield(self._default)
        return self.current()

    def current(self) -> Run | None:
        return next(reversed(self._runs.values()), None)

    def get(self, run_id: str) -> Run | None:
        return self._runs.get(run_id)

    def all(self) -> list[Run]:
        return list(reversed(self._runs.values()))

    def active(self) -> list[Run]:
        return [r for r in self._runs.values() if r.trainer.status is not Status.STOPPED]

    def close(self) -> None:
        """Stop every trainer (at shutdown)."""
        if self._default is not None:
            self._default.cancel()
        for run in self.active():
            run.trainer.stop("stopped: the server is shutting down")

    def subscribe(self, run: Run, follow_current: bool) -> Subscriber:
        sub = Subscriber(run.channel, follow_current)
        if follow_current:
            self._followers.add(sub)
        return sub

    def unsubscribe(self, sub: Subscriber) -> None:
        self._followers.discard(sub)
        sub.close()
