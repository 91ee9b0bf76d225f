"""A home full of stored runs, written straight into the store.

Training 200 runs of 200,000 steps would take hours; what a restart reads is the store, so the
store is written the way the server writes it, with the data such a run leaves:

- the run's record (finished at 200,000 steps; half of them with the lecture's step schedule,
  lr x 0.1 at the half-way step, which stores every step's rate in the chunks that straddle it);
- its step-0 change, every step's loss and rate (a decaying noisy loss), handed to the store
  1,500 steps per commit (what a commit holds at ~3,000 steps/s: the store commits every 0.5 s),
  which merges them into its chunks as it does a training run's; past the steps the store keeps
  one by one (2,000,000), the run's bucketed history as the server saves it;
- an evaluation every 1,000 steps (with a noise-scale estimate every third one);
- its checkpoints: one per evaluation, thinned as the store thins them (the latest and 50
  earlier ones kept), each the real bytes of `checkpoint.encode` of a real trainer's state (a
  Trainer trained 2,000 steps here, its checkpoint at an evaluation), with the step, the
  hyperparameters and the evaluation of the step it stands for.
"""

from __future__ import annotations

import math
import secrets
import threading
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from backend.config import DEFAULT_DATA
from backend.core.data import Dataset
from backend.runs.datasets import DatasetRegistry
from backend.store import files
from backend.store.records import RunRecord
from backend.store.store import KEEP_CHECKPOINTS, Store
from backend.streaming.history import LossHistory
from backend.training.checkpoint import TrainerState, encode
from backend.training.protocol import CheckpointTaken, EvalResult, Event, Status
from backend.training.spec import HParams, RunSpec, StepSchedule
from backend.training.trainer import Trainer

CHUNK = 1_500  # steps per commit: 0.5 s at ~3,000 steps/s
STEPS_PER_S = 3_000.0  # for the runs' training seconds
LRS = (0.2, 0.1, 0.05, 0.02)


def trained_state(ds: Dataset) -> TrainerState:
    """A real trainer's state at an evaluation: a Trainer trains 2,000 steps (an evaluation every
    1,000) to the end, and we keep its last checkpoint."""
    taken: list[TrainerState] = []
    done = threading.Event()

    def emit(event: Event) -> None:
        if isinstance(event, CheckpointTaken):
            taken.append(event.state)
            if event.state.status is Status.FINISHED:
                done.set()

    trainer = Trainer(RunSpec(max_steps=2_000), ds.splits(3), ds.vocab.chars, emit)
    trainer.start(running=True)
    if not done.wait(120):
        raise TimeoutError("the template trainer did not finish")
    trainer.stop()
    return taken[-1]


class StoredRuns:
    """Writes runs into the store at `home` (the server must not run on it meanwhile)."""

    def __init__(self, home: Path) -> None:
        self.home = home
        self.dataset = Dataset.from_file(DEFAULT_DATA)  # what the server's built-in dataset is
        self.store = Store(home)
        self.store.open()
        datasets = DatasetRegistry(self.store, self.dataset)
        datasets.open()
        self.dataset_id = datasets.builtin_id
        self.state = trained_state(self.dataset)
        self.rng = np.random.default_rng(0)
        self.written = 0

    def close(self) -> None:
        self.store.close()

    def add(self, n: int, steps: int = 200_000, eval_every: int = 1_000) -> float:
        """Write n more runs; returns the seconds it took."""
        t0 = time.perf_counter()
        for _ in range(n):
            self._run(steps, eval_every)
        self.store.flush()
        return time.perf_counter() - t0

    def _run(self, steps: int, eval_every: int) -> None:
        i = self.written
        self.written += 1
        lecture = i % 2 == 1
        spec = RunSpec(
            dataset=self.dataset_id,
            max_steps=steps,
            lr=LRS[i % len(LRS)],
            eval_every=eval_every,
            schedule=StepSchedule(kind="step", at=steps // 2, factor=0.1) if lecture else None,
        )
        hp = spec.hparams()
        lrs = np.array([hp.schedule.lr(hp.lr, s, steps) for s in (0, steps // 2)], dtype=np.float32)
        s = np.arange(steps, dtype=np.float64)
        curve = 2.1 + 25.0 * np.exp(-s / 40.0) + 0.4 * np.exp(-s / 20_000.0)
        losses = np.clip(curve + self.rng.normal(0.0, 0.25, steps), 0.5, None).astype(np.float32)
        rates = np.where(s < steps // 2, lrs[0], lrs[1]).astype(np.float32)
        evals = {
            e: (2.1 + 25.0 * math.exp(-e / 40.0) + 0.4 * math.exp(-e / 20_000.0), 2.15 + 25.0 * math.exp(-e / 40.0))
            for e in range(0, steps + 1, eval_every)
        }
        last_train, last_dev = evals[steps]
        now = time.time()
        record = RunRecord(
            id=secrets.token_hex(6),
            name=spec.default_name(),
            spec=spec,
            status=Status.FINISHED,
            detail=f"reached max_steps ({steps:,})",
            step=steps,
            hparams=hp,
            created_at=now - 0.001 * (10**6 - i),  # in the order written: the last is the newest
            updated_at=now,
            train_seconds=steps / STEPS_PER_S,
            last_eval={"step": steps, "train_loss": last_train, "dev_loss": last_dev, "b_noise": 600.0},
        )
        st = self.store
        st.put_run(record)
        st.add_change(record.id, {"step": 0, **hp.model_dump(mode="json")}, replace_last=False)
        # past the steps the store keeps one by one, the server saves the run's buckets as its channel has them
        history = LossHistory() if steps > st.max_stored_steps else None
        for first in range(0, steps, CHUNK):
            end = min(steps, first + CHUNK)
            if history is not None:
                history.extend(first, losses[first:end], rates[first:end], end / STEPS_PER_S)
            st.add_steps(
                record.id,
                first,
                losses[first:end].tolist(),
                rates[first:end].tolist(),
                hp.batch_size,
                end / STEPS_PER_S,
            )
            st.flush()  # a commit, as the server's store commits every 0.5 s
        if history is not None:
            st.put_history_blob(record.id, history.to_bytes())
        for e, (train, dev) in evals.items():
            st.add_eval(record.id, e, train, dev)
            if e % (3 * eval_every) == 0:
                st.set_noise(record.id, e, 300.0 + e / 1000.0)
        dropped = set(files.thin(list(evals), KEEP_CHECKPOINTS))
        for e, (train, dev) in evals.items():
            if e not in dropped:
                st.put_checkpoint(record.id, e, self._checkpoint(spec, hp, e, steps), train, dev)
        st.flush()

    def _checkpoint(self, spec: RunSpec, hp: HParams, step: int, steps: int) -> bytes:
        """The template state as it would stand at `step`: at an evaluation of that step."""
        s = self.state
        assert s.last_eval is not None and s.guard.restore is not None
        at = EvalResult(step, s.last_eval.train_loss, s.last_eval.dev_loss, s.last_eval.ms)
        weights, opt, _ = s.guard.restore
        state = replace(
            s,
            step=step,
            status=Status.FINISHED if step == steps else Status.RUNNING,
            hparams=hp,
            last_eval=at,
            last_eval_step=step,
            guard=replace(s.guard, restore=(weights, opt, at)),
            train_seconds=step / STEPS_PER_S,
        )
        return encode(spec, state, self.dataset.vocab.chars)
