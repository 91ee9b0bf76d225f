"""A run as code: GET /api/runs/{run_id}/code, a Python script that replays it (backend/runs/code.py)."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Response

from backend.api.deps import RegistryDep
from backend.api.responses import NOT_FOUND
from backend.runs.code import generate, script_filename

router = APIRouter(prefix="/api", tags=["runs"])

_PYTHON = {"content": {"text/x-python": {}}, "description": "a Python script (torch only)"}


@router.get("/runs/{run_id}/code", responses=NOT_FOUND | {200: _PYTHON})
async def run_code(registry: RegistryDep, run_id: str) -> Response:
    """The run as a short, self-contained Python script: the lecture's training loop in plain
    PyTorch with the run's settings (block size, sizes, seed, init, optimizer, schedule) and every
    change of its timeline applied at the step it took effect. It draws the run's minibatches, so
    its losses follow the run's up to float rounding. `python makemore-….py names.txt --steps N`."""
    record = await registry.record(run_id)
    live = registry.live_history(record.id)
    if live is not None:
        changes = list(live.changes)
    else:

        def read() -> list[dict[str, object]]:
            registry.store.flush()  # changes are written in the background: read the latest
            return registry.store.history(record.id).changes

        changes = await asyncio.to_thread(read)
    ds = registry.datasets.record(record.spec.dataset)
    text = generate(record, changes, ds.name if ds is not None else None)
    headers = {"Content-Disposition": f'attachment; filename="{script_filename(record)}"'}
    return Response(text, media_type="text/x-python", headers=headers)
