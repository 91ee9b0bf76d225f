"""Learning-rate schedules: the rate of each step from the base rate the slider sets.

constant                  lr
step   (at N, factor f)   lr before step N, lr * f from step N on  (the lecture: 0.1 -> 0.01 at 100,000)
cosine (min_lr m)         m + (lr - m) * (1 + cos(pi * step / max_steps)) / 2
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True)
class Schedule:
    kind: Literal["constant", "step", "cosine"] = "constant"
    at: int = 0  # step: the first step at the lower rate
    factor: float = 0.1  # step: the rate is multiplied by this from `at` on
    min_lr: float = 0.0  # cosine: the rate at max_steps

    def lr(self, base: float, step: int, max_steps: int) -> float:
        if self.kind == "step":
            return base * self.factor if step >= self.at else base
        if self.kind == "cosine":
            progress = min(step / max_steps, 1.0)
            return self.min_lr + (base - self.min_lr) * 0.5 * (1.0 + math.cos(math.pi * progress))
        return base

    def public(self) -> dict[str, object]:
        if self.kind == "step":
            return {"kind": "step", "at": self.at, "factor": self.factor}
        if self.kind == "cosine":
            return {"kind": "cosine", "min_lr": self.min_lr}
        return {"kind": "constant"}
