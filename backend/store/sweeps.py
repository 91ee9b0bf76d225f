"""Sweeps: a grid of runs' settings, one row each."""

from __future__ import annotations

import json

from backend.store.base import Base
from backend.store.records import SweepRecord


class Sweeps(Base):
    def put_sweep(self, s: SweepRecord) -> None:
        """Insert or update a sweep (blocking: waits for the commit)."""
        self._write(
            lambda c: c.execute(
                "INSERT INTO sweeps (id, name, spec, swept, stopped, created_at) VALUES (?, ?, ?, ?, ?, ?)"
                " ON CONFLICT(id) DO UPDATE SET name = excluded.name, stopped = excluded.stopped",
                (s.id, s.name, json.dumps(s.spec), json.dumps(s.swept), int(s.stopped), s.created_at),
            )
        )

    def sweeps(self, limit: int = 100, offset: int = 0) -> list[SweepRecord]:
        rows = self._reader().execute(
            "SELECT id, name, spec, swept, stopped, created_at FROM sweeps"
            " ORDER BY created_at DESC, id LIMIT ? OFFSET ?",
            (limit, offset),
        )
        return [SweepRecord(i, n, json.loads(sp), json.loads(sw), bool(st), c) for i, n, sp, sw, st, c in rows]

    def sweep(self, sweep_id: str) -> SweepRecord | None:
        row = (
            self._reader()
            .execute("SELECT id, name, spec, swept, stopped, created_at FROM sweeps WHERE id = ?", (sweep_id,))
            .fetchone()
        )
        if row is None:
            return None
        i, n, sp, sw, st, c = row
        return SweepRecord(i, n, json.loads(sp), json.loads(sw), bool(st), c)
