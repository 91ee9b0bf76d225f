import math
import random

import pytest

from backend.server.history import LossHistory


def fill(h: LossHistory, values: list[float], seed: int = 0) -> None:
    rng = random.Random(seed)
    i = 0
    while i < len(values):
        k = rng.randint(1, 50)
        h.extend(i, values[i : i + k])
        i += len(values[i : i + k])


def test_short_history_is_exact() -> None:
    h = LossHistory()
    values = [float(i % 7) for i in range(1500)]
    fill(h, values)
    p = h.points(2000)
    assert p.steps == list(range(1500)) and p.losses == values


def test_downsampling_keeps_extremes_and_bounds() -> None:
    rng = random.Random(1)
    values = [2 + rng.random() for _ in range(100_000)]
    values[12_345] = 50.0
    values[77_777] = 0.5
    h = LossHistory(capacity=512)
    fill(h, values)
    assert h.count <= 512
    p = h.points(2000)
    steps, losses = p.steps, p.losses
    assert len(steps) <= 2000
    assert steps == sorted(steps) and len(set(steps)) == len(steps)
    assert (12_345, 50.0) in zip(steps, losses, strict=True)
    assert (77_777, 0.5) in zip(steps, losses, strict=True)
    assert all(losses[i] == values[s] for i, s in enumerate(steps))  # every point is a real step
    assert max(losses) == 50.0 and min(losses) == 0.5


def test_non_finite_losses_are_maxima() -> None:
    h = LossHistory(capacity=4)
    h.extend(0, [1.0, math.nan, 2.0, 0.5, 3.0, 1.0, 1.0, 1.0, 1.0, 1.0])
    p = h.points(4)
    steps, losses = p.steps, p.losses
    assert 1 in steps and math.isinf(losses[steps.index(1)])
    assert 3 in steps


def test_steps_must_be_contiguous() -> None:
    h = LossHistory()
    h.extend(0, [1.0, 2.0])
    with pytest.raises(ValueError, match="contiguous"):
        h.extend(5, [1.0])


def test_memory_is_bounded_for_long_runs() -> None:
    h = LossHistory()
    for first in range(0, 2_000_000, 1000):
        h.extend(first, [1.0] * 1000)
    assert h.count <= h.capacity and h.n_steps == 2_000_000
    assert len(h.points(2000).steps) <= 2000


def test_rates_and_times_follow_their_steps() -> None:
    h = LossHistory(capacity=8)
    h.extend(0, [5.0, 1.0, 3.0, 3.0], [0.1, 0.2, 0.3, 0.4], time=2.0)
    h.extend(4, [9.0, 2.0, 2.0, 2.0], [0.5, 0.6, 0.7, 0.8], time=4.0)
    p = h.points(2000)
    assert p.steps == list(range(8)) and p.lrs == [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8]
    assert p.times == [0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 3.5, 4.0]
    for first in range(8, 64, 8):
        h.extend(first, [2.0] * 8, [0.01] * 8, time=4.0 + first)
    p = h.points(4)  # groups keep their extremes: step 4 (9.0) with its own rate and time
    at = p.steps.index(4)
    assert (p.losses[at], p.lrs[at], p.times[at]) == (9.0, 0.5, 2.5)
