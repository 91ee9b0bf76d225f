"""Dependencies: the long-lived objects built in the lifespan, and checks that need the data.

The getters are `async def`, though they only read an attribute: FastAPI runs a plain `def`
dependency on its thread pool, a thread hop before every handler that takes it, ~3 ms of the
event loop's time on this machine with nothing training and far more with two runs training
(the compare view's one request for its points waited ~0.5 s for its two dependencies).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, HTTPException
from fastapi.exceptions import RequestValidationError
from starlette.requests import HTTPConnection

from backend.api.points import RunPoints
from backend.config import Settings
from backend.runs.datasets import DatasetRegistry
from backend.runs.registry import RunRegistry


async def get_registry(conn: HTTPConnection) -> RunRegistry:
    registry: RunRegistry = conn.app.state.registry
    return registry


async def get_points(conn: HTTPConnection) -> RunPoints:
    points: RunPoints = conn.app.state.points
    return points


async def get_settings(conn: HTTPConnection) -> Settings:
    settings: Settings = conn.app.state.settings
    return settings


async def get_datasets(conn: HTTPConnection) -> DatasetRegistry:
    datasets: DatasetRegistry = conn.app.state.registry.datasets
    return datasets


RegistryDep = Annotated[RunRegistry, Depends(get_registry)]
DatasetsDep = Annotated[DatasetRegistry, Depends(get_datasets)]
SettingsDep = Annotated[Settings, Depends(get_settings)]
PointsDep = Annotated[RunPoints, Depends(get_points)]


def invalid(
    where: tuple[str, ...], field: str, msg: str, value: Any, kind: str = "value_error"
) -> RequestValidationError:
    """A 422 in FastAPI's own shape (HTTPValidationError), for checks pydantic cannot make."""
    return RequestValidationError([{"type": kind, "loc": (*where, field), "msg": msg, "input": value}])


def batch_size_problem(batch_size: int | None, limit: int) -> str | None:
    """The one bound that depends on the data: batch_size <= training examples."""
    if batch_size is None or batch_size <= limit:
        return None
    return f"batch_size: {batch_size:,} is more than the {limit:,} training examples of this run's dataset"


def check_batch_size(batch_size: int | None, limit: int) -> None:
    """409: a batch size the schema allows, but this dataset cannot give (a conflict with the
    data, not a malformed request)."""
    if (problem := batch_size_problem(batch_size, limit)) is not None:
        raise HTTPException(409, problem)
