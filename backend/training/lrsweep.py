"""A trainer's learning-rate sweep (the LR finder, core/lrfind.py), run on a copy.

The sweep trains a copy of the weights (and of the optimizer's state) from a generator of its
own, one step per rate; the run itself does not move, and its minibatch generator is not touched.
A running run pauses meanwhile and resumes after, unless a change that came during the sweep (the
commands are taken between two of its steps and apply to the run) or a Stop says otherwise.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from backend.core.lrfind import LrFindSpec, sweep
from backend.core.optim import Optimizer
from backend.training.protocol import Cause, LrFindDone, LrFindProgress, LrFindStarted, Status

if TYPE_CHECKING:
    from backend.training.trainer import Trainer


def lr_find(t: Trainer, spec: LrFindSpec) -> None:
    try:
        was_running = t.status is Status.RUNNING
        t._after_sweep = (Status.RUNNING, "", None) if was_running else None
        B = spec.batch_size or t.hparams.batch_size
        t._emit(LrFindStarted(t.step, spec, B))
        if was_running:
            t._set_status(Status.PAUSED, "finding the learning rate", Cause.LR_FIND, checkpoint=False)
        copy = t.model.clone()
        opt = Optimizer(copy, t.spec.optimizer_spec())
        opt.load_state(t._opt.state())
        t._sweeps += 1
        gen = torch.Generator().manual_seed(t.spec.seed + 1000 + t._sweeps)
        X, Y, n = t._train.X, t._train.Y, len(t._train)
        idx = torch.empty(B, dtype=torch.long)

        def train_step(lr: float) -> float:
            torch.randint(0, n, (B,), generator=gen, out=idx)
            return float(opt(X, Y, idx, lr).item())

        def interrupted() -> bool:
            t._take_commands()  # changes wait one sweep step at most; they apply to the run
            return t._interrupt.is_set() or t._cancel.is_set() or t._stop_request is not None

        t._set_threads(B)
        t._sweeping = True
        try:
            result = sweep(
                train_step,
                spec,
                lambda lrs, losses: t._out.emit(LrFindProgress(lrs, losses)),
                interrupted,
                t.step,
                B,
            )
        finally:
            t._sweeping = False
            t._set_threads(t.hparams.batch_size)
        t.last_lrfind = result
        t._emit(LrFindDone(result))
        after: tuple[Status, str, Cause | None] | None = t._after_sweep
        if t._interrupt.is_set() or t._stop_request is not None:
            after = (Status.PAUSED, "paused", Cause.STOPPED) if was_running else None
        if after is not None and after != (t.status, t.detail, t.cause):
            t._set_status(*after)
    finally:
        t._after_sweep = None
        t._cancel.clear()  # a cancel that came before the sweep began has ended it
        t._inbox.sweep_ended()
