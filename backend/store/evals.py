"""A run's evaluations (with the gradient noise scale), its changes of hyperparameters and its
learning-rate sweeps.
"""

from __future__ import annotations

import json
import sqlite3
from typing import Any

from backend.store.base import Base, finite
from backend.store.records import History


class Evals(Base):
    def add_eval(self, run_id: str, step: int, train: float | None, dev: float | None) -> None:
        if not self.keeps_history:  # bench only (Settings.bench_no_store)
            return
        self._queue(
            lambda c: c.execute(
                "INSERT OR REPLACE INTO evals (run_id, step, train_loss, dev_loss, b_noise) VALUES (?, ?, ?, ?, NULL)",
                (run_id, step, finite(train), finite(dev)),
            )
        )

    def set_noise(self, run_id: str, step: int, b_noise: float) -> None:
        if not self.keeps_history:  # bench only (Settings.bench_no_store)
            return
        self._queue(
            lambda c: c.execute(
                "UPDATE evals SET b_noise = ? WHERE run_id = ? AND step = ?", (finite(b_noise), run_id, step)
            )
        )

    def add_change(self, run_id: str, change: dict[str, Any], replace_last: bool) -> None:
        """A change of hyperparameters; `replace_last`: it supersedes the previous one (merged)."""

        def op(c: sqlite3.Connection) -> None:
            (seq,) = c.execute("SELECT COALESCE(MAX(seq), -1) FROM changes WHERE run_id = ?", (run_id,)).fetchone()
            if not replace_last or seq < 0:
                seq += 1
            c.execute(
                "INSERT OR REPLACE INTO changes (run_id, step, seq, change) VALUES (?, ?, ?, ?)",
                (run_id, change["step"], seq, json.dumps(change)),
            )

        self._queue(op)

    def add_lrfind(self, run_id: str, result: dict[str, Any]) -> None:
        def op(c: sqlite3.Connection) -> None:
            (seq,) = c.execute("SELECT COALESCE(MAX(seq), -1) + 1 FROM lrfinds WHERE run_id = ?", (run_id,)).fetchone()
            c.execute("INSERT INTO lrfinds (run_id, seq, result) VALUES (?, ?, ?)", (run_id, seq, json.dumps(result)))

        self._queue(op)

    def evals(self, run_id: str) -> list[tuple[int, float | None, float | None, float | None]]:
        """A run's evaluations, (step, train_loss, dev_loss, b_noise) in step order. Blocking."""
        rows: list[tuple[int, float | None, float | None, float | None]] = (
            self._reader()
            .execute("SELECT step, train_loss, dev_loss, b_noise FROM evals WHERE run_id = ? ORDER BY step", (run_id,))
            .fetchall()
        )
        return rows

    def history(self, run_id: str) -> History:
        """Evaluations, changes and the last learning-rate sweep of a run. Blocking."""
        c = self._reader()
        evals = self.evals(run_id)
        changes = [
            json.loads(t) for (t,) in c.execute("SELECT change FROM changes WHERE run_id = ? ORDER BY seq", (run_id,))
        ]
        row = c.execute("SELECT result FROM lrfinds WHERE run_id = ? ORDER BY seq DESC LIMIT 1", (run_id,)).fetchone()
        return History(evals, changes, json.loads(row[0]) if row else None)
