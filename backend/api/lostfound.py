"""What the store kept aside instead of deleting: `<home>/lost+found/` (backend/store/lostfound.py)."""

from __future__ import annotations

import asyncio
from dataclasses import asdict

from fastapi import APIRouter
from pydantic import BaseModel, Field

from backend.api.deps import RegistryDep

router = APIRouter(prefix="/api", tags=["meta"])


class LostItemPublic(BaseModel):
    path: str | None = Field(description="where it is now, relative to the home directory; null: its file was gone")
    file: str = Field(description="where it was, relative to the home directory")
    run_id: str
    step: int | None = Field(description="the checkpoint's step; null when its file name does not say one")
    bytes: int | None
    reason: str
    when: float = Field(description="when it was moved or found gone (seconds since 1970)")


class LostFoundPublic(BaseModel):
    items: list[LostItemPublic] = Field(description="oldest first")


@router.get("/lost-found")
async def lost_found(registry: RegistryDep) -> LostFoundPublic:
    """Checkpoint files the store did not use and kept instead of deleting: files without a row
    (written just before a crash, or their rows lost with the database's WAL) and damaged ones,
    moved to `lost+found/` under the home directory; and checkpoints whose file was gone, whose
    rows were dropped."""
    items = await asyncio.to_thread(registry.store.lost_found.items)
    return LostFoundPublic(items=[LostItemPublic(**asdict(i)) for i in items])
