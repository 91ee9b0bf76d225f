"""The word lists runs can train on: the built-in names and the users' uploads (kept in memory).

Lives on the event loop (built in the app's lifespan); parsing an upload is done off the loop.
"""

from __future__ import annotations

import secrets
from collections import OrderedDict
from dataclasses import dataclass

from backend.core.data import Dataset
from backend.core.words import Limits, parse_words

BUILTIN = "builtin"
UPLOAD_LIMITS = Limits(max_bytes=5_000_000, max_chars=64)


@dataclass(frozen=True)
class DatasetEntry:
    id: str
    dataset: Dataset
    builtin: bool


def parse_upload(raw: bytes, filename: str) -> Dataset:
    """A checked Dataset from an uploaded file; raises DatasetError naming the problem. Blocking."""
    name = filename.rsplit("/", 1)[-1][:100] or "upload.txt"
    return Dataset(name, parse_words(raw, name, UPLOAD_LIMITS))


class DatasetRegistry:
    def __init__(self, builtin: Dataset, keep_uploads: int = 20) -> None:
        self._keep = keep_uploads
        self._entries: OrderedDict[str, DatasetEntry] = OrderedDict({BUILTIN: DatasetEntry(BUILTIN, builtin, True)})

    def add(self, dataset: Dataset) -> DatasetEntry:
        """Keep an upload; past `keep_uploads`, the oldest upload is forgotten (runs that use it
        keep their own reference)."""
        entry = DatasetEntry(secrets.token_hex(6), dataset, False)
        self._entries[entry.id] = entry
        uploads = [k for k, e in self._entries.items() if not e.builtin]
        for old in uploads[: max(0, len(uploads) - self._keep)]:
            del self._entries[old]
        return entry

    def get(self, dataset_id: str) -> DatasetEntry | None:
        return self._entries.get(dataset_id)

    def all(self) -> list[DatasetEntry]:
        return list(self._entries.values())
