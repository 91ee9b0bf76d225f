"""What the store keeps, as Python objects: a run's record, a dataset's, a chunk of steps, a
checkpoint's. The registry works on these; RunPublic is built from a RunRecord."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from backend.training.protocol import Cause, Divergence, Status
from backend.training.spec import HParams, RunSpec


@dataclass
class RunRecord:
    id: str
    name: str
    spec: RunSpec  # spec.dataset is the dataset's stored id
    status: Status
    detail: str
    step: int
    hparams: HParams  # in effect now (max_steps included)
    created_at: float
    updated_at: float
    train_seconds: float = 0.0
    last_eval: dict[str, Any] | None = None  # {step, train_loss, dev_loss, b_noise}
    test: dict[str, Any] | None = None  # the last test-split evaluation
    parent_id: str | None = None
    parent_step: int | None = None
    sweep_id: str | None = None
    best_dev: float | None = None  # the lowest dev loss of any evaluation (read, not written)
    cause: Cause | None = None  # why it has its status (the detail says it to people)
    divergence: Divergence | None = None  # where it diverged, with cause DIVERGED
    overfit: dict[str, Any] | None = None  # {best_step, best_dev, since_step} (backend/runs/overfit.py; not written)

    @property
    def max_steps(self) -> int:
        return self.hparams.max_steps


@dataclass(frozen=True)
class DatasetRecord:
    id: str
    name: str
    words: int
    vocab_size: int
    train_examples: int
    dev_examples: int
    test_examples: int
    bytes: int
    created_at: float


@dataclass(frozen=True)
class SweepRecord:
    id: str
    name: str
    spec: dict[str, Any]  # the request that made it
    swept: list[str]  # the parameters it varies
    stopped: bool
    created_at: float


@dataclass(frozen=True)
class StepChunk:
    """Consecutive steps first .. first + n - 1, all at one batch size."""

    first: int
    losses: np.ndarray  # (n,) float32
    lrs: np.ndarray  # (n,) float32
    batch_size: int
    time_end: float  # seconds of training at the end of the last step

    @property
    def n(self) -> int:
        return len(self.losses)


@dataclass(frozen=True)
class CheckpointRecord:
    run_id: str
    step: int
    file: str
    bytes: int
    sha256: str
    train_loss: float | None
    dev_loss: float | None
    created_at: float


Eval = tuple[int, float | None, float | None, float | None]  # step, train loss, dev loss, b_noise


@dataclass
class History:
    """A run's stored history: what a snapshot (or the history endpoint) starts from."""

    evals: list[Eval] = field(default_factory=list)
    changes: list[dict[str, Any]] = field(default_factory=list)
    lrfind: dict[str, Any] | None = None
