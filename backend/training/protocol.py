"""What a trainer takes (commands, applied between two steps) and what it gives (events, in order).

Plain, picklable dataclasses and pydantic models (the settings, spec.py) with no tensors in them:
they cross from a worker process (or a Ray actor) to the server as they are. A checkpoint
crosses as bytes (checkpoint.py).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from pydantic import ConfigDict

from backend.core.lrfind import LrFindResult, LrFindSpec
from backend.core.model import MLP
from backend.training.spec import HParams, HParamsPatch


class Status(StrEnum):
    QUEUED = "queued"  # waits for a free slot (set by the server, never by a trainer)
    RUNNING = "running"
    PAUSED = "paused"
    FINISHED = "finished"
    DIVERGED = "diverged"
    INTERRUPTED = "interrupted"  # its worker or the server died; resumable from its last checkpoint


class Cause(StrEnum):
    """Why a run came to its status, for programs (the page) to react to; the detail says it to
    people and is never parsed. None: nothing to explain (running, queued)."""

    USER = "user"  # a user paused it
    MAX_STEPS = "max_steps"  # it finished: it reached max_steps
    DIVERGED = "diverged"  # its loss diverged (the status's `divergence` says where)
    LR_FIND = "lr_find"  # it waits while a learning-rate sweep runs on a copy of it
    STOPPED = "stopped"  # its worker was asked to stop while it trained
    SERVER_STOPPED = "server_stopped"  # the server stopped (or died) while it trained or waited to
    WORKER_DIED = "worker_died"  # its worker died: it stands at its last checkpoint
    ERROR = "error"  # its trainer failed (a bug, named in the detail)


# ---- events ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class EvalResult:
    step: int
    train_loss: float
    dev_loss: float
    ms: float  # the pass over both splits (with the noise estimate's gradient, when one comes) and the map


@dataclass(frozen=True)
class Steps:
    """Consecutive steps from `first`, all at one batch size."""

    first: int
    losses: list[float]
    lrs: list[float]  # the rate each step used
    time: float  # seconds of training (pauses excluded) at the end of the last step
    steps_per_s: float
    examples_per_s: float
    batch_size: int = 32


@dataclass(frozen=True)
class HParamsChanged:
    """The hparams in effect from `step` on: sent at step 0, then after every `set` (even one that
    changed nothing, as its confirmation)."""

    step: int  # the first step that uses them
    hparams: HParams


@dataclass(frozen=True)
class Divergence:
    """Where a run's loss diverged, and whose weights came back."""

    step: int  # the step whose loss gave it away
    lr: float  # the base rate it trained at
    loss: float  # that step's loss (inf or nan when that gave it away)
    smoothed: float  # the smoothed loss then, and the lowest before it (inf: none yet)
    best_smoothed: float
    restored_step: int | None  # the evaluation whose weights came back (None: there was none)
    restored_dev_loss: float | None


@dataclass(frozen=True)
class StatusChanged:
    status: Status
    step: int
    detail: str  # for people: shown, never parsed
    cause: Cause | None = None
    divergence: Divergence | None = None  # with cause DIVERGED
    # the checkpoint of the step it stopped at is kept in memory by the server's store, not yet
    # written (its disk refuses it): set by the server, never by a trainer
    checkpoint_held: bool = False


@dataclass(frozen=True)
class NoiseEstimate:
    step: int
    b_noise: float


@dataclass(frozen=True)
class EmbeddingsChanged:
    step: int
    chars: tuple[str, ...]
    x: list[float]
    y: list[float]
    method: str  # "raw" or "pca"


@dataclass(frozen=True)
class LrFindStarted:
    step: int
    spec: LrFindSpec
    batch_size: int


@dataclass(frozen=True)
class LrFindProgress:
    lr: list[float]
    loss: list[float]


@dataclass(frozen=True)
class LrFindDone:
    result: LrFindResult


@dataclass(frozen=True)
class Diagnostics:
    """The inside of the network at the step `step` took (core/diagnostics.py's point: JSON-ready,
    a few KB)."""

    step: int
    point: dict[str, Any]


@dataclass(frozen=True)
class GradDirection:
    """cos(minibatch gradient, full-split gradient) at the evaluation of `step`, per batch size
    (core/gradcos.py), beside the latest noise scale (NaN: none yet) and the run's batch size."""

    step: int
    batch_sizes: list[int]
    mean: list[float | None]
    std: list[float | None]
    min: list[float | None]
    max: list[float | None]
    b_noise: float
    current: int


@dataclass(frozen=True)
class CheckpointTaken:
    """Everything the run needs to continue exactly from `step` (a TrainerState; in a worker it is
    turned into bytes before it crosses to the server)."""

    step: int
    state: Any  # backend.training.checkpoint.TrainerState


Event = (
    Steps
    | EvalResult
    | HParamsChanged
    | StatusChanged
    | NoiseEstimate
    | EmbeddingsChanged
    | LrFindStarted
    | LrFindProgress
    | LrFindDone
    | CheckpointTaken
    | Diagnostics
    | GradDirection
)


# ---- commands ----------------------------------------------------------------------------------
class Update(HParamsPatch):
    """A change requested by a user: to its hparams (None leaves a field as it is), its status or both."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, frozen=True)

    status: Status | None = None  # RUNNING or PAUSED


@dataclass(frozen=True)
class Query:
    """Read the model between two steps: `read(model, step)` runs on the trainer's thread, so it
    sees whole steps only; its result answers the command. It must not change the model."""

    read: Callable[[MLP, int], Any]


@dataclass(frozen=True)
class SetThreads:
    """How many torch threads this trainer may use for big batches (the server shares the cores)."""

    threads: int


@dataclass(frozen=True)
class Stop:
    """Checkpoint, say why (the status detail), and end the trainer's thread."""

    detail: str


Command = Update | LrFindSpec | Query | SetThreads | Stop


class ConflictError(Exception):
    """The request is valid but the run's state does not allow it (HTTP 409)."""


def check_update(status: Status, step: int, max_steps: int, update: Update) -> None:
    """Raise ConflictError if `update` cannot apply to a run in this state. Shared by every entry point."""
    if update.status is Status.RUNNING and status is not Status.RUNNING:
        limit = update.max_steps if update.max_steps is not None else max_steps
        if step >= limit:
            raise ConflictError(f"the run reached max_steps ({limit:,}); raise max_steps to continue")
