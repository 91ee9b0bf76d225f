"""Word lists: the built-in names and uploads."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, File, HTTPException, UploadFile
from starlette.concurrency import run_in_threadpool

from backend.api.deps import DatasetsDep
from backend.core.words import DatasetError
from backend.server.datasets import UPLOAD_LIMITS, DatasetEntry, parse_upload
from backend.server.schemas import DatasetInfo

router = APIRouter(prefix="/api", tags=["datasets"])


def info(entry: DatasetEntry) -> DatasetInfo:
    ds = entry.dataset
    return DatasetInfo(id=entry.id, name=ds.name, words=len(ds.words), vocab_size=ds.vocab.size, builtin=entry.builtin)


@router.get("/datasets")
async def list_datasets(datasets: DatasetsDep) -> list[DatasetInfo]:
    """The built-in names first, then the uploads (oldest first)."""
    return [info(e) for e in datasets.all()]


@router.post("/datasets", status_code=201)
async def upload_dataset(datasets: DatasetsDep, file: Annotated[UploadFile, File()]) -> DatasetInfo:
    """A UTF-8 text file, one item per line (at most 5 MB and 64 distinct characters). Use its
    id as `dataset` in POST /api/runs."""
    raw = await file.read(UPLOAD_LIMITS.max_bytes + 1)
    if len(raw) > UPLOAD_LIMITS.max_bytes:
        raise HTTPException(413, f"file: more than the {UPLOAD_LIMITS.max_bytes:,} bytes allowed")
    try:
        dataset = await run_in_threadpool(parse_upload, raw, file.filename or "upload.txt")
    except DatasetError as e:
        raise HTTPException(422, f"file: {e}") from None
    return info(datasets.add(dataset))
