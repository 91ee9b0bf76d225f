"""Sweeps: many runs from one request, queued and trained side by side; their outcome compared."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, Response

from backend.api.deps import RegistryDep, check_batch_size
from backend.api.responses import CONFLICT, NOT_FOUND
from backend.api.schemas import RunPublic
from backend.api.sweepschemas import SweepCreate, SweepPublic
from backend.runs import sweeps
from backend.runs.registry import RunRegistry
from backend.store.records import RunRecord, SweepRecord

router = APIRouter(prefix="/api", tags=["sweeps"])


def public(registry: RunRegistry, s: SweepRecord, runs: list[RunRecord]) -> SweepPublic:
    return SweepPublic(
        id=s.id,
        name=s.name,
        status=sweeps.status(s.stopped, [r.status.value for r in runs]),
        swept=s.swept,
        created_at=s.created_at,
        request=s.spec,
        runs=[RunPublic.model_validate(registry.public(r)) for r in runs],
    )


@router.post("/sweeps", status_code=201, responses=NOT_FOUND | CONFLICT)
async def create_sweep(registry: RegistryDep, body: SweepCreate) -> SweepPublic:
    """Runs for every combination of `grid`'s values (lists of lr, batch_size, optimizer, init,
    n_embd, n_hidden, block_size, schedule, seed) over `base`, or for `lr_range`'s log-spaced
    rates: at most 64. They queue and train at most MAKEMORE_MAX_RUNNING at a time."""
    grid: dict[str, list[Any]] = body.grid.model_dump(exclude_none=True) if body.grid else {}
    if body.lr_range is not None:  # with grid.lr too: the rates of both
        rates = sweeps.lr_values(body.lr_range.min, body.lr_range.max, body.lr_range.n)
        grid = {**grid, "lr": sorted(set(rates) | set(grid.get("lr", [])))}
    grid = {k: [v.model_dump() if hasattr(v, "model_dump") else v for v in vs] for k, vs in grid.items()}
    ds = registry.datasets.record(body.base.dataset)
    if ds is None:
        raise HTTPException(404, f"base.dataset: no dataset with id {body.base.dataset!r} (see GET /api/datasets)")
    for b in grid.get("batch_size", [body.base.batch_size]):
        check_batch_size(b, ds.train_examples)
    try:
        record, runs = await registry.create_sweep(body.base, grid, body.name, body.model_dump(mode="json"))
    except ValueError as e:  # too many runs: what the schema cannot say
        raise HTTPException(409, f"grid: {e}") from None
    return public(registry, record, runs)


@router.get("/sweeps")
async def list_sweeps(
    registry: RegistryDep,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    offset: Annotated[int, Query(ge=0, le=10**9)] = 0,
) -> list[SweepPublic]:
    """Sweeps, newest first, with their runs."""
    return [public(registry, s, runs) for s, runs in await registry.sweep_list(limit, offset)]


@router.get("/sweeps/{sweep_id}", responses=NOT_FOUND)
async def get_sweep(registry: RegistryDep, sweep_id: str) -> SweepPublic:
    return public(registry, *await registry.sweep(sweep_id))


@router.delete("/sweeps/{sweep_id}", status_code=204, responses=NOT_FOUND)
async def stop_sweep(registry: RegistryDep, sweep_id: str) -> Response:
    """Pause its runs and take the waiting ones out of the queue; they stay stored."""
    await registry.stop_sweep(sweep_id)
    return Response(status_code=204)
