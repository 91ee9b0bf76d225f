"""The page: static files from frontend/, and plotly.js from the installed plotly package."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from fastapi import APIRouter, FastAPI, HTTPException
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles

FRONTEND = Path(__file__).resolve().parents[2] / "frontend"

router = APIRouter(include_in_schema=False)


def plotly_js() -> Path:
    spec = importlib.util.find_spec("plotly")
    if spec is None or spec.origin is None:
        raise RuntimeError("the plotly package is not installed")
    return Path(spec.origin).parent / "package_data" / "plotly.min.js"


@router.api_route("/", methods=["GET", "HEAD"])
async def index() -> FileResponse:
    return FileResponse(FRONTEND / "index.html", headers={"Cache-Control": "no-cache"})


@router.api_route("/vendor/plotly.min.js", methods=["GET", "HEAD"])
async def plotly() -> FileResponse:
    path = plotly_js()
    if not path.exists():
        raise HTTPException(500, "plotly.min.js is missing from the plotly package")
    return FileResponse(path, media_type="text/javascript", headers={"Cache-Control": "public, max-age=86400"})


def add_page(app: FastAPI) -> None:
    """The page's routes and its static files, on `app`."""
    app.include_router(router)
    app.mount("/static", StaticFiles(directory=FRONTEND), name="static")
