"""The page: static files from frontend/, and plotly.js from the installed plotly package.

Starlette only: Boot serves the page before FastAPI has loaded (see boot.py and meta.py)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import FileResponse
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

FRONTEND = Path(__file__).resolve().parents[2] / "frontend"


def plotly_js() -> Path:
    spec = importlib.util.find_spec("plotly")
    if spec is None or spec.origin is None:
        raise RuntimeError("the plotly package is not installed")
    return Path(spec.origin).parent / "package_data" / "plotly.min.js"


async def index(request: Request) -> FileResponse:
    return FileResponse(FRONTEND / "index.html", headers={"Cache-Control": "no-cache"})


async def plotly(request: Request) -> FileResponse:
    path = plotly_js()
    if not path.exists():
        raise HTTPException(500, "plotly.min.js is missing from the plotly package")
    return FileResponse(path, media_type="text/javascript", headers={"Cache-Control": "public, max-age=86400"})


def page_routes() -> list[BaseRoute]:
    """The page's routes and its static files (none of them in the API's schema)."""
    return [
        Route("/", index, methods=["GET", "HEAD"]),
        Route("/vendor/plotly.min.js", plotly, methods=["GET", "HEAD"]),
        Mount("/static", StaticFiles(directory=FRONTEND), name="static"),
    ]


def add_page(app: Starlette) -> None:
    """The page's routes and its static files, on `app`."""
    app.router.routes.extend(page_routes())
