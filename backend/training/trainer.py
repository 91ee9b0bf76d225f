"""The training loop, in a thread of its own. It knows nothing of HTTP or asyncio.

Other threads talk to it through `submit` (a command, applied between two steps, answered with
a Future) and read its public attributes; it talks back only through the `emit` callable it is
given, with the events below. Every step is a real optimizer step on a fresh random minibatch
drawn with replacement from the training split, at the learning rate (from the base rate and the
schedule) and batch size current at that step; changes arrive between steps and are reported
with the first step that used them.
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
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any

import torch

from backend.core import noise
from backend.core.data import Splits
from backend.core.embeddings import EmbeddingMap, embedding_map
from backend.core.evaluate import CountedExamples, evaluate
from backend.core.lrfind import LrFindResult, LrFindSpec, sweep
from backend.core.model import MLP
from backend.core.optim import Optimizer, OptimizerSpec
from backend.core.schedule import Schedule

log = logging.getLogger(__name__)

FLUSH_SECONDS = 0.1  # step losses go out at most ~10 times a second
DIVERGENCE_FACTOR = 10.0  # smoothed loss above 10x the best smoothed loss so far: diverged
DIVERGENCE_BETA = 0.9  # EMA of the step loss used for that test (~10-step memory)
CHECKPOINT_SLACK = 1.5  # an evaluation is "good" (worth restoring) within 1.5x the best train loss
BIG_BATCH = 256  # from this batch size on, matrix work outweighs op overhead: use every thread
NOISE_BATCH = 32  # the small batch of the noise-scale estimate
NOISE_DRAWS = 16  # small batches averaged per estimate
NOISE_SHARE = 0.05  # at most this share of the trainer's time goes to noise-scale estimates


class Status(StrEnum):
    PAUSED = "paused"
    RUNNING = "running"
    FINISHED = "finished"
    DIVERGED = "diverged"
    STOPPED = "stopped"


@dataclass(frozen=True)
class HParams:
    lr: float = 0.1  # the base rate; the schedule gives each step's rate from it
    batch_size: int = 32
    eval_every: int = 1000
    schedule: Schedule = field(default_factory=Schedule)


@dataclass(frozen=True)
class EvalResult:
    step: int
    train_loss: float
    dev_loss: float
    ms: float  # the losses on both splits and the embedding map (the noise scale follows apart)


# Events, emitted in order. Steps cover consecutive step indices from `first`.
@dataclass(frozen=True)
class Steps:
    first: int
    losses: list[float]
    lrs: list[float]  # the rate each step used
    time: float  # seconds of training (pauses excluded) at the end of the last step
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


@dataclass(frozen=True)
class NoiseEstimate:
    step: int
    b_noise: float


@dataclass(frozen=True)
class EmbeddingsChanged:
    step: int
    chars: tuple[str, ...]
    map: EmbeddingMap


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
)


@dataclass(frozen=True)
class Update:
    """A change requested by a user. None leaves a field as it is."""

    lr: float | None = None
    batch_size: int | None = None
    eval_every: int | None = None
    max_steps: int | None = None
    schedule: Schedule | None = None
    status: Status | None = None  # RUNNING or PAUSED

    def changes_hparams(self) -> bool:
        return any(v is not None for v in (self.lr, self.batch_size, self.eval_every, self.max_steps, self.schedule))


class Minibatches:
    """Row indices of random minibatches, drawn with replacement from n rows.

    One torch.randint per block of steps instead of one per step: the generator gives exactly the
    same numbers either way (tests/test_trainer.py checks), and a step costs one tensor op less."""

    def __init__(self, n: int, batch_size: int, gen: torch.Generator, block_rows: int = 65_536) -> None:
        self.n, self.batch_size, self._gen = n, batch_size, gen
        self._steps = max(1, block_rows // batch_size)  # steps per block
        self._block = torch.empty((self._steps, batch_size), dtype=torch.long)
        self._next = self._steps  # the block is used up: draw at the first call

    def __call__(self) -> torch.Tensor:
        if self._next == self._steps:
            torch.randint(0, self.n, (self._steps, self.batch_size), generator=self._gen, out=self._block)
            self._next = 0
        row = self._block[self._next]  # (batch_size,), contiguous
        self._next += 1
        return row


@dataclass(frozen=True)
class _Stop:
    detail: str


Command = Update | LrFindSpec | _Stop


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
        chars: tuple[str, ...],
        hparams: HParams,
        max_steps: int,
        seed: int,
        emit: Callable[[Event], None],
        max_threads: int = 1,
        optimizer: OptimizerSpec = OptimizerSpec(),  # noqa: B008 (frozen)
    ) -> None:
        self.model = model
        self.chars = chars
        self._train = splits.train
        self._eval_set = CountedExamples.from_splits([splits.train, splits.dev], len(chars))
        self._noise_set = CountedExamples.from_splits([splits.train], len(chars))
        self._noise_due = 0.0  # perf_counter time from which the next estimate may run
        self._emit_event = emit
        self._max_threads = max_threads
        self._seed = seed
        self._opt_spec = optimizer
        self._opt = Optimizer(model, optimizer)
        self._gen = torch.Generator().manual_seed(seed)
        self._noise_gen = torch.Generator().manual_seed(seed + 1)
        self._batches = Minibatches(len(splits.train), hparams.batch_size, self._gen)
        self._lock = threading.Lock()  # guards the weights against a torn read mid-step
        self._inbox: queue.SimpleQueue[tuple[Command, Future[None]]] = queue.SimpleQueue()
        self._submit_lock = threading.Lock()
        self._closed = False
        self._sweep_queued = False
        self._interrupt = threading.Event()  # ends a learning-rate sweep early (the run is stopping)
        self._thread = threading.Thread(target=self._run, name="trainer", daemon=True)

        # Public state: written by the trainer thread only, read by anyone.
        self.status = Status.PAUSED
        self.detail = ""
        self.step = 0  # steps done so far = index of the next step
        self.hparams = hparams
        self.max_steps = max_steps
        self.last_eval: EvalResult | None = None
        self.embeddings: EmbeddingMap | None = None
        self.last_lrfind: LrFindResult | None = None
        self.noise: tuple[int, float] | None = None  # (step, B_noise): the latest noise-scale estimate

        self._pending: list[float] = []  # step losses not yet emitted
        self._pending_lr: list[float] = []  # and the rates they used
        self._deferred: list[Event] = []  # events that go out with the next flush
        self._pending_first = 0
        self._flushed_at = time.perf_counter()
        self._trained_s = 0.0  # seconds spent running, before the current stretch
        self._running_since: float | None = None
        self._last_eval_step = -1
        self._checkpoint: tuple[MLP, dict[str, Any] | None, EvalResult] | None = None
        self._best_train = math.inf
        self._ema = 0.0
        self._ema_weight = 0.0  # 1 - beta^n, to debias the EMA
        self._best_smoothed = math.inf
        self._sweeps = 0
        self._apply_batch_size(hparams.batch_size)

    # ---- called from other threads -------------------------------------------------------
    def start(self, running: bool) -> None:
        if running:
            self.status = Status.RUNNING
        self._thread.start()

    def submit(self, command: Update | LrFindSpec) -> Future[None]:
        """Queue a command for the next step boundary; the Future completes once it is applied
        (for a learning-rate sweep: once the sweep is over)."""
        return self._put(command)

    def stop(self, detail: str = "stopped", timeout: float = 10.0) -> None:
        self._interrupt.set()
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

    @property
    def train_seconds(self) -> float:
        since = self._running_since
        return self._trained_s + (time.perf_counter() - since if since is not None else 0.0)

    def _put(self, command: Command) -> Future[None]:
        done: Future[None] = Future()
        with self._submit_lock:
            if self._closed:
                raise ConflictError("the run is stopped; create a new run")
            if isinstance(command, LrFindSpec):
                if self._sweep_queued:
                    raise ConflictError("a learning-rate sweep is already under way")
                self._sweep_queued = True
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
                    if isinstance(command, LrFindSpec):
                        self._lr_find(command)
                    else:
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
        """Run steps up to `stop`, returning early for a command or divergence. The hot loop:
        everything it touches is a local variable."""
        X, Y, batches, lock, inbox = self._train.X, self._train.Y, self._batches, self._lock, self._inbox
        # plain SGD calls its fused step directly; other optimizers go through torch.optim
        train = self._opt.step if self._opt.torch_optim is None else self._opt
        base, max_steps, schedule = self.hparams.lr, self.max_steps, self.hparams.schedule
        constant = schedule.kind == "constant"
        pending, pending_lr = self._pending, self._pending_lr
        beta = DIVERGENCE_BETA
        ema, ema_weight, best = self._ema, self._ema_weight, self._best_smoothed
        step = self.step
        if not pending:
            self._flushed_at = time.perf_counter()  # do not count a pause as training time
        deadline = self._flushed_at + FLUSH_SECONDS
        lr = base
        while step < stop:
            if not constant:
                lr = schedule.lr(base, step, max_steps)
            idx = batches()
            with lock:
                loss = train(X, Y, idx, lr).item()
            step += 1
            self.step = step
            pending.append(loss)
            pending_lr.append(lr)
            # divergence: NaN/inf, or the smoothed loss past 10x its best
            ema = beta * ema + (1 - beta) * loss
            ema_weight = beta * ema_weight + (1 - beta)
            smoothed = ema / ema_weight
            if not math.isfinite(loss) or smoothed > DIVERGENCE_FACTOR * best:
                self._best_smoothed = best
                self._diverge(step - 1, loss, smoothed)  # resets the EMA
                return
            best = min(best, smoothed)
            if not inbox.empty():
                break
            if time.perf_counter() >= deadline:
                self._flush()
                pending, pending_lr = self._pending, self._pending_lr
                deadline = self._flushed_at + FLUSH_SECONDS
        self._ema, self._ema_weight, self._best_smoothed = ema, ema_weight, best

    def _apply(self, u: Update) -> None:
        check_update(self.status, self.step, self.max_steps, u)
        old_batch = self.hparams.batch_size
        changes = {k: v for k in ("lr", "batch_size", "eval_every", "schedule") if (v := getattr(u, k)) is not None}
        self.hparams = replace(self.hparams, **changes)
        if u.max_steps is not None:
            self.max_steps = u.max_steps
        if self.hparams.batch_size != old_batch:
            self._apply_batch_size(self.hparams.batch_size)
        if u.changes_hparams():
            # confirmed even when nothing changed, so that no client waits for an answer in vain
            self._emit(HParamsChanged(self.step, self.hparams, self.max_steps))
        if u.status is Status.RUNNING and self.status is not Status.RUNNING:
            if self.status is Status.DIVERGED:
                self._ema = self._ema_weight = 0.0
            self._set_status(Status.RUNNING, "")
        elif u.status is Status.PAUSED and self.status is Status.RUNNING:
            self._set_status(Status.PAUSED, "paused by a user")

    def _apply_batch_size(self, B: int) -> None:
        self._batches = Minibatches(len(self._train), B, self._gen)
        self._set_threads(B)

    def _set_threads(self, B: int) -> None:
        torch.set_num_threads(self._max_threads if B >= BIG_BATCH else 1)

    def _evaluate(self) -> EvalResult:
        t0 = time.perf_counter()
        torch.set_num_threads(self._max_threads)  # big matrix products: use every core
        try:
            return self._evaluate_now(t0)
        finally:
            self._set_threads(self.hparams.batch_size)

    def _evaluate_now(self, t0: float) -> EvalResult:
        train_loss, dev_loss = evaluate(self.model, self._eval_set, gradient=False).losses
        finite = math.isfinite(train_loss) and math.isfinite(dev_loss)
        if finite:
            self.embeddings = embedding_map(self.model.C, self.embeddings)
        result = EvalResult(self.step, train_loss, dev_loss, (time.perf_counter() - t0) * 1000)
        self._last_eval_step = self.step
        self.last_eval = result
        self._emit(result, defer=True)
        if finite and self.embeddings is not None:
            self._emit(EmbeddingsChanged(self.step, self.chars, self.embeddings), defer=True)
        if finite and (time.perf_counter() >= self._noise_due or self.step >= self.max_steps):
            self._estimate_noise()
        if not finite:
            self._diverge(self.step, train_loss, train_loss)
        elif train_loss <= CHECKPOINT_SLACK * self._best_train:
            self._best_train = min(self._best_train, train_loss)
            self._checkpoint = (self.model.clone(), self._opt.state(), result)
        return result

    def _estimate_noise(self) -> None:
        """With the evaluation, on this thread: the exact full-split gradient costs about three
        evaluations, so at small batches it runs at most once every 1/NOISE_SHARE times its own
        duration (the others go without). Not on a thread of its own: a second thread that runs
        parallel torch kernels gives it a second OpenMP pool, and with more OpenMP threads than
        cores libgomp stops spinning and puts its workers to sleep between kernels, which cost
        big batches about a third of their speed on two cores."""
        t0 = time.perf_counter()
        try:
            g2 = evaluate(self.model, self._noise_set, gradient=True).grad_sq_norm
            if g2 is None:
                return
            X, Y = self._train.X, self._train.Y
            b_noise = noise.estimate(self.model, X, Y, g2, NOISE_BATCH, NOISE_DRAWS, self._noise_gen)
            if math.isfinite(b_noise):
                self.noise = (self.step, b_noise)
                self._emit(NoiseEstimate(self.step, b_noise), defer=True)
        except Exception:  # the estimate is a figure on the page: never worth the run
            log.exception("noise-scale estimate failed")
        finally:
            now = time.perf_counter()
            self._noise_due = now + (now - t0) / NOISE_SHARE

    def _diverge(self, step: int, loss: float, smoothed: float) -> None:
        what = (
            f"the loss of step {step:,} is {loss}"
            if not math.isfinite(loss)
            else f"the smoothed loss reached {smoothed:.3g}, "
            f"over {DIVERGENCE_FACTOR:g}x its best ({self._best_smoothed:.3g})"
        )
        restored = ""
        if self._checkpoint is not None:
            weights, opt_state, at = self._checkpoint
            with self._lock:
                self.model.copy_(weights)
                self._opt.load_state(opt_state)
            restored = f"; weights restored from the evaluation at step {at.step:,} (dev loss {at.dev_loss:.4f})"
        self._ema = self._ema_weight = 0.0
        if self._checkpoint is not None:
            self._evaluate()  # show the restored weights' loss at the current step
        self._set_status(
            Status.DIVERGED,
            f"diverged at lr {self.hparams.lr:g}: {what}{restored}. Lower the learning rate and resume.",
        )

    def _lr_find(self, spec: LrFindSpec) -> None:
        """Sweep on a copy of the weights (and of the optimizer's state); the run itself does not
        move, and its minibatch generator is not touched. The run pauses meanwhile."""
        try:
            if self.status is Status.STOPPED:
                raise ConflictError("the run is stopped; create a new run")
            was_running = self.status is Status.RUNNING
            if was_running:
                self._set_status(Status.PAUSED, "finding the learning rate")
            B = spec.batch_size or self.hparams.batch_size
            self._emit(LrFindStarted(self.step, spec, B))
            copy = self.model.clone()
            opt = Optimizer(copy, self._opt_spec)
            opt.load_state(self._opt.state())
            self._sweeps += 1
            gen = torch.Generator().manual_seed(self._seed + 1000 + self._sweeps)
            X, Y, n = self._train.X, self._train.Y, len(self._train)
            idx = torch.empty(B, dtype=torch.long)

            def train_step(lr: float) -> float:
                torch.randint(0, n, (B,), generator=gen, out=idx)
                return float(opt(X, Y, idx, lr).item())

            self._set_threads(B)
            try:
                result = sweep(
                    train_step,
                    spec,
                    lambda lrs, losses: self._emit_event(LrFindProgress(lrs, losses)),
                    self._interrupt.is_set,
                    self.step,
                    B,
                )
            finally:
                self._set_threads(self.hparams.batch_size)
            self.last_lrfind = result
            self._emit(LrFindDone(result))
            if was_running and not self._interrupt.is_set():
                self._set_status(Status.RUNNING, "")
        finally:
            with self._submit_lock:
                self._sweep_queued = False

    def _set_status(self, status: Status, detail: str) -> None:
        now = time.perf_counter()
        if self._running_since is not None and status is not Status.RUNNING:
            self._trained_s += now - self._running_since
            self._running_since = None
        elif self._running_since is None and status is Status.RUNNING:
            self._running_since = now
        self.status, self.detail = status, detail
        self._emit(StatusChanged(status, self.step, detail))

    def _emit(self, event: Event, defer: bool = False) -> None:
        """Send an event after the pending step losses. A deferred one (what an evaluation says,
        while the run trains) waits for the next regular flush: every message costs each viewer a
        send, and forcing a flush per evaluation would add one more per evaluation."""
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
            steps = Steps(
                self._pending_first,
                self._pending,
                self._pending_lr,
                self.train_seconds,
                rate,
                rate * self.hparams.batch_size,
            )
            self._emit_event(steps)
            self._pending, self._pending_lr = [], []
        for event in self._deferred:
            self._emit_event(event)
        self._deferred.clear()
        self._pending_first = self.step
        self._flushed_at = now
