"""Dependencies: the long-lived objects built in the lifespan, and path lookups."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, HTTPException
from fastapi.exceptions import RequestValidationError
from starlette.requests import HTTPConnection

from backend.server.config import Settings
from backend.server.datasets import DatasetRegistry
from backend.server.registry import Run, RunRegistry


def get_registry(conn: HTTPConnection) -> RunRegistry:
    registry: RunRegistry = conn.app.state.registry
    return registry


def get_settings(conn: HTTPConnection) -> Settings:
    settings: Settings = conn.app.state.settings
    return settings


def get_datasets(conn: HTTPConnection) -> DatasetRegistry:
    datasets: DatasetRegistry = conn.app.state.registry.datasets
    return datasets


RegistryDep = Annotated[RunRegistry, Depends(get_registry)]
DatasetsDep = Annotated[DatasetRegistry, Depends(get_datasets)]
SettingsDep = Annotated[Settings, Depends(get_settings)]


async def get_run(run_id: str, registry: RegistryDep) -> Run:
    """`current` names the newest run."""
    run = await registry.find(run_id)
    if run is None:
        raise HTTPException(404, "no runs yet" if run_id == "current" else f"no run with id {run_id!r}")
    return run


async def get_current_run(registry: RegistryDep) -> Run:
    return await get_run("current", registry)


RunDep = Annotated[Run, Depends(get_run)]
CurrentRunDep = Annotated[Run, Depends(get_current_run)]


def batch_size_error(batch_size: int | None, run: Run, where: tuple[str, ...]) -> RequestValidationError | None:
    """The one bound that depends on the data: batch_size <= training examples."""
    limit = run.trainer.train_examples
    if batch_size is None or batch_size <= limit:
        return None
    msg = f"Input should be at most {limit:,}, the number of training examples"
    return RequestValidationError(
        [{"type": "less_than_equal", "loc": (*where, "batch_size"), "msg": msg, "input": batch_size}]
    )
