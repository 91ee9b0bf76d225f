"""What an overlay draws of a run: its steps in a range as history.py's groups (every step while
they fit, else each group's minimum and maximum), with its evaluations and changes.

Each answer reads the run's whole stored history (~1 MB for 200,000 steps) and groups it: a few
milliseconds a run, and the compare view asks it of up to 20 runs each time it opens. A run's
history is written only while the run is live in the registry, so the answers for runs that are
not live are kept (the last KEPT), each under the registry's `settled` token it was read with:
valid until any run goes live.
"""

from __future__ import annotations

from collections import OrderedDict

from backend.server.history import range_points
from backend.server.messages import loss_list, sig_list
from backend.server.registry import RunRegistry
from backend.server.schemas import PointsPublic
from backend.store.records import RunRecord

KEPT = 48  # answers: two comparisons of 20 runs and some zooms (~90 KB each in memory at 650 points)

Key = tuple[str, int, int, int, int]  # run id, settled token, start, end, points


class RunPoints:
    """The runs' points, read from the store or kept."""

    def __init__(self, registry: RunRegistry, kept: int = KEPT) -> None:
        self.registry = registry
        self.kept = kept
        self._answers: OrderedDict[Key, PointsPublic] = OrderedDict()
        self.reads = 0  # answers read from the store (the others were kept)

    async def of(self, record: RunRecord, start: int, end: int | None, points: int) -> PointsPublic:
        """The run's steps in [start, end] (end: its step by default), in at most `points` points."""
        stop = end if end is not None else record.step
        token = self.registry.settled(record.id)
        key = (record.id, token, start, stop, points) if token is not None else None
        if key is not None and (kept := self._answers.get(key)) is not None:
            self._answers.move_to_end(key)
            return kept
        data = await self.registry.history_data(record)
        self.reads += 1
        p = range_points(data.chunks, start, stop, points)
        answer = PointsPublic(  # validated once: ~1.5 ms for 650 points, a third of an answer
            step=p.steps,
            loss=loss_list(p.losses, 4),
            lr=sig_list(p.lrs, 3),
            time=loss_list(p.times, 2),
            evals=[[s, t, d, b] for s, t, d, b in data.evals if start <= s <= stop],
            changes=data.changes,
            start=start,
            end=stop,
        )
        if key is not None and self.registry.settled(record.id) == token:  # nothing went live meanwhile
            self._answers[key] = answer
            while len(self._answers) > self.kept:
                self._answers.popitem(last=False)
        return answer
