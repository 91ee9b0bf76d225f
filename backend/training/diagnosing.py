"""When a trainer looks inside its network (issue 23), and the events it sends of it.

- A diagnostic point (core/diagnostics.py) is taken around one training step: the weights copied
  before it, its gradients and the update it applied after it. One is due at the first step a
  trainer takes, at the first step after each change of the hyperparameters and after each
  evaluation (but MIN_EVERY steps after the last point at the soonest), and else every `every`
  steps: sized from the measured costs so that points take at most SHARE of the trainer's CPU
  time (a point costs ~2-3 ms in a run, ~20 steps of batch 32: one every ~2,000 steps), never
  closer than MIN_EVERY steps. With the lecture's evaluation every 1,000 steps, the evaluations'
  points come first: ~2% of the CPU time. So the store, which keeps every point's scalars, has at
  most one per MIN_EVERY steps besides the changes' (store/diagnostics.py sizes them for that).
- A burst of changes (a slider dragged sends one every few steps) would bring a point each. So
  changes bring their points from a credit: BURST points at most, one more earned every `gap`
  steps (sized like `every`, so that a burst's points take at most BURST_SHARE of the CPU time
  while it lasts; MIN_STRETCH to MIN_EVERY steps). A change with a point in credit has it at its
  very step; one without has it at the step that earns it, and that point shows the values of
  the latest change by then. So a burst costs BURST points and one per `gap` steps, and its last
  change has its point at most `gap` steps after it.
- The gradient-direction pass (core/gradcos.py) comes with evaluations: the first a trainer
  makes, then any that finds the passes within GRAD_SHARE of the CPU time since the last one
  ended (~30-45 ms a pass: with evaluations every 1,000 steps of batch 32, one every ~15).

Both only read the weights; the probe and the draws come from generators of their own, seeded
from the run's seed (and the step), never the training one: a run steps bit for bit the same
with them as without, and a resumed run draws the same probe.

Times are CPU seconds of the trainer's process, as noise_budget.py's.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

from torch import Tensor

from backend.core import diagnostics as diag
from backend.core import gradcos
from backend.core.data import Examples
from backend.core.evaluate import CountedExamples
from backend.core.model import MLP, SGDStep
from backend.training.protocol import Diagnostics, GradDirection

# With the evaluations' points (~2% at the lecture's cadence), together ~3-4% of the trainer's CPU
# time: a run with them trains at >= 0.95x the steps/s of one without, with room for the noise
# of a shared machine (the ceilings are 3% and 5% each)
SHARE = 0.01
GRAD_SHARE = 0.02
MIN_EVERY = 100
MAX_EVERY = 20_000
MIN_STRETCH = 10  # steps between two points that measure a step's cost (a forced point may come sooner)
BURST_SHARE = 0.05  # the points of a burst of changes, while it lasts
BURST = 3  # points changes may bring at once (two changes a few steps apart: one each, at its step)


@dataclass
class Cadence:
    """Which steps bring a diagnostic point."""

    next_step: int = 0  # the step the budget makes due next
    forced: bool = True  # the next step brings one whatever the budget says
    every: int = MIN_EVERY
    gap: int = MIN_EVERY  # steps that earn a change one more point of its own
    credit: tuple[float, int] = (BURST, 0)  # (points the changes may bring at once, as of that step)
    unshown: bool = False  # a change came that no point has shown yet
    since: tuple[float, int] | None = None  # (process CPU time, steps done) when the last point ended

    def due(self, step: int) -> bool:
        return self.forced or step >= self.next_step

    def force(self) -> None:
        """New hyperparameters from the next step on: a point there if the changes have a point
        in credit (BURST of them, one more earned every `gap` steps), else at the step that earns
        it (a point that comes sooner shows them too)."""
        self.unshown = True
        points, at = self.credit
        self.next_step = min(self.next_step, at + max(0, math.ceil((1 - points) * self.gap)))

    def evaluated(self, step: int) -> None:
        """An evaluation at `step`: the step after it brings a point, unless one came fewer than
        MIN_EVERY steps ago (a run that evaluates every few steps gets one every MIN_EVERY)."""
        if self.since is None or step - (self.since[1] - 1) >= MIN_EVERY:
            self.forced = True

    def took(self, cost: float, now: float, steps: int) -> None:
        """A point that cost `cost` CPU seconds ended at process CPU time `now`, `steps` steps done.
        The CPU time since the last one, less this one, over the steps between: a step's cost
        (evaluations and everything else the trainer did meanwhile included)."""
        if self.since is not None and steps - self.since[1] >= MIN_STRETCH:
            per_step = max(now - cost - self.since[0], 1e-9) / (steps - self.since[1])
            self.every = min(MAX_EVERY, max(MIN_EVERY, math.ceil(cost / SHARE / per_step)))
            self.gap = min(MIN_EVERY, max(MIN_STRETCH, math.ceil(cost / BURST_SHARE / per_step)))
        if self.unshown:  # this point shows the latest change (whichever step brought it): it spends one
            points, at = self.credit
            self.credit = (min(BURST, points + (steps - 1 - at) / self.gap) - 1, steps - 1)
            self.unshown = False
        self.next_step = steps + self.every
        self.forced = False
        self.since = (now, steps)


@dataclass
class GradBudget:
    """Which evaluations bring the gradient-direction pass."""

    cost: float = 0.0  # CPU seconds of the last pass
    ended: float | None = None  # process CPU time when it ended (None: none yet)

    def due(self, now: float) -> bool:
        return self.ended is None or (now - self.ended) * GRAD_SHARE >= self.cost

    def done(self, cost: float, now: float) -> None:
        self.cost, self.ended = max(0.0, cost), now


class Diagnoser:
    def __init__(self, seed: int, train: Examples, eval_set: CountedExamples) -> None:
        self.seed = seed
        self._train = train
        self._eval_set = eval_set  # split 0 is train: its exact gradient
        self._probe = train.X[diag.probe_rows(len(train), seed)]
        self._scratch = diag.Scratch()  # the probe's work tensors, kept from point to point
        self.points = Cadence()
        self.grads = GradBudget()

    def before(self, model: MLP) -> tuple[list[Tensor], float]:
        """The weights before the step, and the CPU seconds the copy took."""
        cpu = time.process_time()
        return diag.snapshot(model), time.process_time() - cpu

    def point(self, step: int, model: MLP, sgd: SGDStep, before: list[Tensor], cost: float) -> Diagnostics:
        """The point of step `step`, just taken by `sgd` on `model` from the weights `before`
        (`cost`: CPU seconds already spent on it)."""
        cpu = time.process_time()
        try:
            grads = diag.step_gradients(sgd)
            return Diagnostics(
                step,
                diag.diagnostic_point(
                    step, model, self._probe, grads, diag.applied_updates(model, before), self._scratch
                ),
            )
        finally:
            now = time.process_time()
            self.points.took(cost + now - cpu, now, step + 1)

    def direction(
        self,
        model: MLP,
        step: int,
        full_grad: list[Tensor] | None,
        b_noise: float,
        current: int,
        between: Callable[[], None],
    ) -> GradDirection:
        """The cosines at `step` (the full-split gradient from the evaluation's pass when it made
        one), size by size with `between()` after each (commands wait one size at most)."""
        if full_grad is None:
            full_grad = gradcos.full_gradient(model, self._eval_set, 0, between)
        G = gradcos.flat(full_grad)
        gen = gradcos.draw_generator(self.seed, step)
        sizes = sorted({*gradcos.BATCH_SIZES, current})
        out: dict[str, list[float | None]] = {"mean": [], "std": [], "min": [], "max": []}
        for i, B in enumerate(sizes):  # one size at a time draws from `gen` as one call for all would
            if i > 0:
                between()
            c = gradcos.cosines(model, self._train, G, gen, [B])
            for k, v in out.items():
                v.extend(c[k])
        return GradDirection(step, sizes, out["mean"], out["std"], out["min"], out["max"], b_noise, current)
