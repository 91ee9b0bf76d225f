"""A trainer's divergence guard: when a run has diverged, and what it does then.

The training loop keeps a debiased EMA of the step loss (DIVERGENCE_BETA: ~10-step memory) and
calls the run diverged at a NaN/inf loss, or once that smoothed loss passes DIVERGENCE_FACTOR x
the best it has been; an evaluation with a NaN/inf loss does too. Evaluations whose train loss is
within CHECKPOINT_SLACK x the best so far keep their weights (GuardState.restore): a diverged run
goes back to the last of them, so that a lower rate can resume from good weights.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from backend.training.inbox import StopRequestedError
from backend.training.protocol import Cause, Divergence, Status

if TYPE_CHECKING:
    from backend.training.trainer import Trainer

DIVERGENCE_FACTOR = 10.0  # smoothed loss above 10x the best smoothed loss so far: diverged
DIVERGENCE_BETA = 0.9  # EMA of the step loss used for that test (~10-step memory)
CHECKPOINT_SLACK = 1.5  # an evaluation is "good" (worth restoring) within 1.5x the best train loss


def diverge(t: Trainer, step: int, loss: float, smoothed: float) -> None:
    """`t` diverged at `step`: restore the last good weights (and evaluate them), reset the EMA,
    and take the DIVERGED status with a detail that says why."""
    g = t._guard
    what = (
        f"the loss of step {step:,} is {loss}"
        if not math.isfinite(loss)
        else f"the smoothed loss reached {smoothed:.3g}, over {DIVERGENCE_FACTOR:g}x its best ({g.best_smoothed:.3g})"
    )
    restored, at = "", None
    if g.restore is not None:
        weights, opt_state, at = g.restore
        with t._lock:
            t.model.copy_(weights)
            t._opt.load_state(opt_state)
        restored = f"; weights restored from the evaluation at step {at.step:,} (dev loss {at.dev_loss:.4f})"
    g.ema = g.ema_weight = 0.0
    detail = f"diverged at lr {t.hparams.lr:g}: {what}{restored}. Lower the learning rate and resume."
    back = (at.step, at.dev_loss) if at is not None else (None, None)
    d = Divergence(step, t.hparams.lr, loss, smoothed, g.best_smoothed, *back)
    if g.restore is not None:
        try:
            t._evaluate()  # show the restored weights' loss at the current step
        except StopRequestedError:  # it stops diverged (the Stop checkpoints)
            t._set_status(Status.DIVERGED, detail, Cause.DIVERGED, checkpoint=False, divergence=d)
            raise
    t._set_status(Status.DIVERGED, detail, Cause.DIVERGED, divergence=d)
