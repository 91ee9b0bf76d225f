"""The error answers operations document, all of one shape: {"detail": "what went wrong"}.
(422 keeps FastAPI's HTTPValidationError shape: a list of {loc, msg, type}.)"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from pydantic import BaseModel


class ErrorBody(BaseModel):
    detail: str


def _error(status: int, description: str) -> dict[int | str, dict[str, Any]]:
    return {status: {"model": ErrorBody, "description": description}}


NOT_FOUND = _error(404, "no run (or other resource) with that id")
CONFLICT = _error(409, "the run's state does not allow it (e.g. resuming a run at its max_steps)")
TOO_LARGE = _error(413, "the request is too large")


def document_unreadable_bodies(app: FastAPI) -> None:
    """Every operation that takes a body can answer 400 when it is not JSON (or not multipart
    data) at all: FastAPI's own answer, which the generated document leaves out."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        doc = build()
        for ops in doc["paths"].values():
            for op in ops.values():
                if "requestBody" in op:
                    op["responses"].setdefault(
                        "400",
                        {
                            "description": "the body is not valid JSON (or not valid multipart data)",
                            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}},
                        },
                    )
        return doc

    app.openapi = openapi  # type: ignore[method-assign]  # FastAPI's documented way to extend the document
