"""Word lists: the built-in names and uploads (kept in the store, with their text)."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated

from fastapi import APIRouter, File, HTTPException, Response, UploadFile
from starlette.concurrency import run_in_threadpool

from backend.api.deps import DatasetsDep, SettingsDep, invalid
from backend.api.responses import CONFLICT, NOT_FOUND, TOO_LARGE
from backend.api.schemas import DatasetInfo, SuggestedPublic
from backend.core.words import DatasetError
from backend.runs.datasets import UPLOAD_LIMITS, DatasetConflictError, DatasetRegistry, parse_upload, suggest
from backend.store.records import DatasetRecord

router = APIRouter(prefix="/api", tags=["datasets"])


def info(datasets: DatasetRegistry, r: DatasetRecord) -> DatasetInfo:
    return DatasetInfo(
        id=r.id,
        name=r.name,
        words=r.words,
        vocab_size=r.vocab_size,
        train_examples=r.train_examples,
        builtin=r.id == datasets.builtin_id,
        about=datasets.builtin_about if r.id == datasets.builtin_id else "",
        suggested=SuggestedPublic(**asdict(suggest(r.train_examples))),
        bytes=r.bytes,
        created_at=r.created_at,
    )


@router.get("/datasets")
async def list_datasets(datasets: DatasetsDep) -> list[DatasetInfo]:
    """The built-in names first, then the uploads (oldest first)."""
    return [info(datasets, r) for r in datasets.all()]


@router.post("/datasets", status_code=201, responses=TOO_LARGE | CONFLICT)
async def upload_dataset(
    datasets: DatasetsDep, settings: SettingsDep, file: Annotated[UploadFile, File()]
) -> DatasetInfo:
    """A UTF-8 text file, one item per line (at most 5 MB and 64 distinct characters). Use its
    id as `dataset` in POST /api/runs. The same words uploaded again give the same dataset. 409
    once the server keeps as many uploads (or bytes of them) as it allows."""
    raw = await file.read(UPLOAD_LIMITS.max_bytes + 1)
    if len(raw) > UPLOAD_LIMITS.max_bytes:
        raise HTTPException(413, f"file: more than the {UPLOAD_LIMITS.max_bytes:,} bytes allowed")
    try:
        dataset = await run_in_threadpool(parse_upload, raw, file.filename or "upload.txt")
    except DatasetError as e:
        raise invalid(("body",), "file", str(e), file.filename) from None
    uploads = datasets.uploads()
    if len(uploads) >= settings.max_uploads:
        raise HTTPException(409, f"the server keeps {settings.max_uploads} uploads at most: delete one first")
    if sum(r.bytes for r in uploads) + len(raw) > settings.max_upload_bytes:
        raise HTTPException(409, f"the uploads kept would pass {settings.max_upload_bytes:,} bytes: delete one first")
    return info(datasets, await datasets.add(dataset))


@router.delete("/datasets/{dataset_id}", status_code=204, responses=NOT_FOUND | CONFLICT)
async def delete_dataset(datasets: DatasetsDep, dataset_id: str) -> Response:
    """Delete an upload; 409 while a stored run uses it (or for the built-in names)."""
    try:
        await datasets.delete(dataset_id)
    except KeyError:
        raise HTTPException(404, f"no dataset with id {dataset_id!r}") from None
    except DatasetConflictError as e:
        raise HTTPException(409, str(e)) from None
    return Response(status_code=204)
