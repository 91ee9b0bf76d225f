"""Overfitting, noticed from a run's evaluations: the dev loss rising while the training loss falls.

The rule (docs/guide.md says it to people): the best dev loss is at least PATIENCE evaluations
old, the latest dev loss is at least RISE above it and above the one PATIENCE evaluations back
(rising, not a flat plateau's noise), and the latest training loss is below the one at the best
(the model still fits its training words better: it is memorising them). A new best, or a dev
loss back within RISE of it, ends the notice.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

PATIENCE = 3  # evaluations without a new best dev loss
RISE = 0.02  # the latest dev loss this far above the best (2%)


def may_overfit(last_dev: float, best_dev: float) -> bool:
    """Whether the rule can hold at an evaluation of dev loss `last_dev` after a best of `best_dev`
    (its one test that needs no other evaluation): a run that fails it needs none read."""
    return last_dev >= best_dev * (1 + RISE)


def overfit(evals: Sequence[Sequence[float | None]]) -> dict[str, Any] | None:
    """{best_step, best_dev, since_step} while the evaluations ([step, train_loss, dev_loss, ...]
    rows, in step order) show overfitting, else None. since_step: the first evaluation of the
    current stretch at which the rule held."""
    rows = [(int(e[0] or 0), e[1], e[2]) for e in evals if e[2] is not None]
    best_i: int | None = None
    since: int | None = None
    for i, (step, train, dev) in enumerate(rows):
        assert dev is not None
        if best_i is None or dev < (rows[best_i][2] or 0.0):
            best_i = i
        best_step, best_train, best_dev = rows[best_i]
        assert best_dev is not None
        back = rows[i - PATIENCE][2] if i >= PATIENCE else None
        holds = (
            i - best_i >= PATIENCE
            and may_overfit(dev, best_dev)
            and back is not None
            and dev > back
            and train is not None
            and best_train is not None
            and train < best_train
        )
        since = (step if since is None else since) if holds else None
    if since is None or best_i is None:
        return None
    best_step, _, best_dev = rows[best_i]
    return {"best_step": best_step, "best_dev": best_dev, "since_step": since}
