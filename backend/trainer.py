"""The training loop, in a thread of its own. It knows nothing of HTTP or asyncio.

Other threads talk to it through `submit` (a command, applied between two steps, answered with
a Future) and read its public attributes; it talks back only through the `emit` callable it is
given, with the events below. Every step is a real SGD update on a fresh random minibatch drawn
with replacement from the training split, at the learning rate and batch size current at that
step; changes arrive between steps and are reported with the first step that used them.
"""

from __future__ import annotations

import contextlib
import logging
import math
import queue
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, replace
from enum import StrEnum

import torch

from backend.data import Splits
from backend.evaluate import CountedExamples, exact_losses
from backend.model import MLP, SGDStep

log = logging.getLogger(__name__)

FLUSH_SECONDS = 0.1  # step losses go out at most ~10 times a second
DIVERGENCE_FACTOR = 10.0  # smoothed loss above 10x the best smoothed loss so far: diverged
DIVERGENCE_BETA = 0.9  # EMA of the step loss used for that test (~10-step memory)
CHECKPOINT_SLACK = 1.5  # an evaluation is "good" (worth restoring) within 1.5x the best train loss
BIG_BATCH = 256  # from this batch size on, matrix work outweighs op overhead: use every thread


class Status(StrEnum):
    PAUSED = "paused"
    RUNNING = "running"
    FINISHED = "finished"
    DIVERGED = "diverged"
    STOPPED = "stopped"


@dataclass(frozen=True)
class HParams:
    lr: float = 0.1
    batch_size: int = 32
    eval_every: int = 1000


@dataclass(frozen=True)
class EvalResult:
    step: int
    train_loss: float
    dev_loss: float
    ms: float


# Events, emitted in order. Steps cover consecutive step indices from `first`.
@dataclass(frozen=True)
class Steps:
    first: int
    losses: list[float]
    steps_per_s: float
    examples_per_s: float


@dataclass(frozen=True)
class HParamsChanged:
    """The hparams in effect from `step` on: sent at step 0, then after every `set` (even one that
    changed nothing, as its confirmation)."""

    step: int  # the first step that uses them
    hparams: HParams
    max_steps: int


@dataclass(frozen=True)
class StatusChanged:
    status: Status
    step: int
    detail: str


Event = Steps | EvalResult | HParamsChanged | StatusChanged


@dataclass(frozen=True)
class Update:
    """A change requested by a user. None leaves a field as it is."""

    lr: float | None = None
    batch_size: int | None = None
    eval_every: int | None = None
    max_steps: int | None = None
    status: Status | None = None  # RUNNING or PAUSED


@dataclass(frozen=True)
class _Stop:
    detail: str


class ConflictError(Exception):
    """The request is valid but the run's state does not allow it (HTTP 409)."""


def check_update(status: Status, step: int, max_steps: int, update: Update) -> None:
    """Raise ConflictError if `update` cannot apply to a run in this state. Shared by every entry point."""
    if status is Status.STOPPED:
        raise ConflictError("the run is stopped; create a new run")
    if update.status is Status.RUNNING and status is not Status.RUNNING:
        limit = update.max_steps if update.max_steps is not None else max_steps
        if step >= limit:
            raise ConflictError(f"the run reached max_steps ({limit:,}); raise max_steps to continue")


class Trainer:
    def __init__(
        self,
        model: MLP,
        splits: Splits,
        vocab_size: int,
        hparams: HParams,
        max_steps: int,
        seed: int,
        emit: Callable[[Event], None],
        max_threads: int = 1,
    ) -> None:
        self.model = model
        self._train = splits.train
        self._eval_set = CountedExamples.from_splits([splits.train, splits.dev], vocab_size)
        self._emit_event = emit
        self._max_threads = max_threads
        self._sgd = SGDStep(model)
        self._gen = torch.Generator().manual_seed(seed)
        self._idx = torch.empty(0, dtype=torch.long)
        self._lock = threading.Lock()  # guards the weights against a torn read mid-step
        self._inbox: queue.SimpleQueue[tuple[Update | _Stop, Future[None]]] = queue.SimpleQueue()
        self._submit_lock = threading.Lock()
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="trainer", daemon=True)

        # Public state: written by the trainer thread only, read by anyone.
        self.status = Status.PAUSED
        self.detail = ""
        self.step = 0  # steps done so far = index of the next step
        self.hparams = hparams
        self.max_steps = max_steps
        self.last_eval: EvalResult | None = None

        self._pending: list[float] = []  # step losses not yet emitted
        self._deferred: list[Event] = []  # events that go out with the next flush
        self._pending_first = 0
        self._flushed_at = time.perf_counter()
        self._last_eval_step = -1
        self._checkpoint: tuple[MLP, EvalResult] | None = None
        self._best_train = math.inf
        self._ema = 0.0
        self._ema_weight = 0.0  # 1 - beta^n, to debias the EMA
        self._best_smoothed = math.inf
        self._apply_batch_size(hparams.batch_size)

    # ---- called from other threads -------------------------------------------------------
    def start(self, running: bool) -> None:
        if running:
            self.status = Status.RUNNING
        self._thread.start()

    def submit(self, command: Update) -> Future[None]:
        """Queue a change for the next step boundary; the Future completes once it is applied."""
        return self._put(command)

    def stop(self, detail: str = "stopped", timeout: float = 10.0) -> None:
        with contextlib.suppress(ConflictError):
            self._put(_Stop(detail)).result(timeout)
        self._thread.join(timeout)

    def weights(self) -> MLP:
        """A consistent copy of the current weights (never a half-updated step)."""
        with self._lock:
            return self.model.clone()

    @property
    def train_examples(self) -> int:
        return len(self._train)

    def _put(self, command: Update | _Stop) -> Future[None]:
        done: Future[None] = Future()
        with self._submit_lock:
            if self._closed:
                raise ConflictError("the run is stopped; create a new run")
            self._inbox.put((command, done))
        return done

    # ---- the trainer thread -----------------------------------------------------------------
    def _run(self) -> None:
        try:
            self._loop()
        except Exception as e:  # a bug must not leave the page waiting forever
            log.exception("trainer failed")
            self._set_status(Status.STOPPED, f"internal error: {e}")
        finally:
            with self._submit_lock:
                self._closed = True
            while True:
                try:
                    _, done = self._inbox.get_nowait()
                except queue.Empty:
                    break
                done.set_exception(ConflictError("the run is stopped; create a new run"))

    def _loop(self) -> None:
        self._emit(HParamsChanged(0, self.hparams, self.max_steps))  # what step 0 starts with
        self._evaluate()  # the starting point, shown even while the run waits paused at step 0
        if self.status is Status.RUNNING:
            self._set_status(Status.RUNNING, "")
        while True:
            if self.status is not Status.RUNNING or not self._inbox.empty():
                self._flush()
                command, done = self._inbox.get(block=self.status is not Status.RUNNING)
                if isinstance(command, _Stop):
                    self._set_status(Status.STOPPED, command.detail)
                    done.set_result(None)
                    return
                try:
                    self._apply(command)
                except ConflictError as e:
                    done.set_exception(e)
                else:
                    done.set_result(None)
                continue
            if self._last_eval_step != self.step and (
                self.step % self.hparams.eval_every == 0 or self.step >= self.max_steps
            ):
                self._evaluate()
                if self.status is not Status.RUNNING:
                    continue
            if self.step >= self.max_steps:
                self._set_status(Status.FINISHED, f"reached max_steps ({self.max_steps:,})")
                continue
            next_eval = (self.step // self.hparams.eval_every + 1) * self.hparams.eval_every
            self._train_until(min(next_eval, self.max_steps))

    def _train_until(self, stop: int) -> None:
        """Run steps up to `stop`, returning early for a command, divergence, or nothing else."""
        X, Y, idx, gen, sgd, lock = self._train.X, self._train.Y, self._idx, self._gen, self._sgd, self._lock
        n, lr, B = len(self._train), self.hparams.lr, self.hparams.batch_size
        pending, inbox = self._pending, self._inbox
        beta = DIVERGENCE_BETA
        step = self.step
        if not pending:
            self._flushed_at = time.perf_counter()  # do not count a pause as training time
        deadline = self._flushed_at + FLUSH_SECONDS
        while step < stop:
            torch.randint(0, n, (B,), generator=gen, out=idx)
            with lock:
                loss = sgd(X, Y, idx, lr).item()
            step += 1
            self.step = step
            pending.append(loss)
            # divergence: NaN/inf, or the smoothed loss past 10x its best
            self._ema = beta * self._ema + (1 - beta) * loss
            self._ema_weight = beta * self._ema_weight + (1 - beta)
            smoothed = self._ema / self._ema_weight
            if not math.isfinite(loss) or smoothed > DIVERGENCE_FACTOR * self._best_smoothed:
                self._diverge(step - 1, loss, smoothed)
                return
            self._best_smoothed = min(self._best_smoothed, smoothed)
            if not inbox.empty():
                return
            if time.perf_counter() >= deadline:
                self._flush()
                pending = self._pending
                deadline = self._flushed_at + FLUSH_SECONDS

    def _apply(self, u: Update) -> None:
        check_update(self.status, self.step, self.max_steps, u)
        old = (self.hparams, self.max_steps)
        self.hparams = replace(
            self.hparams,
            **{k: v for k in ("lr", "batch_size", "eval_every") if (v := getattr(u, k)) is not None},
        )
        if u.max_steps is not None:
            self.max_steps = u.max_steps
        if self.hparams.batch_size != old[0].batch_size:
            self._apply_batch_size(self.hparams.batch_size)
        if any(getattr(u, k) is not None for k in ("lr", "batch_size", "eval_every", "max_steps")):
            # confirmed even when nothing changed, so that no client waits for an answer in vain
            self._emit(HParamsChanged(self.step, self.hparams, self.max_steps))
        if u.status is Status.RUNNING and self.status is not Status.RUNNING:
            if self.status is Status.DIVERGED:
                self._ema = self._ema_weight = 0.0
            self._set_status(Status.RUNNING, "")
        elif u.status is Status.PAUSED and self.status is Status.RUNNING:
            self._set_status(Status.PAUSED, "paused by a user")

    def _apply_batch_size(self, B: int) -> None:
        self._idx = torch.empty(B, dtype=torch.long)
        torch.set_num_threads(self._max_threads if B >= BIG_BATCH else 1)

    def _evaluate(self) -> EvalResult:
        t0 = time.perf_counter()
        train_loss, dev_loss = exact_losses(self.model, self._eval_set)
        result = EvalResult(self.step, train_loss, dev_loss, (time.perf_counter() - t0) * 1000)
        self._last_eval_step = self.step
        self.last_eval = result
        self._emit(result, defer=True)
        if not (math.isfinite(train_loss) and math.isfinite(dev_loss)):
            self._diverge(self.step, train_loss, train_loss)
        elif train_loss <= CHECKPOINT_SLACK * self._best_train:
            self._best_train = min(self._best_train, train_loss)
            self._checkpoint = (self.model.clone(), result)
        return result

    def _diverge(self, step: int, loss: float, smoothed: float) -> None:
        what = (
            f"the loss of step {step:,} is {loss}"
            if not math.isfinite(loss)
            else f"the smoothed loss reached {smoothed:.3g}, "
            f"over {DIVERGENCE_FACTOR:g}x its best ({self._best_smoothed:.3g})"
        )
        restored = ""
        if self._checkpoint is not None:
            weights, at = self._checkpoint
            with self._lock:
                self.model.copy_(weights)
            restored = f"; weights restored from the evaluation at step {at.step:,} (dev loss {at.dev_loss:.4f})"
        self._ema = self._ema_weight = 0.0
        if self._checkpoint is not None:
            self._evaluate()  # show the restored weights' loss at the current step
        self._set_status(
            Status.DIVERGED,
            f"diverged at lr {self.hparams.lr:g}: {what}{restored}. Lower the learning rate and resume.",
        )

    def _set_status(self, status: Status, detail: str) -> None:
        self.status, self.detail = status, detail
        self._emit(StatusChanged(status, self.step, detail))

    def _emit(self, event: Event, defer: bool = False) -> None:
        """Send an event after the pending step losses. A deferred one (an evaluation while the run
        trains) waits for the next regular flush: every message costs each viewer a send, and
        forcing a flush per evaluation would add one more per evaluation."""
        if defer and self.status is Status.RUNNING:
            self._deferred.append(event)
            return
        self._flush()
        self._emit_event(event)

    def _flush(self) -> None:
        now = time.perf_counter()
        if self._pending:
            n = len(self._pending)
            rate = n / max(now - self._flushed_at, 1e-9)
            self._emit_event(Steps(self._pending_first, self._pending, rate, rate * self.hparams.batch_size))
            self._pending = []
        for event in self._deferred:
            self._emit_event(event)
        self._deferred.clear()
        self._pending_first = self.step
        self._flushed_at = now
