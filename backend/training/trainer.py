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
training; a Trainer built from such a state continues exactly as the original would have.
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
from typing import Any

import torch

from backend.core import noise
from backend.core.data import Splits
from backend.core.embeddings import EmbeddingMap, embedding_map
from backend.core.evaluate import CountedExamples, chunk_rows, evaluate
from backend.core.lrfind import LrFindResult, LrFindSpec, sweep
from backend.core.model import MLP
from backend.core.optim import Optimizer
from backend.training.checkpoint import GuardState, TrainerState
from backend.training.diagnosing import Diagnoser
from backend.training.noise_budget import NoiseBudget
from backend.training.protocol import (
    Cause,
    CheckpointTaken,
    Command,
    ConflictError,
    Divergence,
    EmbeddingsChanged,
    EvalResult,
    Event,
    HParamsChanged,
    LrFindDone,
    LrFindProgress,
    LrFindStarted,
    NoiseEstimate,
    Query,
    SetThreads,
    Status,
    StatusChanged,
    Steps,
    Stop,
    Update,
    check_update,
)
from backend.training.spec import HParams, RunSpec

log = logging.getLogger(__name__)

FLUSH_SECONDS = 0.1  # step losses go out at most ~10 times a second
CHECKPOINT_SECONDS = 2.0  # at most this much training is lost if the process dies
DIVERGENCE_FACTOR = 10.0  # smoothed loss above 10x the best smoothed loss so far: diverged
DIVERGENCE_BETA = 0.9  # EMA of the step loss used for that test (~10-step memory)
CHECKPOINT_SLACK = 1.5  # an evaluation is "good" (worth restoring) within 1.5x the best train loss
BIG_BATCH = 256  # from this batch size on, matrix work outweighs op overhead: use more threads
NOISE_BATCH = 32  # the small batch of the noise-scale estimate
NOISE_DRAWS = 16  # small batches averaged per estimate


class _StopRequestedError(Exception):
    """A Stop came between two pieces of long work: unwinds it to `_run`, which stops."""


class Minibatches:
    """Row indices of random minibatches, drawn with replacement from n rows.

    One torch.randint per block of steps instead of one per step: the generator gives exactly the
    same numbers either way (tests/training/test_trainer.py checks), and a step costs one tensor op less.
    `position()` and `restore()` save and put back where it stands, for exact resume."""

    def __init__(self, n: int, batch_size: int, gen: torch.Generator, block_rows: int = 65_536) -> None:
        self.n, self.batch_size, self._gen = n, batch_size, gen
        self._steps = max(1, block_rows // batch_size)  # steps per block
        self._block = torch.empty((self._steps, batch_size), dtype=torch.long)
        self._next = self._steps  # the block is used up: draw at the first call
        self._state = gen.get_state()  # the generator's state before the current block was drawn

    def __call__(self) -> torch.Tensor:
        if self._next == self._steps:
            self._state = self._gen.get_state()
            torch.randint(0, self.n, (self._steps, self.batch_size), generator=self._gen, out=self._block)
            self._next = 0
        row = self._block[self._next]  # (batch_size,), contiguous
        self._next += 1
        return row

    def position(self) -> tuple[torch.Tensor, int]:
        """(the generator's state before the current block, steps of it used)."""
        if self._next == self._steps:  # no block in use: the next call draws from the state now
            return self._gen.get_state(), self._steps
        return self._state.clone(), self._next

    def restore(self, state: torch.Tensor, cursor: int) -> None:
        """Stand where `position()` stood: redraw the same block, skip its used steps."""
        self._gen.set_state(state)
        self._next = self._steps
        if cursor < self._steps:
            self()  # draws the block (and remembers the state it was drawn from)
            self._next = cursor


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
        self._emit_event = emit
        self._max_threads = max_threads
        self._lock = threading.Lock()  # guards the weights against a torn read mid-step
        self._inbox: queue.SimpleQueue[tuple[Command, Future[Any]]] = queue.SimpleQueue()
        self._submit_lock = threading.Lock()
        self._closed = self._sweep_queued = False
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

        self._pending: list[float] = []  # step losses not yet emitted
        self._pending_lr: list[float] = []  # and the rates they used
        self._deferred: list[Event] = []  # events that go out with the next flush
        self._pending_first = 0
        self._flushed_at = time.perf_counter()
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
            self._load(state)
        if hparams is not None and hparams.batch_size != self.hparams.batch_size:
            self._batches = Minibatches(len(splits.train), hparams.batch_size, self._gen)
        self.hparams = hparams or self.hparams
        self._set_threads(self.hparams.batch_size)

    @property
    def max_steps(self) -> int:
        return self.hparams.max_steps

    def _load(self, s: TrainerState) -> None:
        self.step = self._pending_first = s.step
        self.hparams = s.hparams
        self.status = s.status if s.status in (Status.FINISHED, Status.DIVERGED) else Status.PAUSED
        self.detail = s.detail
        self.model.copy_(s.model)
        self._opt.load_state(s.opt_state)
        self._batches = Minibatches(len(self._train), s.hparams.batch_size, self._gen)
        self._batches.restore(s.batch_gen, s.batch_cursor)
        self._noise_gen.set_state(s.noise_gen)
        self._guard = s.guard
        self.last_eval, self._last_eval_step = s.last_eval, s.last_eval_step
        self.noise, self._sweeps, self._trained_s = s.noise, s.sweeps, s.train_seconds
        if s.embedding_axes is not None:  # orients the next map like the last one
            self.embeddings = EmbeddingMap([], [], "pca", torch.tensor(s.embedding_axes))

    # ---- called from other threads -------------------------------------------------------------------
    def start(self, running: bool) -> None:
        if running:
            check_update(self.status, self.step, self.max_steps, Update(status=Status.RUNNING))
            self.status = Status.RUNNING
        self._thread.start()

    def submit(self, command: Update | LrFindSpec | Query | SetThreads) -> Future[Any]:
        """Queue a command for the next step boundary; the Future completes once it is applied
        (for a learning-rate sweep: once the sweep is over; for a query: with its answer)."""
        return self._put(command)

    def stop(self, detail: str = "paused", timeout: float = 10.0) -> None:
        """Checkpoint and end the thread; a running run says it paused, with `detail`."""
        self._interrupt.set()
        with contextlib.suppress(ConflictError):
            self._put(Stop(detail)).result(timeout)
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

    def _put(self, command: Command) -> Future[Any]:
        done: Future[Any] = Future()
        with self._submit_lock:
            if self._closed:
                raise ConflictError("the run's trainer has stopped")
            if isinstance(command, LrFindSpec):
                if self._sweep_queued:
                    raise ConflictError("a learning-rate sweep is already under way")
                self._sweep_queued = True
            self._inbox.put((command, done))
        return done

    # ---- the trainer thread --------------------------------------------------------------------------
    def _run(self) -> None:
        try:
            with contextlib.suppress(_StopRequestedError):
                self._loop()
            if self._stop_request is not None:
                detail, done = self._stop_request
                self._stop(detail)
                done.set_result(None)
        except Exception as e:  # a bug must not leave the page waiting forever
            log.exception("trainer failed")
            self._set_status(Status.PAUSED, f"internal error: {e}", Cause.ERROR)
        finally:
            with self._submit_lock:
                self._closed = True
            if self._stop_request is not None and not self._stop_request[1].done():
                self._stop_request[1].set_result(None)
            while True:
                try:
                    _, done = self._inbox.get_nowait()
                except queue.Empty:
                    break
                done.set_exception(ConflictError("the run's trainer has stopped"))

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
                self._handle(*self._inbox.get(block=self.status is not Status.RUNNING))
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
                self._diagnosed_step()
                continue
            next_eval = (self.step // self.hparams.eval_every + 1) * self.hparams.eval_every
            self._train_until(min(next_eval, self.max_steps, self._diag.points.next_step))

    def _handle(self, command: Command, done: Future[Any]) -> None:
        """Apply one command and answer it; a Stop is only noted (`_run` stops)."""
        if isinstance(command, Stop):
            self._stop_request = (command.detail, done)
            return
        try:
            done.set_result(self._apply_command(command))
        except ConflictError as e:
            done.set_exception(e)
        except Exception as e:  # a query that failed: its caller hears of it, the run goes on
            log.exception("command failed: %r", command)
            done.set_exception(e)

    def _take_commands(self) -> None:
        """Between two pieces of long work: apply the commands that came meanwhile (none trains,
        so the weights stay as they are), up to a Stop. The threads and CPU time they use are not
        the work's."""
        if self._inbox.empty() or self._stop_request is not None:
            return
        threads, cpu, away = torch.get_num_threads(), time.process_time(), self._away
        while self._stop_request is None:
            try:
                command, done = self._inbox.get_nowait()
            except queue.Empty:
                break
            self._handle(command, done)  # a sweep taken here takes commands too, nested
        torch.set_num_threads(min(threads, self._max_threads))
        self._away = away + time.process_time() - cpu  # the nested ones are inside

    def _between(self) -> None:
        """Between two chunks of an evaluation or two pieces of a noise estimate."""
        self._take_commands()
        if self._stop_request is not None:
            raise _StopRequestedError

    def _apply_command(self, command: Command) -> Any:
        match command:
            case LrFindSpec():
                self._lr_find(command)
            case Query():
                return command.read(self.model, self.step)
            case SetThreads():
                self._max_threads = command.threads
                self._set_threads(self.hparams.batch_size)
            case Update():
                self._apply(command)
        return None

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
        g = self._guard
        ema, ema_weight, best = g.ema, g.ema_weight, g.best_smoothed
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
                g.best_smoothed = best
                self._diverge(step - 1, loss, smoothed)  # resets the EMA
                return
            best = min(best, smoothed)
            if not inbox.empty():
                break
            if time.perf_counter() >= deadline:
                self._flush()
                pending, pending_lr = self._pending, self._pending_lr
                deadline = self._flushed_at + FLUSH_SECONDS
                if self._flushed_at - self._checkpointed_at >= CHECKPOINT_SECONDS:
                    g.ema, g.ema_weight, g.best_smoothed = ema, ema_weight, best
                    self._checkpoint()
        g.ema, g.ema_weight, g.best_smoothed = ema, ema_weight, best

    def _diagnosed_step(self) -> None:
        """One step with a diagnostic point (diagnosing.py), unless it diverged."""
        first = self.step
        before, cost = self._diag.before(self.model)
        self._train_until(first + 1)
        if self.step == first + 1 and self.status is Status.RUNNING:
            try:
                self._emit(self._diag.point(first, self.model, self._opt.step, before, cost), defer=True)
            except Exception:  # a figure on the page: never worth the run
                log.exception("diagnostic point failed")

    def _apply(self, u: Update) -> None:
        check_update(self.status, self.step, self.max_steps, u)
        old, old_batch = self.hparams, self.hparams.batch_size
        self.hparams = self.hparams.merged(u)
        if self.hparams != old:
            self._diag.points.force()  # the first step with new values shows what they do
        if self.hparams.batch_size != old_batch:
            self._batches = Minibatches(len(self._train), self.hparams.batch_size, self._gen)
            self._set_threads(self.hparams.batch_size)
        if u.changes_hparams():
            # confirmed even when nothing changed, so that no client waits for an answer in vain
            self._emit(HParamsChanged(self.step, self.hparams))
        if u.status is not None and self._sweeping:  # the run waits for its sweep: this is what it does after
            resume = u.status is Status.RUNNING
            paused = (Status.PAUSED, "paused by a user", Cause.USER)
            self._after_sweep = (Status.RUNNING, "", None) if resume else paused
        elif u.status is Status.RUNNING and self.status is not Status.RUNNING:
            if self.status is Status.DIVERGED:
                self._guard.ema = self._guard.ema_weight = 0.0
            self._set_status(Status.RUNNING, "")
        elif u.status is Status.PAUSED and self.status is Status.RUNNING:
            self._set_status(Status.PAUSED, "paused by a user", Cause.USER)
        elif u.changes_hparams() and self.status is not Status.RUNNING:
            self._checkpoint()  # the latest checkpoint carries the values the run resumes with

    def _set_threads(self, B: int) -> None:
        torch.set_num_threads(self._max_threads if B >= BIG_BATCH else 1)

    def _evaluate(self) -> EvalResult:
        t0 = time.perf_counter()
        torch.set_num_threads(self._max_threads)  # big matrix products: use every thread we may
        try:
            return self._evaluate_now(t0)
        finally:
            self._set_threads(self.hparams.batch_size)

    def _evaluate_now(self, t0: float) -> EvalResult:
        with_noise = self._noise_budget.due(time.process_time(), last=self.step >= self.max_steps)
        cpu, away = time.process_time(), self._away
        ev = evaluate(self.model, self._eval_set, gradient=with_noise, between=self._between)
        pass_cpu = time.process_time() - cpu - (self._away - away)  # CPU seconds of the pass itself
        train_loss, dev_loss = ev.losses
        finite = math.isfinite(train_loss) and math.isfinite(dev_loss)
        if finite:
            self.embeddings = embedding_map(self.model.C, self.embeddings)
        result = EvalResult(self.step, train_loss, dev_loss, (time.perf_counter() - t0) * 1000)
        self._last_eval_step = self.step
        self.last_eval = result
        self._diag.points.evaluated(self.step)
        self._emit(result, defer=True)
        if finite and self.embeddings is not None:
            m = self.embeddings
            self._emit(EmbeddingsChanged(self.step, self.chars, m.x, m.y, m.method), defer=True)
        if not finite:
            self._diverge(self.step, train_loss, train_loss)
            return result
        g = self._guard
        if train_loss <= CHECKPOINT_SLACK * g.best_train:
            g.best_train = min(g.best_train, train_loss)
            g.restore = (self.model.clone(), self._opt.state(), result)
        if ev.grad_sq_norm is not None:
            self._estimate_noise(ev.grad_sq_norm, self._noise_budget.extra(pass_cpu))
        else:
            self._noise_budget.went_without(pass_cpu)
        if self._diag.grads.due(time.process_time()):
            self._grad_direction(ev.grads)
        self._checkpoint(defer=True)
        return result

    def _estimate_noise(self, full_g2: float, pass_cost: float) -> None:
        """After the evaluation's pass, which brought the exact full-split gradient (noise_budget.py
        says which evaluations do): the small batches, and B_noise. On this thread, not one of its
        own: a second thread that runs parallel torch kernels gives it a second OpenMP pool, and
        with more OpenMP threads than cores libgomp stops spinning and puts its workers to sleep
        between kernels, which cost big batches about a third of their speed on two cores."""
        cpu, away = time.process_time(), self._away
        try:
            X, Y, gen = self._train.X, self._train.Y, self._noise_gen
            per_piece = max(1, self._eval_set.chunk // (3 * NOISE_BATCH))  # batches at once: ~a chunk's work
            b_noise = noise.estimate(self.model, X, Y, full_g2, NOISE_BATCH, NOISE_DRAWS, gen, per_piece, self._between)
            if math.isfinite(b_noise):
                self.noise = (self.step, b_noise)
                self._emit(NoiseEstimate(self.step, b_noise), defer=True)
        except _StopRequestedError:
            raise
        except Exception:  # the estimate is a figure on the page: never worth the run
            log.exception("noise-scale estimate failed")
        finally:
            now = time.process_time()
            self._noise_budget.estimated(pass_cost + now - cpu - (self._away - away), now)

    def _grad_direction(self, full_grad: list[torch.Tensor] | None) -> None:
        """After the evaluation (and its noise estimate): the gradient-direction pass, with the
        evaluation's full-split gradient when it made one (diagnosing.py says which evaluations)."""
        cpu, away = time.process_time(), self._away
        try:
            b_noise = self.noise[1] if self.noise is not None else math.nan
            d = self._diag.direction(self.model, self.step, full_grad, b_noise, self.hparams.batch_size, self._between)
            self._emit(d, defer=True)
        except _StopRequestedError:
            raise
        except Exception:  # a figure on the page: never worth the run
            log.exception("gradient-direction pass failed")
        finally:
            now = time.process_time()
            self._diag.grads.done(now - cpu - (self._away - away), now)

    def _diverge(self, step: int, loss: float, smoothed: float) -> None:
        g = self._guard
        what = (
            f"the loss of step {step:,} is {loss}"
            if not math.isfinite(loss)
            else f"the smoothed loss reached {smoothed:.3g}, "
            f"over {DIVERGENCE_FACTOR:g}x its best ({g.best_smoothed:.3g})"
        )
        restored, at = "", None
        if g.restore is not None:
            weights, opt_state, at = g.restore
            with self._lock:
                self.model.copy_(weights)
                self._opt.load_state(opt_state)
            restored = f"; weights restored from the evaluation at step {at.step:,} (dev loss {at.dev_loss:.4f})"
        g.ema = g.ema_weight = 0.0
        detail = f"diverged at lr {self.hparams.lr:g}: {what}{restored}. Lower the learning rate and resume."
        back = (at.step, at.dev_loss) if at is not None else (None, None)
        d = Divergence(step, self.hparams.lr, loss, smoothed, g.best_smoothed, *back)
        if g.restore is not None:
            try:
                self._evaluate()  # show the restored weights' loss at the current step
            except _StopRequestedError:  # it stops diverged (the Stop checkpoints)
                self._set_status(Status.DIVERGED, detail, Cause.DIVERGED, checkpoint=False, divergence=d)
                raise
        self._set_status(Status.DIVERGED, detail, Cause.DIVERGED, divergence=d)

    def _lr_find(self, spec: LrFindSpec) -> None:
        """Sweep on a copy of the weights (and of the optimizer's state); the run itself does not
        move, and its minibatch generator is not touched. The run pauses meanwhile."""
        try:
            was_running = self.status is Status.RUNNING
            self._after_sweep = (Status.RUNNING, "", None) if was_running else None
            B = spec.batch_size or self.hparams.batch_size
            self._emit(LrFindStarted(self.step, spec, B))
            if was_running:
                self._set_status(Status.PAUSED, "finding the learning rate", Cause.LR_FIND, checkpoint=False)
            copy = self.model.clone()
            opt = Optimizer(copy, self.spec.optimizer_spec())
            opt.load_state(self._opt.state())
            self._sweeps += 1
            gen = torch.Generator().manual_seed(self.spec.seed + 1000 + self._sweeps)
            X, Y, n = self._train.X, self._train.Y, len(self._train)
            idx = torch.empty(B, dtype=torch.long)

            def train_step(lr: float) -> float:
                torch.randint(0, n, (B,), generator=gen, out=idx)
                return float(opt(X, Y, idx, lr).item())

            def interrupted() -> bool:
                self._take_commands()  # changes wait one sweep step at most; they apply to the run
                return self._interrupt.is_set() or self._cancel.is_set() or self._stop_request is not None

            self._set_threads(B)
            self._sweeping = True
            try:
                result = sweep(
                    train_step,
                    spec,
                    lambda lrs, losses: self._emit_event(LrFindProgress(lrs, losses)),
                    interrupted,
                    self.step,
                    B,
                )
            finally:
                self._sweeping = False
                self._set_threads(self.hparams.batch_size)
            self.last_lrfind = result
            self._emit(LrFindDone(result))
            after: tuple[Status, str, Cause | None] | None = self._after_sweep
            if self._interrupt.is_set() or self._stop_request is not None:
                after = (Status.PAUSED, "paused", Cause.STOPPED) if was_running else None
            if after is not None and after != (self.status, self.detail, self.cause):
                self._set_status(*after)
        finally:
            self._after_sweep = None
            self._cancel.clear()  # a cancel that came before the sweep began has ended it
            with self._submit_lock:
                self._sweep_queued = False

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
        """Capture the whole state (cheap: a copy of the weights and the generators' states) and
        send it after the events so far."""
        position, cursor = self._batches.position()
        axes = self.embeddings.axes if self.embeddings is not None else None
        state = TrainerState(
            step=self.step,
            status=self.status,
            detail=self.detail,
            hparams=self.hparams,
            model=self.model.clone(),
            opt_state=self._opt.state(),
            batch_gen=position,
            batch_cursor=cursor,
            noise_gen=self._noise_gen.get_state(),
            guard=GuardState(**vars(self._guard)),
            last_eval=self.last_eval,
            last_eval_step=self._last_eval_step,
            noise=self.noise,
            embedding_axes=axes.tolist() if axes is not None else None,
            sweeps=self._sweeps,
            train_seconds=self.train_seconds,
        )
        self._checkpointed_at = time.perf_counter()
        self._emit(CheckpointTaken(self.step, state), defer=defer)

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
            B = self.hparams.batch_size
            steps = Steps(self._pending_first, self._pending, self._pending_lr, self.train_seconds, rate, rate * B, B)
            self._emit_event(steps)
            self._pending, self._pending_lr = [], []
        for event in self._deferred:
            self._emit_event(event)
        self._deferred.clear()
        self._pending_first = self.step
        self._flushed_at = now
