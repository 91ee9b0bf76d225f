"""The training loop, in a thread of its own. It knows nothing of HTTP, asyncio or processes.

Other threads talk to it through `submit` (a command, applied between two steps, answered with
a Future) and read its public attributes; it talks back only through the `emit` callable it is
given, with the events of protocol.py. Every step is a real optimizer step on a fresh random
minibatch drawn with replacement from the training split, at the learning rate (from the base
rate and the schedule) and batch size current at that step; changes arrive between steps and are
reported with the first step that used them.

Long work does not hold changes up: an evaluation goes chunk by chunk, the noise-scale estimate
a few batches at a time, a learning-rate sweep step by step, and the commands that came meanwhile
are applied between two pieces (`_between`). None of them moves the run's weights or touches its
minibatch generator, so a change applied mid-evaluation takes effect at the very step it would
have after it, and a Stop that cuts an evaluation short leaves a checkpoint from which the run
continues exactly (the evaluation is done again there).

It checkpoints itself (a CheckpointTaken event with its whole state, see checkpoint.py) at every
evaluation, pause, finish, divergence and stop, and at least every CHECKPOINT_SECONDS of
training (stepping.py); a Trainer built from such a state continues exactly as the original
would have.

The loop and its state are here; the rest is beside it, each piece reading and writing this
trainer's state on its thread:

    inbox.py       commands in (a queue; one sweep at a time; refused once stopped)
    outbox.py      events out, in order (step losses in batches, ~10 flushes a second)
    commands.py    what each command does (a change of hyperparameters or status, a query, ...)
    evaluating.py  an evaluation, with its noise-scale estimate and gradient-direction pass
    divergence.py  the divergence guard's thresholds, and what a diverged run does
    lrsweep.py     the learning-rate sweep, on a copy of the weights
    minibatches.py the step's random rows; checkpoint.py the state, taken and put back
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any

import torch

from backend.core.data import Splits
from backend.core.embeddings import EmbeddingMap
from backend.core.evaluate import CountedExamples, chunk_rows
from backend.core.lrfind import LrFindResult, LrFindSpec
from backend.core.model import MLP
from backend.core.optim import Optimizer
from backend.training import commands, evaluating, stepping
from backend.training.checkpoint import GuardState, TrainerState, capture, restore
from backend.training.diagnosing import Diagnoser
from backend.training.inbox import Inbox, StopRequestedError
from backend.training.minibatches import Minibatches
from backend.training.noise_budget import NoiseBudget
from backend.training.outbox import Outbox
from backend.training.protocol import (
    Cause,
    CheckpointTaken,
    ConflictError,
    Divergence,
    EvalResult,
    Event,
    HParamsChanged,
    Query,
    SetThreads,
    Status,
    StatusChanged,
    Stop,
    Update,
    check_update,
)
from backend.training.spec import HParams, RunSpec

log = logging.getLogger(__name__)

BIG_BATCH = 256  # from this batch size on, matrix work outweighs op overhead: use more threads


class Trainer:
    cause: Cause | None  # why it has its status (the detail says it to people)
    _after_sweep: tuple[Status, str, Cause | None] | None  # the status the run takes when the sweep under way ends
    _stop_request: tuple[str, Future[Any]] | None  # a Stop, taken between two pieces of long work

    def __init__(
        self,
        spec: RunSpec,
        splits: Splits,
        chars: tuple[str, ...],
        emit: Callable[[Event], None],
        max_threads: int = 1,
        state: TrainerState | None = None,
        model: MLP | None = None,
        hparams: HParams | None = None,
    ) -> None:
        """A new run from `spec` (its model from `model` if given, else from the spec's init), or
        one that continues from `state` (a checkpoint of a run with this spec); `hparams`, if
        given, replace the spec's or the checkpoint's."""
        self.spec = spec
        self.chars = chars
        self._train = splits.train
        self._max_threads = max_threads
        self._lock = threading.Lock()  # guards the weights against a torn read mid-step
        self._inbox = Inbox()
        self._out = Outbox(emit)  # (given nothing of the trainer's: no cycle keeps a trainer alive)
        self._sweeping, self._after_sweep = False, None
        # CPU seconds spent on commands between pieces of long work are not the work's cost
        self._stop_request, self._away = None, 0.0
        self._interrupt = threading.Event()  # ends a learning-rate sweep early (the run is stopping)
        self._cancel = threading.Event()  # ends it early too (a user asked)
        self._thread = threading.Thread(target=self._run, name="trainer", daemon=True)
        self._gen = torch.Generator().manual_seed(spec.seed)
        self._noise_gen = torch.Generator().manual_seed(spec.seed + 1)

        # Public state: written by the trainer thread only, read by anyone.
        self.status = Status.PAUSED
        self.detail, self.cause = "", None
        self.step = 0  # steps done so far = index of the next step
        self.hparams = spec.hparams()
        self.last_eval: EvalResult | None = None
        self.embeddings: EmbeddingMap | None = None
        self.last_lrfind: LrFindResult | None = None
        self.noise: tuple[int, float] | None = None  # (step, B_noise): the latest noise-scale estimate

        self._checkpointed_at = time.perf_counter()
        self._trained_s = 0.0  # seconds spent running, before the current stretch
        self._running_since: float | None = None
        self._last_eval_step = -1
        self._guard = GuardState()
        self._sweeps = 0
        self._resumed = state is not None

        self.model = model or spec.init_model(len(chars))
        # train and dev, in chunks sized to the model; the noise estimate's full-split gradient
        # comes from the same pass (split 0 is train)
        self._eval_set = CountedExamples.from_splits(
            [splits.train, splits.dev], len(chars), chunk_rows(self.model.shape)
        )
        self._noise_budget = NoiseBudget()
        self._diag = Diagnoser(spec.seed, splits.train, self._eval_set)  # issue 23: inside the network
        self._opt = Optimizer(self.model, spec.optimizer_spec())
        self._batches = Minibatches(len(splits.train), self.hparams.batch_size, self._gen)
        if state is not None:
            restore(self, state)
        if hparams is not None and hparams.batch_size != self.hparams.batch_size:
            self._batches = Minibatches(len(splits.train), hparams.batch_size, self._gen)
        self.hparams = hparams or self.hparams
        self._set_threads(self.hparams.batch_size)

    @property
    def max_steps(self) -> int:
        return self.hparams.max_steps

    # ---- called from other threads -------------------------------------------------------------------
    def start(self, running: bool) -> None:
        if running:
            check_update(self.status, self.step, self.max_steps, Update(status=Status.RUNNING))
            self.status = Status.RUNNING
        self._thread.start()

    def submit(self, command: Update | LrFindSpec | Query | SetThreads) -> Future[Any]:
        """Queue a command for the next step boundary; the Future completes once it is applied
        (for a learning-rate sweep: once the sweep is over; for a query: with its answer)."""
        return self._inbox.put(command)

    def stop(self, detail: str = "paused", timeout: float = 10.0) -> None:
        """Checkpoint and end the thread; a running run says it paused, with `detail`."""
        self._interrupt.set()
        with contextlib.suppress(ConflictError):
            self._inbox.put(Stop(detail)).result(timeout)
        self._thread.join(timeout)

    def cancel_sweep(self) -> None:
        """End the learning-rate sweep under way, if any (from any thread, at once)."""
        self._cancel.set()

    def weights(self) -> MLP:
        """A consistent copy of the current weights (never a half-updated step)."""
        with self._lock:
            return self.model.clone()

    @property
    def max_threads(self) -> int:
        """Torch threads it uses for big batches and evaluations (SetThreads changes it)."""
        return self._max_threads

    @property
    def train_examples(self) -> int:
        return len(self._train)

    @property
    def train_seconds(self) -> float:
        since = self._running_since
        return self._trained_s + (time.perf_counter() - since if since is not None else 0.0)

    # ---- the trainer thread --------------------------------------------------------------------------
    def _run(self) -> None:
        try:
            with contextlib.suppress(StopRequestedError):
                self._loop()
            if self._stop_request is not None:
                detail, done = self._stop_request
                self._stop(detail)
                done.set_result(None)
        except Exception as e:  # a bug must not leave the page waiting forever
            log.exception("trainer failed")
            self._set_status(Status.PAUSED, f"internal error: {e}", Cause.ERROR)
        finally:
            self._inbox.close()
            if self._stop_request is not None and not self._stop_request[1].done():
                self._stop_request[1].set_result(None)
            self._inbox.refuse_queued()

    def _loop(self) -> None:
        """Until a Stop: train while running, evaluate every eval_every steps, apply commands."""
        if not self._resumed:
            self._emit(HParamsChanged(0, self.hparams))  # what step 0 starts with
            self._evaluate()  # the starting point, shown even while the run waits paused at step 0
        if self.status is Status.RUNNING and self._running_since is None:  # (a resume mid-evaluation said so)
            self._set_status(Status.RUNNING, "")
        elif not self._resumed and self.status is not Status.RUNNING:
            self._checkpoint()  # a run that waits at step 0 can be resumed (or branched) from there
        while True:
            if self.status is not Status.RUNNING or not self._inbox.empty():
                self._flush()
                commands.handle(self, *self._inbox.get(block=self.status is not Status.RUNNING))
                if self._stop_request is not None:
                    return
                continue
            if self._last_eval_step != self.step and (
                self.step % self.hparams.eval_every == 0 or self.step >= self.max_steps
            ):
                self._evaluate()
                if self.status is not Status.RUNNING:
                    continue
            if self.step >= self.max_steps:
                self._set_status(Status.FINISHED, f"reached max_steps ({self.max_steps:,})", Cause.MAX_STEPS)
                continue
            if self._diag.points.due(self.step):
                stepping.diagnosed_step(self)
                continue
            next_eval = (self.step // self.hparams.eval_every + 1) * self.hparams.eval_every
            stepping.train_until(self, min(next_eval, self.max_steps, self._diag.points.next_step))

    # ---- what the pieces beside it (stepping.py, commands.py, evaluating.py, ...) call back -----------
    def _take_commands(self) -> None:
        commands.take(self)

    def _between(self) -> None:
        commands.between(self)

    def _set_threads(self, B: int) -> None:
        torch.set_num_threads(self._max_threads if B >= BIG_BATCH else 1)

    def _evaluate(self) -> EvalResult:
        return evaluating.run(self)

    def _stop(self, detail: str) -> None:
        """The last thing the thread does: a running run pauses (saying why), and its state goes
        out as a checkpoint."""
        if self.status is Status.RUNNING:
            self._set_status(Status.PAUSED, detail, Cause.STOPPED)  # checkpoints
        else:
            self._checkpoint()

    def _set_status(
        self,
        status: Status,
        detail: str,
        cause: Cause | None = None,
        *,
        checkpoint: bool = True,
        divergence: Divergence | None = None,
    ) -> None:
        now = time.perf_counter()
        if self._running_since is not None and status is not Status.RUNNING:
            self._trained_s += now - self._running_since
            self._running_since = None
        elif self._running_since is None and status is Status.RUNNING:
            self._running_since = now
        self.status, self.detail, self.cause = status, detail, cause
        self._emit(StatusChanged(status, self.step, detail, cause, divergence))
        if status is not Status.RUNNING and checkpoint:
            self._checkpoint()

    def _checkpoint(self, defer: bool = False) -> None:
        """Capture the whole state and send it after the events so far."""
        state = capture(self)
        self._checkpointed_at = time.perf_counter()
        self._emit(CheckpointTaken(self.step, state), defer=defer)

    def _emit(self, event: Event, defer: bool = False) -> None:
        """Send an event after the pending step losses. A deferred one (what an evaluation says,
        while the run trains) waits for the next regular flush: every message costs each viewer a
        send, and forcing a flush per evaluation would add one more per evaluation."""
        if defer and self.status is Status.RUNNING:
            self._out.defer(event)
            return
        self._flush()
        self._out.emit(event)

    def _flush(self) -> None:
        self._out.flush(self.step, self.hparams.batch_size, self.train_seconds)
