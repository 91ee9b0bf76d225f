"""What a run's channel keeps of its diagnostics (issue 23), for a new viewer's snapshot: the
scalars of its latest SNAPSHOT_POINTS points, as columns, its latest point whole (histograms
included) and its latest gradient-direction pass.

The snapshot's scalars are rounded to 3 significant digits (update:data, a log10, to 2 decimals)
and leave the parameters' norms out: a snapshot goes to every viewer that connects, and 200
points of them take ~30 KB so (GET /api/runs/{id}/diagnostics has every figure as stored).
"""

from __future__ import annotations

from collections import deque
from typing import Any

from backend.core.diagnostics import NAMES
from backend.store.diagnostics import SCALARS, columns, scalars

SNAPSHOT_POINTS = 200
SNAPSHOT_SCALARS = tuple(k for k in SCALARS if not k.endswith(".norm"))
_INDEX = [SCALARS.index(k) for k in SNAPSHOT_SCALARS]

Message = dict[str, Any]


def _short(key: str, v: float | int | None) -> float | int | None:
    if v is None or isinstance(v, int):
        return v
    return round(v, 2) if key.endswith("update_data") else float(f"{v:.3g}")


class DiagView:
    def __init__(self) -> None:
        self.points: deque[tuple[int, list[float | int | None]]] = deque(maxlen=SNAPSHOT_POINTS)
        self.latest: Message | None = None  # the latest point, whole (its message less its type)
        self.gradcos: Message | None = None

    def add(self, msg: Message) -> None:
        """A `diag` or `gradcos` message, as sent."""
        body = {k: v for k, v in msg.items() if k != "type"}
        if msg["type"] == "gradcos":
            self.gradcos = body
            return
        values = scalars(body)
        self.points.append((body["step"], [_short(SNAPSHOT_SCALARS[i], values[j]) for i, j in enumerate(_INDEX)]))
        self.latest = body

    def load(
        self, rows: list[tuple[int, list[float | int | None]]], latest: Message | None, gradcos: Message | None
    ) -> None:
        """As the store has them (a run that is not live, or a restart)."""
        for step, values in rows[-SNAPSHOT_POINTS:]:
            self.points.append((step, [_short(SNAPSHOT_SCALARS[i], values[j]) for i, j in enumerate(_INDEX)]))
        self.latest, self.gradcos = latest, gradcos

    def snapshot(self) -> Message:
        cols = columns([(s, v) for s, v in self.points], SNAPSHOT_SCALARS)
        return {"diag": {"points": cols, "latest": self.latest, "names": list(NAMES)}, "gradcos": self.gradcos}
