"""GET /api/runs/{id}/diagnostics: a run's stored diagnostics in a range of steps (issue 23).
Blocking (store reads): called in a thread."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from backend.store.diagnostics import SCALARS, columns, thinned
from backend.store.store import Store

MAX_POINTS = 2000  # points (and passes) an answer carries at most: more are thinned evenly


class DiagnosticsPublic(BaseModel):
    run_id: str
    start: int = Field(serialization_alias="from")
    stop: int | None = Field(serialization_alias="to")
    total: int = Field(description="points in the range; `points` has at most 2,000 of them, evenly spread")
    scalars: list[str] = Field(description="the columns of `points` besides `step`")
    points: dict[str, list[Any]] = Field(description="columns: `step` and each scalar, one value per point")
    latest: dict[str, Any] | None = Field(description="the latest point in the range that still has its histograms")
    gradcos: list[dict[str, Any]] = Field(description="the gradient-direction passes in the range")


def read(store: Store, run_id: str, start: int, stop: int | None) -> DiagnosticsPublic:
    store.flush()  # what is queued for the run is read too
    d = store.diagnostics
    rows = d.scalars(run_id, start, stop)
    passes = d.gradcos(run_id, start, stop)
    return DiagnosticsPublic(
        run_id=run_id,
        start=start,
        stop=stop,
        total=len(rows),
        scalars=list(SCALARS),
        points=columns([rows[i] for i in thinned(len(rows), MAX_POINTS)]),
        latest=d.latest(run_id, stop) if rows else None,
        gradcos=[passes[i] for i in thinned(len(passes), MAX_POINTS)],
    )
