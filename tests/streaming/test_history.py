import math
import random

import numpy as np
import pytest

from backend.store.records import StepChunk
from backend.streaming.history import LossHistory, Points, range_points


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


def _range_points_by_hand(chunks: list[StepChunk], start: int, end: int, limit: int) -> Points:
    """range_points's contract, one step at a time: every step in [start, end) while they fit,
    else the first minimum and the first maximum of each group of ceil(n / (limit // 2)) steps
    (NaN and infinity count as infinite: maxima), with each step's rate and interpolated time."""
    rows = []  # (step, loss, lr, time)
    t_prev = 0.0
    for c in chunks:
        for j in range(c.n):
            if start <= c.first + j < end:
                loss = float(c.losses[j])
                loss = math.inf if math.isnan(loss) else loss
                rows.append((c.first + j, loss, float(c.lrs[j]), t_prev + (c.time_end - t_prev) * (j + 1) / c.n))
        t_prev = c.time_end
    if len(rows) > limit:
        width = math.ceil(len(rows) / (limit // 2))
        keep: set[int] = set()
        for g in range(0, len(rows), width):
            group = range(g, min(g + width, len(rows)))
            keep.add(min(group, key=lambda i: (rows[i][1], i)))
            keep.add(max(group, key=lambda i: (rows[i][1], -i)))
        rows = [rows[i] for i in sorted(keep)]
    return Points(*([r[k] for r in rows] for k in range(4)))  # type: ignore[arg-type]


def test_saved_and_read_back_as_it_was() -> None:
    """Past the steps the store keeps one by one, the buckets are all there is: saved with the run
    and read back, they draw the same points and go on the same way."""
    rng = random.Random(3)
    values = [2 + rng.random() for _ in range(30_000)]
    h = LossHistory(capacity=256)
    for first in range(0, 20_000, 700):
        part = values[first : min(first + 700, 20_000)]
        h.extend(first, part, [0.1 / (1 + first)] * len(part), first / 100)
    back = LossHistory.from_bytes(h.to_bytes())
    assert (back.width, back.n_steps, back.count) == (h.width, h.n_steps, h.count)
    assert back.points(300) == h.points(300)
    for x in (h, back):
        x.extend(20_000, values[20_000:], [0.1] * 10_000, 9.0)
    assert back.points(300) == h.points(300) and back.points(5000) == h.points(5000)
    for damaged in (b"", b"junk", h.to_bytes()[:1000]):
        with pytest.raises(ValueError):
            LossHistory.from_bytes(damaged)


def test_cut_to_a_checkpoint_then_resumed_is_as_if_never_cut() -> None:
    """A run resumed from its checkpoint at step n computes the same losses again from n: cut
    there and extended again, the history is the one it would have been."""
    rng = random.Random(4)
    values = [2 + rng.random() for _ in range(50_000)]
    whole = LossHistory(capacity=256)
    whole.extend(0, values)
    h = LossHistory(capacity=256)
    h.extend(0, values[:41_000])
    h.cut(37_013, 0.0)
    assert h.n_steps == 37_013 and max(h.points(10_000).steps) < 37_013 + h.width
    h.extend(37_013, values[37_013:])
    assert h.points(300).steps == whole.points(300).steps and h.points(300).losses == whole.points(300).losses
    with pytest.raises(ValueError):
        h.cut(60_000, 0.0)


def test_a_gap_is_not_drawn() -> None:
    """Steps lost (a run past the stored steps with nothing saved of them) leave a gap: no point
    in it, none at loss 0 or infinity, and the history goes on after it."""
    for capacity, after in ((4096, 300), (64, 3000)):
        h = LossHistory(capacity=capacity)
        h.extend(0, [3.0] * 100)
        h.skip_to(2000, 5.0)
        h.extend(2000, [2.0] * after, [0.1] * after, 6.0)
        p = h.points(100_000)
        assert p.steps and not [s for s in p.steps if 100 <= s < 2000 - h.width]
        assert set(p.losses) == {3.0, 2.0} and h.n_steps == 2000 + after
        assert h.points(40).losses and set(h.points(40).losses) <= {3.0, 2.0}
    with pytest.raises(ValueError):
        h.skip_to(10, 0.0)


def test_points_of_a_range_of_steps() -> None:
    """The buckets' points of steps start .. stop - 1 only, their extremes kept, within the limit."""
    rng = random.Random(5)
    values = [2 + rng.random() for _ in range(100_000)]
    values[61_234] = 40.0
    h = LossHistory(capacity=1024)
    h.extend(0, values, [0.1] * len(values), 9.0)
    p = h.points(100, 50_000, 70_000)
    assert p.steps and all(50_000 <= s < 70_000 for s in p.steps) and len(p.steps) <= 100
    assert (61_234, 40.0) in zip(p.steps, p.losses, strict=True)
    assert h.points(100, 0, None) == h.points(100) and h.points(100, 200_000, 300_000).steps == []


def test_range_points_keeps_each_groups_extremes() -> None:
    """Random runs of chunks (gaps, NaN, infinity, ties, ranges cut anywhere) against the contract
    computed step by step."""
    rng = np.random.default_rng(7)
    for _ in range(150):
        chunks, first, t = [], int(rng.integers(0, 50)), 0.0
        for _ in range(int(rng.integers(1, 6))):
            n = int(rng.integers(1, 700))
            losses = (rng.random(n) * 3).astype(np.float32)
            losses[rng.integers(0, n, 3)] = rng.choice([np.nan, np.inf, 1.0])  # diverged steps, ties
            t += float(rng.random() * 10)
            chunks.append(StepChunk(first, losses, rng.random(n).astype(np.float32), 32, t))
            first += n + int(rng.integers(0, 3))  # a gap between chunks: steps never stored
        start = int(rng.integers(0, first))
        end = int(rng.integers(start, first + 10))
        limit = int(rng.choice([10, 11, 64, 2000]))
        got, want = range_points(chunks, start, end, limit), _range_points_by_hand(chunks, start, end, limit)
        assert got.steps == want.steps
        assert got.losses == want.losses and got.lrs == want.lrs
        assert got.times == pytest.approx(want.times, rel=1e-12)
        assert len(got.steps) <= max(limit, 1)
