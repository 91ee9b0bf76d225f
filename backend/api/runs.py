"""REST endpoints for runs: create, list, steer; sample and read the model; find the learning rate."""

from __future__ import annotations

import secrets
import time
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query

from backend.api.deps import CurrentRunDep, RegistryDep, RunDep, batch_size_error
from backend.core.lrfind import LrFindSpec
from backend.core.readout import UnknownCharacterError, next_probs, sample_names, test_loss
from backend.server.messages import lrfind_message
from backend.server.registry import Run
from backend.server.schemas import (
    EmbeddingsPublic,
    HParamsUpdate,
    LrFindCreate,
    LrFindPublic,
    LrFindStarted,
    NextPublic,
    NextQuery,
    RunCreate,
    RunPublic,
    SamplePublic,
    SampleQuery,
    TestEvalPublic,
)
from backend.training.trainer import ConflictError, Status, check_update

router = APIRouter(prefix="/api")

PATCH_TIMEOUT = 30.0  # seconds; a change waits at most for the step (or evaluation, or sweep) under way


@router.post("/runs", status_code=201, tags=["runs"])
async def create_run(registry: RegistryDep, body: RunCreate | None = None) -> RunPublic:
    """Create a run (stopping the one training now). It starts at once unless `start` is false."""
    spec = body or RunCreate()

    def check(run: Run) -> None:
        if (error := batch_size_error(spec.batch_size, run, ("body",))) is not None:
            raise error

    try:
        run = await registry.create(spec, check)
    except KeyError:
        raise HTTPException(422, f"dataset: no dataset with id {spec.dataset!r} (see GET /api/datasets)") from None
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
    """Change the learning rate (the base rate of the schedule), batch size, schedule, evaluation
    period or max_steps of a run, or pause or resume it. Applied between two steps; the answer
    shows the run once the change is in."""
    if (error := batch_size_error(body.batch_size, run, ("body",))) is not None:
        raise error
    t = run.trainer
    update = body.update(Status(body.status) if body.status else None)
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
    step = run.trainer.step
    s = sample_names(run.trainer.weights(), run.dataset, q.n, q.temperature, seed)
    return SamplePublic(names=s.names, new=s.new, split=s.split, new_share=s.new_share, seed=seed, step=step)


@router.get("/runs/{run_id}/sample", tags=["reading the model"])
def sample_run(run: RunDep, q: Annotated[SampleQuery, Query()]) -> SamplePublic:
    """Names drawn from the run's weights as they are now, each with the split it is a word of
    (`split`), or marked new if it is not in the dataset at all. The same seed gives the same
    names from the same weights."""
    return _sample(run, q)


@router.get("/sample", tags=["reading the model"])
def sample_current(run: CurrentRunDep, q: Annotated[SampleQuery, Query()]) -> SamplePublic:
    """As /api/runs/current/sample."""
    return _sample(run, q)


@router.get("/runs/{run_id}/next", tags=["reading the model"])
def next_char(run: RunDep, q: Annotated[NextQuery, Query()]) -> NextPublic:
    """The probability of each next character after `context` (its last block_size characters,
    padded with '.' as in training). Capitals are read in lower case when the dataset has none
    (`read_as`, `folded`); a character the dataset does not have is a 422 naming it."""
    step = run.trainer.step
    try:
        n = next_probs(run.trainer.weights(), run.dataset.vocab, q.context)
    except UnknownCharacterError as e:
        raise HTTPException(422, f"context: {e}") from None
    chars = list(run.dataset.vocab.chars)
    folded = n.read_as != q.context
    return NextPublic(
        context=q.context, read_as=n.read_as, folded=folded, window=n.window, chars=chars, probs=n.probs, step=step
    )


@router.post("/runs/{run_id}/evaluate-test", tags=["reading the model"])
def evaluate_test(run: RunDep) -> TestEvalPublic:
    """The exact loss on the test split, for the end of an experiment (the test split plays no
    part in training or in the evaluations)."""
    step = run.trainer.step
    weights = run.trainer.weights()
    t0 = time.perf_counter()
    counted = run.test_set()
    loss = test_loss(weights, counted)
    ms = (time.perf_counter() - t0) * 1000
    return TestEvalPublic(step=step, test_loss=loss, test_examples=counted.splits[0].n, ms=round(ms, 2))


@router.get("/runs/{run_id}/embeddings", tags=["reading the model"])
def embeddings(run: RunDep) -> EmbeddingsPublic:
    """Each character's embedding in 2-D: raw when n_embd is 2, else the first two principal
    components. As of the last evaluation; also pushed over the websocket at each one."""
    m, step = run.trainer.embeddings, run.trainer.last_eval
    if m is None or step is None:
        raise HTTPException(404, "no evaluation yet")
    return EmbeddingsPublic(step=step.step, chars=list(run.trainer.chars), x=m.x, y=m.y, method=m.method)


@router.post("/runs/{run_id}/lr-find", status_code=202, tags=["learning-rate finder"])
def lr_find(run: RunDep, body: LrFindCreate | None = None) -> LrFindStarted:
    """Sweep the learning rate exponentially from min_lr to max_lr, one step per rate, on a copy
    of the run's weights (the run pauses meanwhile and resumes after; its own weights and random
    draws are untouched). Stops early once the smoothed loss passes 4x its best. Progress streams
    over the websocket (`lrfind`, then `lrfind_done` with the suggestion)."""
    spec = body or LrFindCreate()
    if (error := batch_size_error(spec.batch_size, run, ("body",))) is not None:
        raise error
    batch = spec.batch_size or run.trainer.hparams.batch_size
    if run.trainer.status is Status.STOPPED:
        raise HTTPException(409, "the run is stopped; create a new run")
    try:
        run.trainer.submit(LrFindSpec(spec.min_lr, spec.max_lr, spec.steps, spec.batch_size))
    except ConflictError as e:
        raise HTTPException(409, str(e)) from None
    return LrFindStarted(min_lr=spec.min_lr, max_lr=spec.max_lr, steps=spec.steps, batch_size=batch)


@router.get("/runs/{run_id}/lr-find", tags=["learning-rate finder"])
def lr_find_result(run: RunDep) -> LrFindPublic:
    """The last finished sweep of this run."""
    result = run.trainer.last_lrfind
    if result is None:
        raise HTTPException(404, "no learning-rate sweep yet: POST to this address to start one")
    msg = lrfind_message(result)
    del msg["type"]
    return LrFindPublic.model_validate(msg)
