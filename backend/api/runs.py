"""REST endpoints for runs and sampling."""

from __future__ import annotations

import secrets
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query

from backend.api.deps import CurrentRunDep, RegistryDep, RunDep, batch_size_error
from backend.runs import Run
from backend.sample import sample_ids
from backend.schemas import Health, HParamsUpdate, RunCreate, RunPublic, SamplePublic, SampleQuery
from backend.trainer import ConflictError, Status, Update, check_update

router = APIRouter(prefix="/api")

PATCH_TIMEOUT = 30.0  # seconds; a change waits at most for the step (or evaluation) under way


@router.get("/health", tags=["meta"])
async def health() -> Health:
    return Health()


@router.post("/runs", status_code=201, tags=["runs"])
async def create_run(registry: RegistryDep, body: RunCreate | None = None) -> RunPublic:
    """Create a run (stopping the one training now). It starts at once unless `start` is false."""
    spec = body or RunCreate()

    def check(run: Run) -> None:
        if (error := batch_size_error(spec.batch_size, run, ("body",))) is not None:
            raise error

    run = await registry.create(spec, check)
    return run.public()


@router.get("/runs", tags=["runs"])
async def list_runs(registry: RegistryDep) -> list[RunPublic]:
    """Every run kept in memory, newest first."""
    return [run.public() for run in registry.all()]


@router.get("/runs/{run_id}", tags=["runs"])
async def get_run(run: RunDep) -> RunPublic:
    """A run by id; `current` is the newest (404 when there is none)."""
    return run.public()


@router.patch("/runs/{run_id}", tags=["runs"])
def update_run(run: RunDep, body: HParamsUpdate) -> RunPublic:
    """Change the learning rate, batch size, evaluation period or max_steps of a run, or pause or
    resume it. Applied between two steps; the answer shows the run once the change is in."""
    if (error := batch_size_error(body.batch_size, run, ("body",))) is not None:
        raise error
    t = run.trainer
    update = Update(
        lr=body.lr,
        batch_size=body.batch_size,
        eval_every=body.eval_every,
        max_steps=body.max_steps,
        status=Status(body.status) if body.status else None,
    )
    try:
        check_update(t.status, t.step, t.max_steps, update)
        t.submit(update).result(PATCH_TIMEOUT)
    except ConflictError as e:
        raise HTTPException(409, str(e)) from None
    except TimeoutError:
        raise HTTPException(503, "the trainer did not take the change in time; try again") from None
    return run.public()


def _sample(run: Run, q: SampleQuery) -> SamplePublic:
    seed = q.seed if q.seed is not None else secrets.randbits(48)
    vocab = run.dataset.vocab
    ids = sample_ids(run.trainer.weights(), q.n, q.temperature, seed, max_len=run.dataset.sample_max_len)
    return SamplePublic(names=[vocab.decode(x) for x in ids], seed=seed)


@router.get("/runs/{run_id}/sample", tags=["sampling"])
def sample_run(run: RunDep, q: Annotated[SampleQuery, Query()]) -> SamplePublic:
    """Names drawn from the run's weights as they are now. The same seed gives the same names
    from the same weights."""
    return _sample(run, q)


@router.get("/sample", tags=["sampling"])
def sample_current(run: CurrentRunDep, q: Annotated[SampleQuery, Query()]) -> SamplePublic:
    """As /api/runs/current/sample."""
    return _sample(run, q)
