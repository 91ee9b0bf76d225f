"""Every step's loss of a run, in bounded memory, downsampled without losing spikes.

Steps fall into equal-width buckets that keep their minimum and maximum (and the steps where they
occurred). When the buckets run out, neighbours merge and the width doubles, so a run of 10^8
steps costs the same few hundred kilobytes as one of 10^4.
"""

from __future__ import annotations

import math

import numpy as np


class LossHistory:
    def __init__(self, capacity: int = 4096) -> None:
        self.capacity = capacity
        self.width = 1  # steps per bucket
        self.n_steps = 0  # steps recorded; they are 0 .. n_steps - 1
        self.count = 0  # buckets in use
        self._min_step = np.zeros(capacity, dtype=np.int64)
        self._min = np.zeros(capacity, dtype=np.float64)
        self._max_step = np.zeros(capacity, dtype=np.int64)
        self._max = np.zeros(capacity, dtype=np.float64)

    def extend(self, first: int, losses: list[float]) -> None:
        if first != self.n_steps:
            raise ValueError(f"steps must be contiguous: got {first}, expected {self.n_steps}")
        if not losses:
            return
        last = first + len(losses)
        while (last - 1) // self.width >= self.capacity:
            self._halve()
        vals = np.asarray(losses, dtype=np.float64)
        # NaN and inf (a diverging step) count as the largest possible value, never as the smallest
        vals = np.where(np.isnan(vals), np.inf, vals)
        steps = np.arange(first, last)
        buckets = steps // self.width
        starts = np.flatnonzero(np.r_[True, buckets[1:] != buckets[:-1]])  # segment starts
        ids = buckets[starts]
        argmin = _segment_arg(vals, starts, np.minimum)
        argmax = _segment_arg(vals, starts, np.maximum)
        if first % self.width != 0:  # the first segment continues the last, partly filled bucket
            b = ids[0]
            if vals[argmin[0]] < self._min[b]:
                self._min[b], self._min_step[b] = vals[argmin[0]], steps[argmin[0]]
            if vals[argmax[0]] > self._max[b]:
                self._max[b], self._max_step[b] = vals[argmax[0]], steps[argmax[0]]
            ids, argmin, argmax = ids[1:], argmin[1:], argmax[1:]
        self._min[ids], self._min_step[ids] = vals[argmin], steps[argmin]
        self._max[ids], self._max_step[ids] = vals[argmax], steps[argmax]
        self.n_steps = last
        self.count = (last - 1) // self.width + 1

    def _halve(self) -> None:
        n = self.count
        pairs = (n + 1) // 2
        a, b = np.arange(0, n, 2), np.minimum(np.arange(1, n + 1, 2), n - 1)  # b == a when n is odd
        take_b = self._min[b] < self._min[a]
        self._min[:pairs] = np.where(take_b, self._min[b], self._min[a])
        self._min_step[:pairs] = np.where(take_b, self._min_step[b], self._min_step[a])
        take_b = self._max[b] > self._max[a]
        self._max[:pairs] = np.where(take_b, self._max[b], self._max[a])
        self._max_step[:pairs] = np.where(take_b, self._max_step[b], self._max_step[a])
        self.count = pairs
        self.width *= 2

    def points(self, limit: int = 2000) -> tuple[list[int], list[float]]:
        """At most `limit` (step, loss) points in step order: every step while they fit, else the
        minimum and the maximum of each of at most limit/2 equal groups of steps."""
        n = self.count
        if self.width == 1 and n <= limit:
            return self._min_step[:n].tolist(), self._min[:n].tolist()
        group = math.ceil(n / (limit // 2))
        starts = np.arange(0, n, group)
        imin = _segment_arg(self._min[:n], starts, np.minimum)
        imax = _segment_arg(self._max[:n], starts, np.maximum)
        s_lo, v_lo = self._min_step[imin], self._min[imin]
        s_hi, v_hi = self._max_step[imax], self._max[imax]
        lo_first = s_lo <= s_hi
        steps = np.stack([np.where(lo_first, s_lo, s_hi), np.where(lo_first, s_hi, s_lo)], 1).ravel()
        vals = np.stack([np.where(lo_first, v_lo, v_hi), np.where(lo_first, v_hi, v_lo)], 1).ravel()
        keep = np.r_[True, steps[1:] != steps[:-1]]  # a group whose min and max are one step
        return steps[keep].tolist(), vals[keep].tolist()


def _segment_arg(vals: np.ndarray, starts: np.ndarray, ufunc: np.ufunc) -> np.ndarray:
    """Index of the min (ufunc=np.minimum) or max of each segment vals[starts[i]:starts[i+1]]."""
    extreme = ufunc.reduceat(vals, starts)  # (S,)
    seg = np.repeat(np.arange(len(starts)), np.diff(np.r_[starts, len(vals)]))  # (N,) segment of each
    hit = np.flatnonzero(vals == extreme[seg])
    first_hit = np.unique(seg[hit], return_index=True)[1]
    return hit[first_hit]
