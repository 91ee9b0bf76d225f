"""Which evaluations bring a gradient noise-scale estimate.

The estimate's exact full-split gradient shares the evaluation's pass over the distinct contexts
(evaluate.py), and its 16 small batches add about a pass more: together a pass or two on top of
the evaluation. Every evaluation cannot afford that when evaluations come close together, so:

- the first evaluation a trainer makes, and the last of a run, bring one;
- any other brings one when the estimates stay within SHARE of the trainer's CPU time since the
  last one ended;
- and at least every EVERY-th evaluation brings one, as long as that keeps the estimates within
  CEILING of that time (it does unless evaluations come every few steps).

So a lecture run evaluating every 1,000 steps has an estimate at least every third evaluation,
whatever the optimizer and however busy the machine. Times are CPU seconds of the trainer's
process, not wall time: another process that slows the machine slows the estimate and the
training alike, and does not starve the page of estimates (issue 10: 6 of 167 evaluations had
one, measured in wall time, while libgomp's threads waited on a busy core).
"""

from __future__ import annotations

from dataclasses import dataclass

SHARE = 0.05
EVERY = 3
CEILING = 0.2


@dataclass
class NoiseBudget:
    cost: float = 0.0  # CPU seconds the last estimate added to its evaluation
    ended: float | None = None  # process CPU time when it ended (None: none yet)
    plain: float | None = None  # CPU seconds of the last evaluation without one
    without: int = 0  # evaluations since the last estimate

    def due(self, now: float, last: bool) -> bool:
        """Whether the evaluation about to start (at process CPU time `now`; `last`: the run's
        last) brings an estimate."""
        if self.ended is None or last:
            return True
        spent = now - self.ended
        if spent * SHARE >= self.cost:
            return True
        return self.without >= EVERY - 1 and spent * CEILING >= self.cost

    def went_without(self, pass_cpu: float) -> None:
        """An evaluation without an estimate took `pass_cpu` CPU seconds."""
        self.plain = pass_cpu
        self.without += 1

    def extra(self, pass_cpu: float) -> float:
        """What computing the gradient added to a pass of `pass_cpu` CPU seconds: the pass less a
        plain one (all of it before a plain one was timed)."""
        return max(0.0, pass_cpu - (self.plain or 0.0))

    def estimated(self, cost: float, now: float) -> None:
        """An estimate that cost `cost` CPU seconds ended at process CPU time `now`."""
        self.cost, self.ended, self.without = max(0.0, cost), now, 0
