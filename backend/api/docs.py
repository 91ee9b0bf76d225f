"""/docs: Swagger UI from the installed `fastapi-offline` package (no CDN: it works offline, as
the page does), started by a script file of ours instead of FastAPI's inline one, which the
Content-Security-Policy would block. ReDoc is not served: it needs inline styles and workers."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from fastapi import APIRouter, FastAPI, HTTPException
from fastapi.responses import FileResponse, HTMLResponse

router = APIRouter(include_in_schema=False)

ASSETS = ("swagger-ui-bundle.js", "swagger-ui.css")

PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>makemore live: API</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="/docs/assets/swagger-ui.css">
<script src="/docs/assets/swagger-ui-bundle.js" defer></script>
<script src="/static/docs/swagger-init.js" defer></script>
</head>
<body>
<div id="swagger-ui"></div>
</body>
</html>
"""


def swagger_ui_dir() -> Path:
    spec = importlib.util.find_spec("fastapi_offline")
    if spec is None or spec.origin is None:
        raise RuntimeError("the fastapi-offline package is not installed")
    return Path(spec.origin).parent / "static"


@router.get("/docs")
async def docs() -> HTMLResponse:
    return HTMLResponse(PAGE, headers={"Cache-Control": "no-cache"})


@router.get("/docs/assets/{name}")
async def asset(name: str) -> FileResponse:
    if name not in ASSETS:
        raise HTTPException(404, f"no asset {name!r}")
    media = "text/javascript" if name.endswith(".js") else "text/css"
    return FileResponse(swagger_ui_dir() / name, media_type=media, headers={"Cache-Control": "public, max-age=86400"})


def add_docs(app: FastAPI) -> None:
    app.include_router(router)
