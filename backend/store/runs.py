"""Run records: one row each (its settings, status, step, last evaluation), deleted and branched
with their history.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
from typing import Any

from backend.store import diagnostics
from backend.store.base import json_or_none
from backend.store.records import RunRecord
from backend.store.steps import Steps
from backend.training.protocol import Cause, Divergence, Status
from backend.training.spec import HParams, RunSpec


def hparams_of(text: str, max_steps: int) -> HParams:
    """A run's hparams as its row keeps them: rows written before max_steps was one of them keep it
    in a column of its own (still written, with the same value)."""
    return HParams.model_validate({"max_steps": max_steps, **json.loads(text)})


def divergence_json(d: Divergence | None) -> str | None:
    return None if d is None else json.dumps(vars(d))  # a step's loss may be nan or inf: JSON's NaN, Infinity


def divergence_of(text: str | None) -> Divergence | None:
    return None if text is None else Divergence(**json.loads(text))


class Runs(Steps):
    def put_run(self, r: RunRecord, wait: bool = False) -> None:
        """Insert or update a run's record (not its history); with `wait`, once it is committed
        (blocking)."""
        values = (
            r.id, r.name, r.spec.model_dump_json(), r.spec.dataset, r.status.value, r.detail, r.step,
            r.hparams.model_dump_json(), r.hparams.max_steps, r.train_seconds, json_or_none(r.last_eval),
            json_or_none(r.test), r.parent_id, r.parent_step, r.sweep_id, r.created_at, r.updated_at, r.cause,
            divergence_json(r.divergence),
        )  # fmt: skip
        (self._write if wait else self._queue)(
            lambda c: c.execute(
                "INSERT INTO runs (id, name, spec, dataset_id, status, detail, step, hparams, max_steps, train_seconds,"
                " last_eval, test, parent_id, parent_step, sweep_id, created_at, updated_at, cause, divergence)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
                " ON CONFLICT(id) DO UPDATE SET name = excluded.name, status = excluded.status,"
                " detail = excluded.detail, step = excluded.step, hparams = excluded.hparams,"
                " max_steps = excluded.max_steps, train_seconds = excluded.train_seconds,"
                " last_eval = excluded.last_eval, test = excluded.test, sweep_id = excluded.sweep_id,"
                " updated_at = excluded.updated_at, cause = excluded.cause, divergence = excluded.divergence",
                values,
            )
        )

    _RUN_COLUMNS = (
        "id, name, spec, status, detail, step, hparams, max_steps, train_seconds, last_eval, test, parent_id,"
        " parent_step, sweep_id, created_at, updated_at,"
        " (SELECT MIN(dev_loss) FROM evals WHERE evals.run_id = runs.id), cause, divergence"
    )

    @staticmethod
    def _record(row: tuple[Any, ...]) -> RunRecord:
        (rid, name, spec, status, detail, step, hp, max_steps, secs, last_eval, test, pid, pstep, sweep, created,
         updated, best, cause, divergence) = row  # fmt: skip
        return RunRecord(
            id=rid, name=name, spec=RunSpec.model_validate_json(spec), status=Status(status), detail=detail,
            step=step, hparams=hparams_of(hp, max_steps), created_at=created, updated_at=updated,
            train_seconds=secs, last_eval=json.loads(last_eval) if last_eval else None,
            test=json.loads(test) if test else None, parent_id=pid, parent_step=pstep, sweep_id=sweep, best_dev=best,
            cause=Cause(cause) if cause else None, divergence=divergence_of(divergence),
        )  # fmt: skip

    def run(self, run_id: str) -> RunRecord | None:
        row = self._reader().execute(f"SELECT {self._RUN_COLUMNS} FROM runs WHERE id = ?", (run_id,)).fetchone()
        return self._record(row) if row else None

    def runs(
        self, status: Status | None = None, limit: int = 100, offset: int = 0, sweep_id: str | None = None
    ) -> list[RunRecord]:
        """Newest first."""
        where, args = [], []
        if status is not None:
            where.append("status = ?")
            args.append(status.value)
        if sweep_id is not None:
            where.append("sweep_id = ?")
            args.append(sweep_id)
        sql = f"SELECT {self._RUN_COLUMNS} FROM runs"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY created_at DESC, id LIMIT ? OFFSET ?"
        return [self._record(r) for r in self._reader().execute(sql, (*args, limit, offset))]

    def newest_run_id(self) -> str | None:
        row = self._reader().execute("SELECT id FROM runs ORDER BY created_at DESC, id LIMIT 1").fetchone()
        return row[0] if row else None

    def count_runs(self) -> int:
        (n,) = self._reader().execute("SELECT COUNT(*) FROM runs").fetchone()
        return int(n)

    def delete_run(self, run_id: str) -> None:
        """The run, its history and its checkpoints. Waits until done (blocking)."""

        def op(c: sqlite3.Connection) -> None:
            self._pending.pop(run_id, None)
            for table in ("steps", "evals", "changes", "lrfinds", "checkpoints", *diagnostics.TABLES):
                c.execute(f"DELETE FROM {table} WHERE run_id = ?", (run_id,))
            c.execute("DELETE FROM runs WHERE id = ?", (run_id,))
            shutil.rmtree(self.checkpoint_dir / run_id, ignore_errors=True)

        self._write(op)

    def copy_history(self, parent_id: str, child_id: str, upto: int) -> None:
        """A branch starts with its parent's history up to `upto` (steps before it; evaluations
        and changes at or before it). Blocking."""

        def op(c: sqlite3.Connection) -> None:
            self._flush_run(c, parent_id)
            for first, n, batch, time_end, loss, lr, lr_const in c.execute(
                "SELECT first, n, batch_size, time_end, loss, lr, lr_const FROM steps WHERE run_id = ? AND first < ?",
                (parent_id, upto),
            ).fetchall():
                keep = min(n, upto - first)  # the chunk that straddles the branch point is cut
                c.execute(
                    "INSERT INTO steps (run_id, first, n, batch_size, time_end, loss, lr, lr_const)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    (child_id, first, keep, batch, time_end, loss[: 4 * keep], lr and lr[: 4 * keep], lr_const),
                )
            c.execute(
                "INSERT INTO evals SELECT ?, step, train_loss, dev_loss, b_noise FROM evals"
                " WHERE run_id = ? AND step <= ?",
                (child_id, parent_id, upto),
            )
            c.execute(
                "INSERT INTO changes SELECT ?, step, seq, change FROM changes WHERE run_id = ? AND step <= ?",
                (child_id, parent_id, upto),
            )
            diagnostics.copy(c, parent_id, child_id, upto)
            if upto > self.max_stored_steps:  # steps past those stored: the parent's buckets, cut as they are read
                c.execute(
                    "UPDATE runs SET history = (SELECT history FROM runs WHERE id = ?) WHERE id = ?",
                    (parent_id, child_id),
                )

        self._write(op)

    def run_in(self, c: sqlite3.Connection, run_id: str) -> RunRecord | None:
        row = c.execute(f"SELECT {self._RUN_COLUMNS} FROM runs WHERE id = ?", (run_id,)).fetchone()
        return self._record(row) if row else None
