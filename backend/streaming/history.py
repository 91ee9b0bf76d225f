"""Every step's loss of a run, in bounded memory, downsampled without losing spikes.

Steps fall into equal-width buckets that keep their minimum and maximum (and the steps where they
occurred, with the learning rate and the training time of those steps). When the buckets run out,
neighbours merge and the width doubles, so a run of 10^8 steps costs the same few hundred
kilobytes as one of 10^4.

Past the steps the store keeps one by one (store.MAX_STORED_STEPS), this is all there is of a
run's losses: it is saved with the run (`to_bytes`) and read back when the run comes back into
memory (`from_bytes`, then `cut` to the checkpoint the run resumes from).
"""

from __future__ import annotations

import io
import math
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from backend.store.records import StepChunk

# per bucket and per extreme (min, max): its step, loss, rate and time
FIELDS = ("step", "loss", "lr", "time")


@dataclass(frozen=True)
class Points:
    steps: list[int]
    losses: list[float]
    lrs: list[float]
    times: list[float]


class LossHistory:
    def __init__(self, capacity: int = 4096) -> None:
        self.capacity = capacity
        self.width = 1  # steps per bucket
        self.n_steps = 0  # steps recorded; they are 0 .. n_steps - 1
        self.count = 0  # buckets in use
        self._time = 0.0  # training time at the end of the last step recorded
        self._lo = {f: np.zeros(capacity, dtype=np.int64 if f == "step" else np.float64) for f in FIELDS}
        self._hi = {f: np.zeros(capacity, dtype=np.int64 if f == "step" else np.float64) for f in FIELDS}
        self._empty(0, capacity)

    def _empty(self, start: int, stop: int) -> None:
        """Buckets start .. stop - 1 hold no step: a minimum of +inf and a maximum of -inf, which
        any step replaces (a diverged step, NaN or inf, counts as +inf in both)."""
        self._lo["loss"][start:stop] = np.inf
        self._hi["loss"][start:stop] = -np.inf

    def extend(
        self,
        first: int,
        losses: list[float] | np.ndarray,
        lrs: list[float] | np.ndarray | None = None,
        time: float = 0.0,
    ) -> None:
        """Steps first .. first + len(losses) - 1; `time` is the training time at the end of the
        last one (each step's time is interpolated from the previous call's). Lists (a worker's
        message) or arrays (a stored chunk, as read)."""
        if first != self.n_steps:
            raise ValueError(f"steps must be contiguous: got {first}, expected {self.n_steps}")
        n = len(losses)
        if not n:
            return
        last = first + n
        while (last - 1) // self.width >= self.capacity:
            self._halve()
        new = {
            "step": np.arange(first, last),
            # NaN and inf (a diverging step) count as the largest possible value, never as the smallest
            "loss": np.nan_to_num(np.asarray(losses, dtype=np.float64), nan=np.inf, posinf=np.inf),
            "lr": np.asarray(lrs if lrs is not None else [math.nan] * n, dtype=np.float64),
            "time": np.linspace(self._time, max(time, self._time), n + 1)[1:],
        }
        self._time = max(time, self._time)
        buckets = new["step"] // self.width
        starts = np.flatnonzero(np.r_[True, buckets[1:] != buckets[:-1]])  # segment starts
        ids = buckets[starts]
        argmin = _segment_arg(new["loss"], starts, np.minimum)
        argmax = _segment_arg(new["loss"], starts, np.maximum)
        if first % self.width != 0:  # the first segment continues the last, partly filled bucket
            b = ids[0]
            if new["loss"][argmin[0]] < self._lo["loss"][b]:
                for f in FIELDS:
                    self._lo[f][b] = new[f][argmin[0]]
            if new["loss"][argmax[0]] > self._hi["loss"][b]:
                for f in FIELDS:
                    self._hi[f][b] = new[f][argmax[0]]
            ids, argmin, argmax = ids[1:], argmin[1:], argmax[1:]
        for f in FIELDS:
            self._lo[f][ids] = new[f][argmin]
            self._hi[f][ids] = new[f][argmax]
        self.n_steps = last
        self.count = (last - 1) // self.width + 1

    def _halve(self) -> None:
        n = self.count
        pairs = (n + 1) // 2
        a, b = np.arange(0, n, 2), np.minimum(np.arange(1, n + 1, 2), n - 1)  # b == a when n is odd
        take_lo = self._lo["loss"][b] < self._lo["loss"][a]
        take_hi = self._hi["loss"][b] > self._hi["loss"][a]
        for f in FIELDS:
            self._lo[f][:pairs] = np.where(take_lo, self._lo[f][b], self._lo[f][a])
            self._hi[f][:pairs] = np.where(take_hi, self._hi[f][b], self._hi[f][a])
        self._empty(pairs, n)
        self.count = pairs
        self.width *= 2

    def cut(self, n: int, time: float) -> None:
        """Forget the steps from n on (a run resumed from its checkpoint at step n; `time`: its
        training time there). Buckets past n go; the bucket that holds step n keeps its extremes,
        which may come from steps at or past n: the run resumes exactly, so it computes those
        same losses again (one bucket's width at most, drawn a little early)."""
        if n > self.n_steps:
            raise ValueError(f"cannot cut at step {n}: only {self.n_steps} steps are recorded")
        count = (n - 1) // self.width + 1 if n else 0
        self._empty(count, self.count)
        self.count, self.n_steps, self._time = count, n, time

    def skip_to(self, n: int, time: float) -> None:
        """Go on at step n with nothing recorded between (steps lost: the buckets between stay
        empty and are not drawn)."""
        if n < self.n_steps:
            raise ValueError(f"cannot skip back to step {n}: {self.n_steps} steps are recorded")
        while n and (n - 1) // self.width >= self.capacity:
            self._halve()
        self.n_steps, self._time = n, max(time, self._time)
        self.count = max(self.count, (n - 1) // self.width + 1 if n else 0)

    def copy(self) -> LossHistory:
        h = LossHistory(self.capacity)
        h.width, h.n_steps, h.count, h._time = self.width, self.n_steps, self.count, self._time
        for f in FIELDS:
            h._lo[f][:], h._hi[f][:] = self._lo[f], self._hi[f]
        return h

    def to_bytes(self) -> bytes:
        """The whole state, for the store (an .npz: ~260 KB when every bucket is in use)."""
        out = io.BytesIO()
        n = self.count
        arrays: dict[str, np.ndarray] = {
            "meta": np.array([self.capacity, self.width, self.n_steps, n], dtype=np.int64),
            "time": np.array([self._time]),
        }
        for f in FIELDS:
            arrays[f"lo_{f}"], arrays[f"hi_{f}"] = self._lo[f][:n], self._hi[f][:n]
        np.savez(out, allow_pickle=False, **arrays)
        return out.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes) -> LossHistory:
        """What to_bytes wrote; ValueError if it is not that (damaged)."""
        try:
            with np.load(io.BytesIO(data), allow_pickle=False) as z:
                capacity, width, n_steps, n = (int(v) for v in z["meta"])
                h = cls(capacity)
                h.width, h.n_steps, h.count, h._time = width, n_steps, n, float(z["time"][0])
                for f in FIELDS:
                    h._lo[f][:n] = z[f"lo_{f}"]
                    h._hi[f][:n] = z[f"hi_{f}"]
        except (OSError, EOFError, KeyError, ValueError, zipfile.BadZipFile) as e:
            raise ValueError(f"not a saved loss history: {e}") from e
        return h

    def points(self, limit: int = 2000, start: int = 0, stop: int | None = None) -> Points:
        """At most `limit` points in step order, of steps start .. stop - 1 (all by default): every
        step while they fit, else the minimum and the maximum of each of at most limit/2 equal
        groups of buckets."""
        b0 = start // self.width
        b1 = self.count if stop is None else min(self.count, -(-stop // self.width))  # (b0 .. b1-1)
        n = b1 - b0
        if n <= 0:
            return Points([], [], [], [])
        lo_loss, hi_loss = self._lo["loss"][b0:b1], self._hi["loss"][b0:b1]
        if self.width == 1 and n <= limit:
            held = hi_loss != -np.inf  # (n,) not an empty bucket (a gap: skip_to)
            lo = {f: self._lo[f][b0:b1][held].tolist() for f in FIELDS}
            return Points(lo["step"], lo["loss"], lo["lr"], lo["time"])
        group = math.ceil(n / max(limit // 2, 1))
        starts = np.arange(0, n, group)
        imin = b0 + _segment_arg(lo_loss, starts, np.minimum)  # (G,) bucket of each group's minimum
        imax = b0 + _segment_arg(hi_loss, starts, np.maximum)
        lo_first = self._lo["step"][imin] <= self._hi["step"][imax]
        out = {}
        for f in FIELDS:
            lo, hi = self._lo[f][imin], self._hi[f][imax]
            out[f] = np.stack([np.where(lo_first, lo, hi), np.where(lo_first, hi, lo)], 1).ravel()
        keep = np.r_[True, out["step"][1:] != out["step"][:-1]]  # a group whose min and max are one step
        keep &= np.repeat(self._hi["loss"][imax] != -np.inf, 2)  # not a group of empty buckets (a gap)
        keep &= out["step"] >= start  # the first and last buckets may hold steps outside
        if stop is not None:
            keep &= out["step"] < stop
        return Points(*(out[f][keep].tolist() for f in FIELDS))


def _segment_arg(vals: np.ndarray, starts: np.ndarray, ufunc: np.ufunc) -> np.ndarray:
    """Index of the min (ufunc=np.minimum) or max of each segment vals[starts[i]:starts[i+1]]."""
    extreme = ufunc.reduceat(vals, starts)  # (S,)
    seg = np.repeat(np.arange(len(starts)), np.diff(np.r_[starts, len(vals)]))  # (N,) segment of each
    hit = np.flatnonzero(vals == extreme[seg])
    first_hit = np.unique(seg[hit], return_index=True)[1]
    return hit[first_hit]


def range_points(chunks: list[StepChunk], start: int, end: int, limit: int = 2000) -> Points:
    """The stored steps in [start, end) (chunks in order), at most `limit` points: every step while
    they fit, else the minimum and the maximum of each of limit/2 equal groups of steps (spikes
    survive). Each step's training time is interpolated within its chunk.

    The compare view asks this of 20 runs of 200,000 steps as it opens: the groups' extremes come
    from the losses alone (one float32 array), and steps, rates and times are made only for the
    points kept."""
    parts = []  # (chunk, its time before it, first kept index in it, how many kept)
    t_prev = 0.0
    for c in chunks:
        lo, hi = max(start - c.first, 0), min(end - c.first, c.n)
        if lo < hi:
            parts.append((c, t_prev, lo, hi - lo))
        t_prev = c.time_end
    if not parts:
        return Points([], [], [], [])
    loss = np.concatenate([c.losses[lo : lo + k] for c, _, lo, k in parts])  # (N,) float32
    loss = np.nan_to_num(loss, nan=np.inf, posinf=np.inf)  # a diverged step is a maximum
    n = len(loss)
    idx = group_extremes(loss, loss, limit // 2) if n > limit else np.arange(n)
    # each kept index -> its chunk, and its place in that chunk
    offsets = np.cumsum([0] + [k for *_, k in parts])  # (P+1,)
    which = np.searchsorted(offsets, idx, side="right") - 1
    local = idx - offsets[which] + np.array([lo for _, _, lo, _ in parts])[which]  # index in its chunk
    first = np.array([c.first for c, *_ in parts])[which]
    t0 = np.array([t for _, t, _, _ in parts])[which]
    t1 = np.array([c.time_end for c, *_ in parts])[which]
    size = np.array([c.n for c, *_ in parts])[which]
    lr = np.concatenate([c.lrs[lo : lo + k] for c, _, lo, k in parts])[idx]
    time = t0 + (t1 - t0) * (local + 1) / size  # as np.linspace(t0, t1, size + 1)[1:]
    step = first + local
    return Points(step.tolist(), loss[idx].astype(np.float64).tolist(), lr.astype(np.float64).tolist(), time.tolist())


def group_extremes(lows: np.ndarray, highs: np.ndarray, groups: int) -> np.ndarray:
    """Sorted indices of the first minimum of `lows` and the first maximum of `highs` in each of
    `groups` equal groups of consecutive values (both arrays as long; a value to pass over is +inf
    in `lows`, -inf in `highs`)."""
    n = len(lows)
    at_low = _group_arg(lows, n, groups, np.argmin, np.inf)
    at_high = _group_arg(highs, n, groups, np.argmax, -np.inf)
    return np.unique(np.concatenate([at_low, at_high]))


def eval_extremes(evals: Sequence[Sequence[float | None]], groups: int, columns: tuple[int, ...]) -> np.ndarray:
    """Sorted indices of each group's first lowest and highest value in each of `columns` of the
    evaluations ([step, train loss, dev loss, b_noise] rows), a None passed over: what a chart
    that keeps a minimum and a maximum per bucket needs of them."""
    picks = []
    for col in columns:
        vals = np.array([e[col] for e in evals], dtype=np.float64)  # (n,) None -> NaN
        picks.append(group_extremes(np.nan_to_num(vals, nan=np.inf), np.nan_to_num(vals, nan=-np.inf), groups))
    return np.unique(np.concatenate(picks))


def _group_arg(vals: np.ndarray, n: int, groups: int, arg: Any, pad: float) -> np.ndarray:
    """Index of the first minimum (arg=np.argmin, pad=inf) or maximum (np.argmax, -inf) of each
    group of ceil(n / groups) consecutive values, the last group shorter."""
    width = math.ceil(n / groups)
    rows = math.ceil(n / width)
    padded = np.full(rows * width, pad, dtype=vals.dtype)  # the padding never wins: it comes last
    padded[:n] = vals
    at: np.ndarray = arg(padded.reshape(rows, width), axis=1)  # (rows,) within each group
    return at + np.arange(rows) * width
