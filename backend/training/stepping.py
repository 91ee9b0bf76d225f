"""The trainer's steps: the hot loop, and the step that brings a diagnostic point.

A step draws its minibatch (minibatches.py), takes one optimizer step at the rate the schedule
gives for it, and keeps its loss for the next flush (outbox.py); the divergence guard's smoothed
loss is updated as it goes (divergence.py). The loop returns at its bound, as soon as a command
waits in the inbox, or at a divergence; it flushes while it trains (at most every FLUSH_SECONDS)
and checkpoints at least every CHECKPOINT_SECONDS.
"""

from __future__ import annotations

import logging
import math
import time
from typing import TYPE_CHECKING

from backend.training.divergence import DIVERGENCE_BETA, DIVERGENCE_FACTOR, diverge
from backend.training.outbox import FLUSH_SECONDS
from backend.training.protocol import Status

if TYPE_CHECKING:
    from backend.training.trainer import Trainer

log = logging.getLogger(__name__)

CHECKPOINT_SECONDS = 2.0  # at most this much training is lost if the process dies


def train_until(t: Trainer, stop: int) -> None:
    """Run steps of `t` up to `stop`, returning early for a command or divergence. The hot loop:
    everything it touches is a local variable."""
    X, Y, batches, lock = t._train.X, t._train.Y, t._batches, t._lock
    inbox, out = t._inbox, t._out
    # plain SGD calls its fused step directly; other optimizers go through torch.optim
    train = t._opt.step if t._opt.torch_optim is None else t._opt
    base, max_steps, schedule = t.hparams.lr, t.max_steps, t.hparams.schedule
    constant = schedule.kind == "constant"
    pending, pending_lr = out.losses, out.lrs
    beta = DIVERGENCE_BETA
    g = t._guard
    ema, ema_weight, best = g.ema, g.ema_weight, g.best_smoothed
    step = t.step
    if not pending:
        out.flushed_at = time.perf_counter()  # do not count a pause as training time
    deadline = out.flushed_at + FLUSH_SECONDS
    lr = base
    while step < stop:
        if not constant:
            lr = schedule.lr(base, step, max_steps)
        idx = batches()
        with lock:
            loss = train(X, Y, idx, lr).item()
        step += 1
        t.step = step
        pending.append(loss)
        pending_lr.append(lr)
        # divergence: NaN/inf, or the smoothed loss past 10x its best
        ema = beta * ema + (1 - beta) * loss
        ema_weight = beta * ema_weight + (1 - beta)
        smoothed = ema / ema_weight
        if not math.isfinite(loss) or smoothed > DIVERGENCE_FACTOR * best:
            g.best_smoothed = best
            diverge(t, step - 1, loss, smoothed)  # resets the EMA
            return
        best = min(best, smoothed)
        if not inbox.empty():
            break
        if time.perf_counter() >= deadline:
            t._flush()
            pending, pending_lr = out.losses, out.lrs
            deadline = out.flushed_at + FLUSH_SECONDS
            if out.flushed_at - t._checkpointed_at >= CHECKPOINT_SECONDS:
                g.ema, g.ema_weight, g.best_smoothed = ema, ema_weight, best
                t._checkpoint()
    g.ema, g.ema_weight, g.best_smoothed = ema, ema_weight, best


def diagnosed_step(t: Trainer) -> None:
    """One step of `t` with a diagnostic point (diagnosing.py), unless it diverged."""
    first = t.step
    before, cost = t._diag.before(t.model)
    train_until(t, first + 1)
    if t.step == first + 1 and t.status is Status.RUNNING:
        try:
            t._emit(t._diag.point(first, t.model, t._opt.step, before, cost), defer=True)
        except Exception:  # a figure on the page: never worth the run
            log.exception("diagnostic point failed")
