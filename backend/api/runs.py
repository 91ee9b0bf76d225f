"""REST endpoints for runs: create, list, steer, branch, delete; their history and checkpoints."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, HTTPException, Query, Response
from fastapi.responses import StreamingResponse

from backend.api.deps import PointsDep, RegistryDep, check_batch_size
from backend.api.pages import MAX_COMPARED
from backend.api.points import runs_points_json
from backend.api.responses import CONFLICT, NOT_FOUND
from backend.api.schemas import (
    BranchCreate,
    CheckpointPublic,
    HParamsUpdate,
    PointsPublic,
    RunCreate,
    RunPublic,
    RunsPointsPublic,
    SettingsSchema,
)
from backend.api.sweepschemas import SweepCreate
from backend.streaming import export
from backend.training.protocol import Status

router = APIRouter(prefix="/api", tags=["runs"])

SETTINGS = SettingsSchema(
    create=RunCreate.model_json_schema(),
    update=HParamsUpdate.model_json_schema(),
    sweep=SweepCreate.model_json_schema(),
)


@router.get("/schema")
async def settings_schema(registry: RegistryDep) -> SettingsSchema:
    """A run's settings as the server checks them: the JSON schemas of the create and the update
    bodies, with every default, bound and choice (the page builds its forms from them), and how
    many runs train at once here."""
    return SETTINGS.model_copy(update={"max_running": registry.max_running})


@router.post("/runs", status_code=201, responses=NOT_FOUND | CONFLICT)
async def create_run(registry: RegistryDep, body: RunCreate | None = None) -> RunPublic:
    """Create a run. It starts at once unless `start` is false (queued while every training slot
    is taken); the runs already training go on."""
    body = body or RunCreate()
    ds = registry.datasets.record(body.dataset)
    if ds is None:
        raise HTTPException(404, f"dataset: no dataset with id {body.dataset!r} (see GET /api/datasets)")
    check_batch_size(body.batch_size, ds.train_examples)
    record = await registry.create(body.spec(), body.start, name=body.name)
    return RunPublic.model_validate(registry.public(record))


@router.get("/runs")
async def list_runs(
    registry: RegistryDep,
    status: Status | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0, le=10**9)] = 0,
) -> list[RunPublic]:
    """Stored runs, newest first."""
    return [RunPublic.model_validate(registry.public(r)) for r in await registry.runs(status, limit, offset)]


@router.get(
    "/runs/export",
    responses=NOT_FOUND
    | {200: {"content": {"application/json": {}, "text/csv": {}}, "description": "the runs' history (streamed)"}},
)
async def export_runs(
    registry: RegistryDep,
    ids: Annotated[
        str, Query(pattern=r"^[0-9a-f]{12}(,[0-9a-f]{12}){0,63}$", description="run ids, comma-separated (at most 64)")
    ],
    format: Literal["json", "csv"] = "csv",
) -> StreamingResponse:
    """Several runs in one file, long form: a row per step (run id, run name, kind "step", step,
    loss, lr, batch_size) and a row per evaluation (kind "eval", train_loss, dev_loss). Streamed."""
    wanted = list(dict.fromkeys(ids.split(",")))
    runs = []
    for run_id in wanted:
        record = await registry.record(run_id)
        runs.append((record.id, record.name, await registry.history_data(record)))
    headers = {"Content-Disposition": f'attachment; filename="makemore-runs.{format}"'}
    if format == "csv":
        return StreamingResponse(export.long_csv(runs), media_type="text/csv", headers=headers)
    return StreamingResponse(export.long_json(runs), media_type="application/json", headers=headers)


@router.get("/runs/points", response_model=RunsPointsPublic)
async def runs_points(
    registry: RegistryDep,
    stored: PointsDep,
    ids: Annotated[
        str,
        Query(
            pattern=rf"^[0-9a-f]{{12}}(,[0-9a-f]{{12}}){{0,{MAX_COMPARED - 1}}}$",
            description=f"run ids, comma-separated (at most {MAX_COMPARED})",
        ),
    ],
    points: Annotated[int, Query(ge=10, le=10_000)] = 2000,
) -> Response:
    """Several runs whole, at once: each one's record and its points from step 0 to its step (as
    `GET /api/runs/{id}` and `GET /api/runs/{id}/points`). The compare view opens with this one
    request instead of two per run. Ids that name no stored run are listed in `missing`."""
    asked = list(dict.fromkeys(ids.split(",")))
    records = registry.records(asked)
    found = [records[i] for i in asked if i in records]
    answers = await stored.of_runs(found, 0, None, points)
    runs = [(RunPublic.model_validate(registry.public(r)), p) for r, p in zip(found, answers, strict=True)]
    return Response(runs_points_json(runs, [i for i in asked if i not in records]), media_type="application/json")


@router.get("/runs/{run_id}", responses=NOT_FOUND)
async def get_run(registry: RegistryDep, run_id: str) -> RunPublic:
    """A run by id; `current` is the run last created, branched or resumed by hand, else the
    newest outside sweeps (404 when there is none)."""
    return RunPublic.model_validate(registry.public(await registry.record(run_id)))


@router.patch("/runs/{run_id}", responses=NOT_FOUND | CONFLICT)
async def update_run(registry: RegistryDep, run_id: str, body: HParamsUpdate) -> RunPublic:
    """Change the learning rate (the base rate of the schedule), batch size, schedule, evaluation
    period or max_steps of a run, rename it, or pause or resume it (any status can be resumed,
    with max_steps raised where it is reached). A running run applies the change between two
    steps; the answer shows the run once the change is in."""
    record = await registry.record(run_id)
    ds = registry.datasets.record(record.spec.dataset)
    if ds is not None:
        check_batch_size(body.batch_size, ds.train_examples)
    update = body.update(Status(body.status) if body.status else None)
    record = await registry.update(run_id, update, name=body.name)
    return RunPublic.model_validate(registry.public(record))


@router.delete("/runs/{run_id}", status_code=204, responses=NOT_FOUND)
async def delete_run(registry: RegistryDep, run_id: str) -> Response:
    """Delete a run (stopping it first if it trains): its record, history and checkpoints."""
    await registry.delete(run_id)
    return Response(status_code=204)


@router.get("/runs/{run_id}/checkpoints", responses=NOT_FOUND)
async def list_checkpoints(registry: RegistryDep, run_id: str) -> list[CheckpointPublic]:
    """The run's checkpoints, oldest first: the latest and up to 50 earlier ones, spread evenly
    over the run (a branch can start from any of them)."""
    record = await registry.record(run_id)
    rows = await registry.checkpoints(record.id)
    return [
        CheckpointPublic(
            step=c.step, train_loss=c.train_loss, dev_loss=c.dev_loss, created_at=c.created_at, bytes=c.bytes
        )
        for c in rows
    ]


@router.post("/runs/{run_id}/branch", status_code=201, responses=NOT_FOUND | CONFLICT)
async def branch_run(registry: RegistryDep, run_id: str, body: BranchCreate | None = None) -> RunPublic:
    """A new run from one of this run's checkpoints (default: the latest), with any of `lr`,
    `batch_size`, `schedule`, `max_steps`, `eval_every` changed. Its history begins with its
    parent's up to that step; with nothing changed it continues exactly as the parent would."""
    body = body or BranchCreate()
    parent = await registry.record(run_id)
    ds = registry.datasets.record(parent.spec.dataset)
    if ds is None:
        raise HTTPException(409, "the run's dataset is gone")
    check_batch_size(body.batch_size, ds.train_examples)
    try:
        record = await registry.branch(run_id, body.step, body.update(), body.name, body.start)
    except KeyError:
        raise HTTPException(404, f"step: no checkpoint of run {parent.id} at step {body.step}") from None
    return RunPublic.model_validate(registry.public(record))


@router.get("/runs/{run_id}/points", response_model=PointsPublic, responses=NOT_FOUND)
async def run_points(
    registry: RegistryDep,
    stored: PointsDep,
    run_id: str,
    start: Annotated[int, Query(ge=0, le=10**9)] = 0,
    end: Annotated[int | None, Query(ge=1, le=10**9, description="default: the run's step")] = None,
    points: Annotated[int, Query(ge=10, le=10_000)] = 2000,
) -> Response:
    """The run's step losses from `start` to `end` (steps), in at most `points` points: every step
    while they fit, else each group's minimum and maximum (spikes survive); with its
    evaluations in that range. For overlays of many runs: ask again for the range on screen."""
    answer = await stored.of(await registry.record(run_id), start, end, points)
    return Response(answer, media_type="application/json")


@router.get(
    "/runs/{run_id}/history",
    responses=NOT_FOUND
    | {200: {"content": {"application/json": {}, "text/csv": {}}, "description": "every stored step (streamed)"}},
)
async def run_history(registry: RegistryDep, run_id: str, format: Literal["json", "csv"] = "json") -> StreamingResponse:
    """Every stored step (`step`, `loss`, `lr`, `batch_size`), every evaluation and every change.
    JSON: {"steps": {"step": [...], "loss": [...], "lr": [...], "batch_size": [...]}, "evals":
    [...], "changes": [...]}; CSV: a header line, then a row per step (with the losses of the
    evaluation made at that step, if any). Streamed. Up to 2,000,000 steps are kept one by one;
    past that, the minimum and maximum of groups of steps."""
    record = await registry.record(run_id)
    data = await registry.history_data(record)
    name = f"run-{record.id}.{format}"
    headers = {"Content-Disposition": f'attachment; filename="{name}"'}
    if format == "csv":
        return StreamingResponse(export.csv_rows(data), media_type="text/csv", headers=headers)
    return StreamingResponse(export.json_chunks(data), media_type="application/json", headers=headers)
