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


class Health(BaseModel):
    status: Literal["ok"] = "ok"


async def health() -> Health:
    return Health()


async def _health_before_the_application(request: Request) -> JSONResponse:
    return JSONResponse((await health()).model_dump())


# Boot's route, for the seconds before the application (and FastAPI) has loaded.
front_routes = [Route("/api/health", _health_before_the_application, methods=["GET"])]


def router() -> APIRouter:
    """The application's documented `GET /api/health`."""
    from fastapi import APIRouter  # noqa: PLC0415 -- FastAPI loads after the server listens

    r = APIRouter(prefix="/api")
    r.add_api_route("/health", health, methods=["GET"], tags=["meta"])
    return r
