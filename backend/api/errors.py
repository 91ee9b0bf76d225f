"""422 answers that stay valid JSON: FastAPI echoes the bad input, and NaN or infinity in it
would otherwise turn a clear 422 into a 500."""

from __future__ import annotations

import math
import re
from typing import Any

from fastapi import FastAPI, Request, Response
from fastapi.encoders import jsonable_encoder
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException


def _finite(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


async def validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    return JSONResponse(status_code=422, content={"detail": _finite(jsonable_encoder(exc.errors()))})


async def not_found(request: Request, exc: Exception) -> JSONResponse:
    return JSONResponse(status_code=404, content={"detail": str(exc.args[0]) if exc.args else "not found"})


async def conflict(request: Request, exc: Exception) -> JSONResponse:
    return JSONResponse(status_code=409, content={"detail": str(exc)})


async def worker_error(request: Request, exc: Exception) -> JSONResponse:
    """A refusal or failure that the run's worker reported."""
    kind = getattr(exc, "kind", "failed")
    status = {"conflict": 409, "invalid": 422, "failed": 500}.get(kind, 500)
    return JSONResponse(status_code=status, content={"detail": str(exc)})


async def http_error(request: Request, exc: Exception) -> Response:
    """FastAPI's own answer, but a 405 lists every method of the address's path, as the OpenAPI
    document says (Starlette's lists only those of the one route it tried: an address has a
    route per method)."""
    assert isinstance(exc, StarletteHTTPException)
    headers = dict(exc.headers or {})
    if exc.status_code == 405:
        # the first documented path that matches, as routing goes: /api/runs/export, not /api/runs/{run_id}
        path = request.url.path
        methods = next((ms for pattern, ms in _documented(request.app) if pattern.fullmatch(path)), [])
        headers["Allow"] = ", ".join(sorted(set(methods)))
    return await http_exception_handler(request, StarletteHTTPException(exc.status_code, exc.detail, headers))


def _documented(app: FastAPI) -> list[tuple[re.Pattern[str], list[str]]]:
    """(a path's pattern, its methods) for every path of the OpenAPI document; built once."""
    cached: list[tuple[re.Pattern[str], list[str]]] | None = getattr(app.state, "documented_methods", None)
    if cached is None:
        cached = [
            (re.compile(re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(path))), [m.upper() for m in ops])
            for path, ops in app.openapi()["paths"].items()
        ]
        app.state.documented_methods = cached
    return cached
