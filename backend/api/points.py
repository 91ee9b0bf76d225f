"""What an overlay draws of a run: its steps in a range as history.py's groups (every step while
they fit, else each group's minimum and maximum), with its evaluations and changes.

Each answer reads the run's whole stored history (~1 MB for 200,000 steps) and groups it: a few
milliseconds a run, and the compare view asks it of up to 20 runs each time it opens. A run's
history is written only while the run is live in the registry, so the answers for runs that are
not live are kept (the last KEPT), each under the registry's `settled` token it was read with:
valid until any run goes live. They are kept as JSON, as they are sent: writing 20 runs' points
out again for each open took ~8 ms of the event loop (~85 ms on the clock while two runs train),
which every other request of the opening page waited behind.
"""

from __future__ import annotations

import json
from bisect import bisect_left, bisect_right
from collections import OrderedDict
from collections.abc import Sequence
from operator import itemgetter

import numpy as np
from pydantic import TypeAdapter

from backend.api.schemas import PointsPublic, RunPublic
from backend.runs.registry import RunRegistry
from backend.store.records import Eval, RunRecord
from backend.streaming.export import HistoryData
from backend.streaming.history import Points, eval_extremes, range_points
from backend.streaming.messages import eval_row, loss_list, sig_list

KEPT = 48  # answers: two comparisons of 20 runs and some zooms (~25 KB of JSON each at 650 points)

Key = tuple[str, int, int, int, int]  # run id, settled token, start, end, points
PointsJson = bytes  # a PointsPublic, written as JSON
POINTS_JSON = TypeAdapter(PointsPublic)
STEP = itemgetter(0)  # an evaluation's step


class RunPoints:
    """The runs' points, read from the store or kept."""

    def __init__(self, registry: RunRegistry, kept: int = KEPT) -> None:
        self.registry = registry
        self.kept = kept
        self._answers: OrderedDict[Key, PointsJson] = OrderedDict()
        self.reads = 0  # answers read from the store (the others were kept, or live: from_memory)
        self.from_memory = 0  # answers of live runs drawn from what their channels hold

    async def of(self, record: RunRecord, start: int, end: int | None, points: int) -> PointsJson:
        """The run's steps in [start, end] (end: its step by default), in at most `points` points."""
        return (await self.of_runs([record], start, end, points))[0]

    async def of_runs(self, records: list[RunRecord], start: int, end: int | None, points: int) -> list[PointsJson]:
        """`of` for several runs: live ones from memory where they can be, the histories of the
        rest not kept read in one go (one thread hop: each costs milliseconds to hundreds of them
        when the server shares its cores with training runs)."""
        stops = [end if end is not None else r.step for r in records]
        keys = [self._key(r.id, start, stop, points) for r, stop in zip(records, stops, strict=True)]
        answers: list[PointsJson | None] = [self._kept(k) for k in keys]
        for i, a in enumerate(answers):  # live runs, drawn from their buckets where those suffice
            if a is None and (live := self._from_memory(records[i].id, start, stops[i], points)) is not None:
                answers[i] = live
        todo = [i for i, a in enumerate(answers) if a is None]
        read = await self.registry.histories([records[i] for i in todo], buckets=True) if todo else []
        for i, data in zip(todo, read, strict=True):
            self.reads += 1
            answers[i] = answer = self._answer(data, start, stops[i], points)
            self._keep(keys[i], records[i].id, answer)
        return [a for a in answers if a is not None]

    def _from_memory(self, rid: str, start: int, stop: int, points: int) -> PointsJson | None:
        """A live run's answer from what its channel holds, when its buckets are at least as many
        as the groups asked for in the range (the view of a whole run, not a close zoom): no
        store read, no thread hop. A run training for hours has millions of stored steps, which
        each open read (~0.2-0.9 s with two runs training, at 1.2 M steps)."""
        data = self.registry.live_history(rid)
        if data is None or data.buckets is None:
            return None
        width, last = data.buckets.width, min(stop, data.buckets.n_steps)
        if -(-last // width) - start // width < points // 2:  # buckets holding steps start .. last - 1
            return None
        self.from_memory += 1
        return self._answer(data, start, stop, points)

    def _key(self, rid: str, start: int, stop: int, points: int) -> Key | None:
        token = self.registry.settled(rid)
        return (rid, token, start, stop, points) if token is not None else None

    def _kept(self, key: Key | None) -> PointsJson | None:
        if key is None or (kept := self._answers.get(key)) is None:
            return None
        self._answers.move_to_end(key)
        return kept

    def _keep(self, key: Key | None, rid: str, answer: PointsJson) -> None:
        if key is None or self.registry.settled(rid) != key[1]:  # live, or something went live meanwhile
            return
        self._answers[key] = answer
        while len(self._answers) > self.kept:
            self._answers.popitem(last=False)

    @staticmethod
    def _answer(data: HistoryData, start: int, stop: int, points: int) -> PointsJson:
        p = _points(data, start, stop, points)
        answer = PointsPublic(  # validated once: ~1.5 ms for 650 points, a third of an answer
            step=p.steps,
            loss=loss_list(p.losses, 4),
            lr=sig_list(p.lrs, 3),
            time=loss_list(p.times, 2),
            evals=[eval_row(*e) for e in evals_in(data.evals, start, stop, points)],  # as the channel's
            changes=data.changes,
            start=start,
            end=stop,
        )
        return POINTS_JSON.dump_json(answer)


def evals_in(evals: Sequence[Eval], start: int, stop: int, limit: int) -> list[Eval]:
    """The evaluations in [start, stop] (`evals` in step order): every one while they are
    no more than `limit`, else the lowest and the highest dev loss of each of (limit - 1) / 2 equal
    groups of them, and the last (a run evaluated every 1,000 steps for hours has thousands: a dev
    line the chart cannot show, which each open of the compare view validated and sent). The best
    survives. Only the evaluations kept are taken: a live run's are read where they are."""
    lo, hi = bisect_left(evals, start, key=STEP), bisect_right(evals, stop, key=STEP)
    n = hi - lo
    if n <= limit:
        return list(evals[lo:hi])
    keep = np.union1d(eval_extremes(evals[lo:hi], max((limit - 1) // 2, 1), (2,)), [n - 1])  # in step order
    return [evals[lo + i] for i in keep.tolist()]


def _points(data: HistoryData, start: int, stop: int, points: int) -> Points:
    """The stored steps' points, then (a run past the steps stored one by one) its buckets' from
    where the stored steps end: the points shared in proportion to the steps each covers."""
    stored = data.chunks[-1].first + data.chunks[-1].n if data.chunks else 0
    if data.buckets is None or stop <= stored:
        return range_points(data.chunks, start, stop, points)
    mid = max(start, stored)
    share = round(points * (mid - start) / max(stop - start, 1))
    a = range_points(data.chunks, start, mid, max(share, 2)) if mid > start else Points([], [], [], [])
    b = data.buckets.points(max(points - share, 2), mid, stop)
    return Points(a.steps + b.steps, a.losses + b.losses, a.lrs + b.lrs, a.times + b.times)


def runs_points_json(runs: list[tuple[RunPublic, PointsJson]], missing: list[str]) -> bytes:
    """A RunsPointsPublic as JSON, the points put in as they are kept (not read back and written
    out again): {"runs": [{"run": ..., "points": ...}, ...], "missing": [...]}."""
    items = b",".join(b'{"run":%s,"points":%s}' % (run.model_dump_json().encode(), points) for run, points in runs)
    return b'{"runs":[%s],"missing":%s}' % (items, json.dumps(missing).encode())
