"""The error answers operations document, all of one shape: {"detail": "what went wrong"}.
(422 keeps FastAPI's HTTPValidationError shape: a list of {loc, msg, type}.)"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel


class ErrorBody(BaseModel):
    detail: str


def _error(status: int, description: str) -> dict[int | str, dict[str, Any]]:
    return {status: {"model": ErrorBody, "description": description}}


NOT_FOUND = _error(404, "no run (or other resource) with that id")
CONFLICT = _error(409, "the run's state does not allow it (e.g. resuming a run at its max_steps)")
TOO_LARGE = _error(413, "the request is too large")
