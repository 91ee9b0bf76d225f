"""The server's own health: answered from the first moment the server listens (see boot.py).

Boot answers it before FastAPI has loaded (FastAPI's import is a third of what the server imports
before it can listen), so this module needs only Starlette; the application documents the same
answer through `router()`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

if TYPE_CHECKING:
    from fastapi import APIRouter


class Held(BaseModel):
    """What the store keeps in memory because the disk refuses it."""

    writes: int  # writes of failed transactions, tried again every second
    steps: int  # training steps among them
    checkpoints: int
    checkpoint_bytes: int


class Health(BaseModel):
    status: Literal["ok", "degraded"] = "ok"
    reason: str | None = None  # degraded: why the store's writes fail (the disk full, ...)
    since: float | None = None  # degraded: since when (Unix time)
    held: Held | None = None  # degraded: what waits in memory meanwhile


async def health(request: Request) -> Health:
    """`degraded` while the store's writes fail (the disk full): it keeps them in memory and
    writes them once the disk takes them. Still HTTP 200, and the Docker healthcheck passes
    (healthcheck.py): a supervisor that restarted an unhealthy server would throw away what it
    holds in memory, and a restart does not make a disk less full."""
    registry = getattr(request.app.state, "registry", None)  # none in Boot's front app, before it loads
    if registry is None:
        return Health()
    return Health.model_validate(registry.store.health.state())


async def _health_before_the_application(request: Request) -> JSONResponse:
    return JSONResponse((await health(request)).model_dump(exclude_none=True))


# Boot's route, for the seconds before the application (and FastAPI) has loaded.
front_routes = [Route("/api/health", _health_before_the_application, methods=["GET"])]


def router() -> APIRouter:
    """The application's documented `GET /api/health`."""
    from fastapi import APIRouter  # noqa: PLC0415 -- FastAPI loads after the server listens

    r = APIRouter(prefix="/api")
    r.add_api_route("/health", health, methods=["GET"], tags=["meta"], response_model_exclude_none=True)
    return r
