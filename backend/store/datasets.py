"""Datasets: their text (zlib) and counts, one row each."""

from __future__ import annotations

import zlib

from backend.store.base import Base
from backend.store.records import DatasetRecord


class Datasets(Base):
    def put_dataset(self, d: DatasetRecord, text: str) -> None:
        blob = zlib.compress(text.encode(), 6)
        self._write(
            lambda c: c.execute(
                "INSERT OR IGNORE INTO datasets (id, name, text, words, vocab_size, train_examples, dev_examples,"
                " test_examples, bytes, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (d.id, d.name, blob, d.words, d.vocab_size, d.train_examples, d.dev_examples, d.test_examples,
                 d.bytes, d.created_at),
            )
        )  # fmt: skip

    _DATASET_COLUMNS = "id, name, words, vocab_size, train_examples, dev_examples, test_examples, bytes, created_at"

    def datasets(self) -> list[DatasetRecord]:
        rows = self._reader().execute(f"SELECT {self._DATASET_COLUMNS} FROM datasets ORDER BY created_at, id")
        return [DatasetRecord(*r) for r in rows]

    def dataset(self, dataset_id: str) -> DatasetRecord | None:
        row = (
            self._reader()
            .execute(f"SELECT {self._DATASET_COLUMNS} FROM datasets WHERE id = ?", (dataset_id,))
            .fetchone()
        )
        return DatasetRecord(*row) if row else None

    def dataset_text(self, dataset_id: str) -> str | None:
        row = self._reader().execute("SELECT text FROM datasets WHERE id = ?", (dataset_id,)).fetchone()
        return zlib.decompress(row[0]).decode() if row else None

    def dataset_users(self, dataset_id: str) -> int:
        (n,) = self._reader().execute("SELECT COUNT(*) FROM runs WHERE dataset_id = ?", (dataset_id,)).fetchone()
        return int(n)

    def delete_dataset(self, dataset_id: str) -> None:
        self._write(lambda c: c.execute("DELETE FROM datasets WHERE id = ?", (dataset_id,)))
