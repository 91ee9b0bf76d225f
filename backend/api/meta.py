"""The server's own health: answered from the first moment the server listens (see boot.py)."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter
from pydantic import BaseModel

router = APIRouter(prefix="/api")


class Health(BaseModel):
    status: Literal["ok"] = "ok"


@router.get("/health", tags=["meta"])
async def health() -> Health:
    return Health()
