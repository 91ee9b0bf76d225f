"""A run's steps: chunks of float32 losses and learning rates, merged over commits until they
hold CHUNK_STEPS (see store.py); past MAX_STORED_STEPS, the run's bucketed history blob only.
"""

from __future__ import annotations

import sqlite3
from array import array
from collections.abc import Iterator

import numpy as np

from backend.store.base import Base
from backend.store.records import StepChunk
from backend.store.writer import Pending

MAX_STORED_STEPS = 2_000_000  # every step up to here; past it, the bucketed history only
CHUNK_STEPS = 8_192  # steps per stored chunk at most (32 KB of losses): rewritten at most this big


class Steps(Base):
    def add_steps(
        self, run_id: str, first: int, losses: list[float], lrs: list[float], batch_size: int, time_end: float
    ) -> None:
        if not self.keeps_history:  # bench only (Settings.bench_no_store)
            return

        def op(conn: sqlite3.Connection) -> None:
            p = self._pending.get(run_id)
            if p is not None and (
                p.batch_size != batch_size or p.first + len(p.losses) != first or len(p.losses) >= CHUNK_STEPS
            ):
                self._flush_run(conn, run_id)
                p = None
            if p is None:
                self._pending[run_id] = Pending(first, array("f", losses), array("f", lrs), batch_size, time_end)
            else:
                p.losses.extend(losses)
                p.lrs.extend(lrs)
                p.time_end = time_end
                p.dirty = True

        keep = MAX_STORED_STEPS - first  # past it, the run keeps its bucketed history only
        if keep <= 0:
            return
        if keep < len(losses):
            losses, lrs = losses[:keep], lrs[:keep]
        self._queue(op, steps=len(losses))

    def _flush_steps(self, conn: sqlite3.Connection) -> None:
        """At a commit: every chunk's new steps into its row; chunks that may still grow are kept."""
        for run_id, p in list(self._pending.items()):
            if p.dirty and len(p.losses) < CHUNK_STEPS:
                self._write_chunk(conn, run_id, p)
            else:
                self._flush_run(conn, run_id)

    def _flush_run(self, conn: sqlite3.Connection, run_id: str) -> None:
        """The run's chunk into its row, and let go of it (the next steps start a new chunk)."""
        p = self._pending.pop(run_id, None)
        if p is not None and p.dirty:
            self._write_chunk(conn, run_id, p)

    def _write_chunk(self, conn: sqlite3.Connection, run_id: str, p: Pending) -> None:
        p.dirty = False
        if not p.losses:
            return
        loss = np.frombuffer(p.losses, dtype=np.float32).astype("<f4")
        lr = np.frombuffer(p.lrs, dtype=np.float32).astype("<f4")
        constant = bool((lr == lr[0]).all())
        conn.execute(
            "INSERT OR REPLACE INTO steps (run_id, first, n, batch_size, time_end, loss, lr, lr_const)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (
                run_id,
                p.first,
                len(loss),
                p.batch_size,
                p.time_end,
                loss.tobytes(),
                None if constant else lr.tobytes(),
                float(p.lrs[0]) if constant else None,
            ),
        )

    def steps(self, run_id: str, upto: int | None = None) -> Iterator[StepChunk]:
        """The stored steps (below `upto`), chunk by chunk, in order. Blocking."""
        rows = self._reader().execute(
            "SELECT first, n, batch_size, time_end, loss, lr, lr_const FROM steps WHERE run_id = ? AND first < ?"
            " ORDER BY first",
            (run_id, upto if upto is not None else 2**62),
        )
        for first, n, batch, time_end, loss, lr, lr_const in rows:
            losses = np.frombuffer(loss, dtype="<f4")
            lrs = np.frombuffer(lr, dtype="<f4") if lr is not None else np.full(n, lr_const, dtype=np.float32)
            if upto is not None and first + n > upto:
                losses, lrs = losses[: upto - first], lrs[: upto - first]
            yield StepChunk(first, losses, lrs, batch, time_end)

    @property
    def max_stored_steps(self) -> int:
        """Steps stored one by one per run; past them, the run's bucketed history only."""
        return MAX_STORED_STEPS

    def put_history_blob(self, run_id: str, blob: bytes | None) -> None:
        self._queue(lambda c: c.execute("UPDATE runs SET history = ? WHERE id = ?", (blob, run_id)))

    def history_blob(self, run_id: str) -> bytes | None:
        row = self._reader().execute("SELECT history FROM runs WHERE id = ?", (run_id,)).fetchone()
        return row[0] if row else None
