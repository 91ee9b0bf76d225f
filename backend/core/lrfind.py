"""The learning-rate finder: one SGD step per rate, the rate growing exponentially from min_lr to
max_lr, on a copy of the run's weights; stop once the smoothed loss passes 4x its best.

The lecture did this by hand (`lre = torch.linspace(-3, 0, 1000); lrs = 10**lre`, one step per
candidate) and read the rate off the plot. We suggest one by fastai's "valley" rule (its default
since 2021): smooth the losses with a debiased EMA (beta 0.98, as fastai and Lightning do), find
the longest stretch over which the smoothed loss keeps falling, and take the rate halfway along
it: far enough down the slope to learn fast, well short of the bottom where the instability
begins. (Lightning's rule, the steepest slope, sits at the very start of the lecture
init's plunge and suggests rates ~10x too small for it.)
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

BETA = 0.98  # smoothing of the loss curve
STOP_FACTOR = 4.0  # stop once the smoothed loss passes 4x its best
SUGGESTION_DIGITS = 3  # significant digits of the suggested rate
METHOD = "valley: the rate halfway along the longest stretch where the smoothed loss keeps falling (fastai)"


@dataclass(frozen=True)
class LrFindSpec:
    min_lr: float = 1e-3
    max_lr: float = 1.0
    steps: int = 1000
    batch_size: int | None = None  # None: the run's


@dataclass(frozen=True)
class LrFindResult:
    lr: list[float]
    loss: list[float]
    smoothed: list[float]
    suggestion: float | None
    method: str
    step: int  # the run's step when the sweep was taken
    batch_size: int
    seconds: float
    stopped_early: bool


def rates(spec: LrFindSpec) -> list[float]:
    out: list[float] = np.geomspace(spec.min_lr, spec.max_lr, spec.steps).tolist()
    return out


def smooth(losses: list[float], beta: float = BETA) -> list[float]:
    out, avg = [], 0.0
    for i, loss in enumerate(losses, start=1):
        avg = beta * avg + (1 - beta) * loss
        out.append(avg / (1 - beta**i))
    return out


def valley(smoothed: list[float]) -> int | None:
    """fastai's valley: the index halfway along the longest decreasing run of the smoothed loss
    (start + 1/3 + 1/6 of its length, as fastai writes it). lds[i] is the length of the longest
    decreasing subsequence ending at i."""
    losses = np.asarray(smoothed, dtype=np.float64)
    n = len(losses)
    if n < 3 or not np.isfinite(losses).all():
        finite = np.flatnonzero(np.isfinite(losses))
        losses = losses[: finite[-1] + 1] if len(finite) else losses[:0]
        n = len(losses)
        if n < 3:
            return None
    lds = np.ones(n, dtype=np.int64)
    for i in range(1, n):
        higher = losses[:i] > losses[i]
        if higher.any():
            lds[i] = lds[:i][higher].max() + 1
    end = int(np.argmax(lds))
    start = end - int(lds[end])
    sections = (end - start) / 3
    return max(0, start + int(sections) + int(sections / 2))


def sweep(
    train_step: Callable[[float], float],
    spec: LrFindSpec,
    on_progress: Callable[[list[float], list[float]], None],
    interrupted: Callable[[], bool],
    step: int,
    batch_size: int,
    progress_every: float = 0.1,
) -> LrFindResult:
    """Run the sweep: `train_step(lr)` does one step at that rate and returns its loss.
    `on_progress(lrs, losses)` gets the new points every `progress_every` seconds."""
    t0 = time.perf_counter()
    lrs, losses = [], []
    best, avg, sent, last_sent = math.inf, 0.0, 0, t0
    stopped = False
    for i, lr in enumerate(rates(spec), start=1):
        if interrupted():
            stopped = True
            break
        loss = train_step(lr)
        lrs.append(lr)
        losses.append(loss)
        avg = BETA * avg + (1 - BETA) * loss
        smoothed = avg / (1 - BETA**i)
        if not math.isfinite(loss) or (i > 10 and smoothed > STOP_FACTOR * best):
            stopped = True
            break
        best = min(best, smoothed)
        now = time.perf_counter()
        if now - last_sent >= progress_every:
            on_progress(lrs[sent:], losses[sent:])
            sent, last_sent = len(lrs), now
    if sent < len(lrs):
        on_progress(lrs[sent:], losses[sent:])
    smoothed_all = smooth(losses)
    at = valley(smoothed_all)
    # to 3 significant digits: what the page shows is what Apply sets (0.0178, not
    # 0.017752080117176352), and the sweep's rates are 0.7% apart: a 4th digit says nothing
    suggestion = float(f"{lrs[at]:.{SUGGESTION_DIGITS}g}") if at is not None else None
    return LrFindResult(
        lrs, losses, smoothed_all, suggestion, METHOD, step, batch_size, time.perf_counter() - t0, stopped
    )
