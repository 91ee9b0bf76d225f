"""A trainer's evaluation at its current step, and the figures that come with it: the gradient
noise-scale estimate (noise_budget.py says which evaluations bring one) and the gradient-direction
pass (diagnosing.py says which).

All of it reads the weights and never moves them, nor touches the minibatch generator (the noise
estimate draws from a generator of its own), so an evaluation cut short by a Stop is simply done
again after a resume. It goes chunk by chunk, and the commands that came meanwhile are applied
between two pieces (`Trainer._between`); their CPU time (`Trainer._away`) is not the work's.
"""

from __future__ import annotations

import logging
import math
import time
from typing import TYPE_CHECKING

import torch

from backend.core import noise
from backend.core.embeddings import embedding_map
from backend.core.evaluate import evaluate
from backend.training.divergence import CHECKPOINT_SLACK, diverge
from backend.training.inbox import StopRequestedError
from backend.training.protocol import EmbeddingsChanged, EvalResult, NoiseEstimate

if TYPE_CHECKING:
    from backend.training.trainer import Trainer

log = logging.getLogger(__name__)

NOISE_BATCH = 32  # the small batch of the noise-scale estimate
NOISE_DRAWS = 16  # small batches averaged per estimate


def run(t: Trainer) -> EvalResult:
    """Evaluate `t` at its step, with every torch thread it may use (big matrix products)."""
    t0 = time.perf_counter()
    torch.set_num_threads(t._max_threads)
    try:
        return _evaluate_now(t, t0)
    finally:
        t._set_threads(t.hparams.batch_size)


def _evaluate_now(t: Trainer, t0: float) -> EvalResult:
    with_noise = t._noise_budget.due(time.process_time(), last=t.step >= t.max_steps)
    cpu, away = time.process_time(), t._away
    ev = evaluate(t.model, t._eval_set, gradient=with_noise, between=t._between)
    pass_cpu = time.process_time() - cpu - (t._away - away)  # CPU seconds of the pass itself
    train_loss, dev_loss = ev.losses
    finite = math.isfinite(train_loss) and math.isfinite(dev_loss)
    if finite:
        t.embeddings = embedding_map(t.model.C, t.embeddings)
    result = EvalResult(t.step, train_loss, dev_loss, (time.perf_counter() - t0) * 1000)
    t._last_eval_step = t.step
    t.last_eval = result
    t._diag.points.evaluated(t.step)
    t._emit(result, defer=True)
    if finite and t.embeddings is not None:
        m = t.embeddings
        t._emit(EmbeddingsChanged(t.step, t.chars, m.x, m.y, m.method), defer=True)
    if not finite:
        diverge(t, t.step, train_loss, train_loss)
        return result
    g = t._guard
    if train_loss <= CHECKPOINT_SLACK * g.best_train:
        g.best_train = min(g.best_train, train_loss)
        g.restore = (t.model.clone(), t._opt.state(), result)
    if ev.grad_sq_norm is not None:
        _estimate_noise(t, ev.grad_sq_norm, t._noise_budget.extra(pass_cpu))
    else:
        t._noise_budget.went_without(pass_cpu)
    if t._diag.grads.due(time.process_time()):
        _grad_direction(t, ev.grads)
    t._checkpoint(defer=True)
    return result


def _estimate_noise(t: Trainer, full_g2: float, pass_cost: float) -> None:
    """After the evaluation's pass, which brought the exact full-split gradient (noise_budget.py
    says which evaluations do): the small batches, and B_noise. On this thread, not one of its
    own: a second thread that runs parallel torch kernels gives it a second OpenMP pool, and
    with more OpenMP threads than cores libgomp stops spinning and puts its workers to sleep
    between kernels, which cost big batches about a third of their speed on two cores."""
    cpu, away = time.process_time(), t._away
    try:
        X, Y, gen = t._train.X, t._train.Y, t._noise_gen
        per_piece = max(1, t._eval_set.chunk // (3 * NOISE_BATCH))  # batches at once: ~a chunk's work
        b_noise = noise.estimate(t.model, X, Y, full_g2, NOISE_BATCH, NOISE_DRAWS, gen, per_piece, t._between)
        if math.isfinite(b_noise):
            t.noise = (t.step, b_noise)
            t._emit(NoiseEstimate(t.step, b_noise), defer=True)
    except StopRequestedError:
        raise
    except Exception:  # the estimate is a figure on the page: never worth the run
        log.exception("noise-scale estimate failed")
    finally:
        now = time.process_time()
        t._noise_budget.estimated(pass_cost + now - cpu - (t._away - away), now)


def _grad_direction(t: Trainer, full_grad: list[torch.Tensor] | None) -> None:
    """After the evaluation (and its noise estimate): the gradient-direction pass, with the
    evaluation's full-split gradient when it made one (diagnosing.py says which evaluations)."""
    cpu, away = time.process_time(), t._away
    try:
        b_noise = t.noise[1] if t.noise is not None else math.nan
        d = t._diag.direction(t.model, t.step, full_grad, b_noise, t.hparams.batch_size, t._between)
        t._emit(d, defer=True)
    except StopRequestedError:
        raise
    except Exception:  # a figure on the page: never worth the run
        log.exception("gradient-direction pass failed")
    finally:
        now = time.process_time()
        t._diag.grads.done(now - cpu - (t._away - away), now)
