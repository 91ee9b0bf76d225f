"""When a trainer takes a diagnostic point (backend/training/diagnosing.py): a burst of
hyperparameter changes costs a bounded number of points (BURST at once, then one per `gap`
steps), the latest change of a burst still has a point that shows it, and a change after a quiet
stretch has its point at its very step."""

from __future__ import annotations

from backend.core.data import Dataset
from backend.training.diagnosing import BURST, MIN_EVERY, MIN_STRETCH, Cadence
from backend.training.protocol import Diagnostics, HParamsChanged, Status, Update
from tests.conftest import Recorder, wait_for
from tests.training.test_trainer import make_trainer

POINT_S, STEP_S = 0.005, 0.002  # CPU seconds of a point and of a step: gap = 0.005 / 0.05 / 0.002 = 50


def simulate(changes: set[int], steps: int) -> tuple[list[int], Cadence]:
    """The trainer's loop on a clock of its own: a change before each step of `changes`, a point
    wherever the cadence says; the steps that brought one."""
    c, now, points = Cadence(), 0.0, []
    for step in range(steps):
        if step in changes:
            c.force()
        if c.due(step):
            now += POINT_S
            c.took(POINT_S, now, step + 1)
            points.append(step)
        now += STEP_S
    return points, c


def test_a_burst_of_changes_costs_a_point_per_gap_and_its_last_has_one() -> None:
    burst = set(range(1000, 1100))  # a change before every step, 100 in a row
    points, c = simulate(burst | {3000}, 4000)
    assert c.gap in (50, 51)  # (float rounding)
    in_burst = [p for p in points if 1000 <= p <= 1099 + c.gap]
    assert len(in_burst) <= BURST + 100 // c.gap + 1, in_burst  # was 100: a point at every change
    assert set(range(1000, 1000 + BURST)) <= set(points)  # the first ones: each at its very step
    assert any(1099 <= p <= 1099 + c.gap for p in points)  # the last: with its values, soon
    assert 3000 in points  # a change long after the burst: at its very step


def test_changes_further_apart_than_the_gap_each_have_a_point_at_their_step() -> None:
    changes = set(range(1000, 2000, 60))  # 60 steps apart, the gap is 50
    points, _ = simulate(changes, 2100)
    assert changes <= set(points)


def test_the_gap_stays_within_its_bounds() -> None:
    c = Cadence()
    c.took(0.005, 1.0, 1)
    c.took(0.005, 1.0 + 1e-6, 1 + MIN_STRETCH)  # steps nearly free: the gap at its most
    assert c.gap == MIN_EVERY
    c.took(0.005, 1e6, 1 + 2 * MIN_STRETCH)  # steps very dear: the gap at its least
    assert c.gap == MIN_STRETCH


def test_a_trainer_given_100_changes_in_a_row_takes_few_points(small_dataset: Dataset) -> None:
    """100 rate changes to a running run, each sent once the last is applied (a slider dragged):
    far fewer than 100 points, and the latest change has its point within MIN_EVERY steps."""
    rec = Recorder()
    t = make_trainer(small_dataset, rec, eval_every=100_000)
    t.start(running=True)
    wait_for(lambda: t.step > 500, what="training")
    for i in range(100):
        t.submit(Update(lr=0.1 + i * 1e-4)).result(10)
    changes = [e.step for e in rec.of(HParamsChanged)][1:]  # (the first: step 0's values)
    first, last = changes[0], changes[-1]
    wait_for(lambda: t.step > last + MIN_EVERY + 10, what="training after the burst")
    t.submit(Update(status=Status.PAUSED)).result(10)
    points = [e.step for e in rec.of(Diagnostics)]
    during = [p for p in points if first <= p <= last]
    # BURST points at once, one per gap (>= MIN_STRETCH steps), one the budget brings
    assert len(during) <= BURST + (last - first) // MIN_STRETCH + 1, (first, last, during)
    assert len(during) < 50, during
    assert any(last <= p <= last + MIN_EVERY for p in points), (last, points)
