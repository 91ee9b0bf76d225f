import math

import numpy as np
import pytest

from backend.core.lrfind import LrFindSpec, rates, smooth, sweep, valley


def test_rates_are_exponential() -> None:
    lrs = rates(LrFindSpec(1e-3, 1.0, 4))
    assert lrs == pytest.approx([1e-3, 1e-2, 1e-1, 1.0])


def test_smooth_is_a_debiased_ema() -> None:
    assert smooth([2.0, 2.0, 2.0]) == pytest.approx([2.0, 2.0, 2.0])
    s = smooth([1.0, 3.0], beta=0.5)
    assert s == pytest.approx([1.0, (0.25 * 1 + 0.5 * 3) / 0.75])


def test_valley_on_a_typical_curve() -> None:
    """Flat, then falling steadily from index 200 to 700, then blowing up: halfway down the fall."""
    x = np.arange(1000)
    curve = np.where(x < 200, 5.0, np.where(x < 700, 5.0 - (x - 200) * 0.006, 2.0 + (x - 700) * 0.05))
    at = valley(curve.tolist())
    assert at is not None and 430 <= at <= 470


def test_valley_needs_points() -> None:
    assert valley([1.0, 0.5]) is None
    assert valley([3.0, 2.0, 1.0, math.inf]) is not None  # a final blow-up is cut off


def test_sweep_stops_at_four_times_the_best() -> None:
    seen: list[float] = []

    def step(lr: float) -> float:  # a loss that falls with lr, then explodes past lr = 0.1
        return 3.0 - math.log10(lr) * 0.1 if lr < 0.1 else 3.0 * (lr / 0.1) ** 8

    def progress(lrs: list[float], losses: list[float]) -> None:
        seen.extend(lrs)

    r = sweep(step, LrFindSpec(1e-3, 10.0, 500), progress, lambda: False, step=7, batch_size=32, progress_every=0)
    assert r.stopped_early and r.lr[-1] < 10.0 and r.step == 7
    assert seen == r.lr
    assert r.suggestion is not None and r.suggestion < 0.1
    interrupted = sweep(step, LrFindSpec(), progress, lambda: True, step=0, batch_size=32)
    assert interrupted.lr == [] and interrupted.suggestion is None


def test_the_suggestion_has_three_significant_digits() -> None:
    """What the page shows is what Apply sets: 0.0178, not 0.017752080117176352 (issue 22)."""

    def step(lr: float) -> float:
        return 3.0 - math.log10(lr) * 0.1 if lr < 0.1 else 3.0 * (lr / 0.1) ** 8

    r = sweep(step, LrFindSpec(1e-3, 10.0, 500), lambda lrs, losses: None, lambda: False, step=0, batch_size=32)
    assert r.suggestion is not None and r.suggestion not in r.lr  # the sweep's rates have every digit
    assert r.suggestion == float(f"{r.suggestion:.3g}")
    assert min(r.lr, key=lambda x: abs(x - r.suggestion)) == pytest.approx(r.suggestion, rel=5e-3)
