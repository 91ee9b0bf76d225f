"""The learning-rate finder: start a sweep on a run, cancel it, read the last one."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, Response

from backend.api.deps import RegistryDep, check_batch_size
from backend.api.responses import CONFLICT, NOT_FOUND
from backend.api.schemas import LrFindCreate, LrFindPublic, LrFindStarted
from backend.core.lrfind import LrFindSpec

router = APIRouter(prefix="/api", tags=["learning-rate finder"])

MAX_SWEEP_EXAMPLES = 20_000_000  # steps x batch size of one sweep: ~a minute at most on a small machine


@router.post("/runs/{run_id}/lr-find", status_code=202, responses=NOT_FOUND | CONFLICT)
async def lr_find(registry: RegistryDep, run_id: str, body: LrFindCreate | None = None) -> LrFindStarted:
    """Sweep the learning rate exponentially from min_lr to max_lr, one step per rate, on a copy
    of the run's weights (a running run pauses meanwhile and resumes after; its own weights and
    random draws are untouched). Stops early once the smoothed loss passes 4x its best. Progress
    streams over the run's websocket (`lrfind`, then `lrfind_done` with the suggestion). At most
    20,000,000 examples (steps x batch size) per sweep; 409 while one is under way on this run or
    while the server runs as many sweeps as it allows at once."""
    spec = body or LrFindCreate()
    record = await registry.record(run_id)
    ds = registry.datasets.record(record.spec.dataset)
    if ds is not None:
        check_batch_size(spec.batch_size, ds.train_examples)
    batch = spec.batch_size or record.hparams.batch_size
    if spec.steps * batch > MAX_SWEEP_EXAMPLES:
        msg = f"steps x batch_size is {spec.steps * batch:,}; at most {MAX_SWEEP_EXAMPLES:,} examples per sweep"
        raise HTTPException(409, msg)
    await registry.start_sweep(record.id, LrFindSpec(spec.min_lr, spec.max_lr, spec.steps, spec.batch_size))
    return LrFindStarted(min_lr=spec.min_lr, max_lr=spec.max_lr, steps=spec.steps, batch_size=batch)


@router.delete("/runs/{run_id}/lr-find", status_code=204, responses=NOT_FOUND | CONFLICT)
async def cancel_lr_find(registry: RegistryDep, run_id: str) -> Response:
    """Stop the sweep under way (it ends with the points so far, `stopped_early`); 409 if none is."""
    await registry.cancel_sweep(run_id)
    return Response(status_code=204)


@router.get("/runs/{run_id}/lr-find", responses=NOT_FOUND)
async def lr_find_result(registry: RegistryDep, run_id: str) -> LrFindPublic:
    """The last finished sweep of this run."""
    result = await registry.last_sweep(run_id)
    if result is None:
        raise HTTPException(404, "no learning-rate sweep yet: POST to this address to start one")
    return LrFindPublic.model_validate(result)
