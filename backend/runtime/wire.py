"""What crosses between the server and a run's worker (a process, or a Ray actor). Picklable
dataclasses, no tensors.

server -> worker: a `Request` (a trainer command, or a read of the model), `Shutdown`.
worker -> server: the trainer's events (protocol.py), except that a checkpoint crosses as
`CheckpointData` (its bytes); `Reply` answers a Request; `Ready` says it trains.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from backend.core.lrfind import LrFindSpec
from backend.training.protocol import Event, SetThreads, Update
from backend.training.spec import HParams, RunSpec


@dataclass(frozen=True)
class WorkerInit:
    """Everything a worker needs to build its run: the settings, the words (the worker builds the
    examples), the checkpoint to continue from (None: a new run), and the hyperparameters to go
    on with (changed while the run had no worker, they may differ from the checkpoint's)."""

    run_id: str
    spec: RunSpec
    dataset_name: str
    words: list[str]
    checkpoint: bytes | None
    hparams: HParams
    threads: int
    running: bool
    nice: int = 0  # added to the worker's niceness: it trains on what the server leaves idle (priority.py)


# ---- reads of the model: answered between two steps, by the worker or from a checkpoint ----------
@dataclass(frozen=True)
class SampleRead:
    n: int
    temperature: float
    seed: int


@dataclass(frozen=True)
class NextRead:
    context: str


@dataclass(frozen=True)
class TestRead:
    pass


@dataclass(frozen=True)
class WeightsRead:
    pass


Read = SampleRead | NextRead | TestRead | WeightsRead


@dataclass(frozen=True)
class CancelSweep:
    """End the learning-rate sweep under way (taken at once, not between two steps)."""


@dataclass(frozen=True)
class Request:
    id: int
    body: Update | LrFindSpec | SetThreads | CancelSweep | Read


@dataclass(frozen=True)
class Shutdown:
    """Checkpoint, pause if running (saying why), send what is left and exit."""

    detail: str


# ---- worker -> server ------------------------------------------------------------------------------
@dataclass(frozen=True)
class Ready:
    where: str  # "local:<pid>" or "ray:<node id>"


@dataclass(frozen=True)
class CheckpointData:
    step: int
    data: bytes  # checkpoint.encode(...)


ErrorKind = Literal["conflict", "invalid", "failed"]  # HTTP 409, 422, 500


@dataclass(frozen=True)
class Reply:
    id: int
    value: Any = None
    error: str | None = None
    kind: ErrorKind | None = None


@dataclass(frozen=True)
class Exited:
    """The worker is gone (sent by the server-side handle, not by the worker). `clean`: it said
    goodbye after a Shutdown; otherwise it died (killed, out of memory, a lost node)."""

    clean: bool
    reason: str


WorkerMessage = Event | CheckpointData | Reply | Ready | Exited
