"""Failures the client is told of by an id: the details (a traceback, file paths) stay in the log.

Starlette-only (Boot uses it before FastAPI has loaded).
"""

from __future__ import annotations

import logging
import secrets

from starlette.requests import Request
from starlette.responses import JSONResponse

log = logging.getLogger(__name__)

_LOGGED = "makemore_error_id"  # set on an exception once it is logged with its id


def new_error_id() -> str:
    return secrets.token_hex(4)


def failure(detail: str, error_id: str, status: int) -> JSONResponse:
    return JSONResponse({"detail": detail, "error_id": error_id}, status_code=status)


async def internal_error(request: Request, exc: Exception) -> JSONResponse:
    """The application's answer to an exception that nothing else handled: 500, and its id."""
    error_id = new_error_id()
    log.error("internal error %s on %s %s", error_id, request.method, request.url.path, exc_info=exc)
    setattr(exc, _LOGGED, error_id)
    return failure("internal error", error_id, 500)


def logged(exc: BaseException) -> bool:
    """Whether `internal_error` answered and logged it already. Starlette raises it again after
    the answer, "so that servers can log it": uvicorn's second traceback would lack the id."""
    return getattr(exc, _LOGGED, None) is not None
