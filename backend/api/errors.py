"""422 answers that stay valid JSON: FastAPI echoes the bad input, and NaN or infinity in it
would otherwise turn a clear 422 into a 500."""

from __future__ import annotations

import math
from typing import Any

from fastapi import Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse


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
