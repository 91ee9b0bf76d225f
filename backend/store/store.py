"""The store: one SQLite database (WAL) and checkpoint files under the home directory.

The server process is its only writer, through one writer thread (writer.py): writes are queued
(they return at once, off the training and event-loop paths) and committed in batches, one
transaction every COMMIT_SECONDS, with each run's steps merged into chunks; while the disk
refuses them (full), they are held in memory and tried again, and `health` says so. A chunk
grows over several commits (its row rewritten with more steps each time) until it holds
CHUNK_STEPS: `steps` is a WITHOUT ROWID table, where a row of more than ~1 KB spills into
overflow pages of its own, so one chunk per commit (a few hundred to a few thousand steps) took
1.5 to 4 times its payload on disk. Reads run on any thread, each with a connection of its own
(WAL: readers never block the writer). Trackio does the same with one SQLite file per project
(WAL, synchronous=NORMAL, batched writes).

Consistency across a crash: everything a checkpoint covers (its steps, evaluations, changes) is
queued before it and committed in the same or an earlier transaction, and a checkpoint's row is
written only once its file is durably in place. At start-up `recover` cuts a run that was
training back to its last checkpoint, so its history and its weights agree, and checks every
other run's latest checkpoint against its sha256: a run whose checkpoint is damaged or gone is
cut back to its newest sound one, saying so (its detail, an entry of its timeline). Nothing that
cannot be rebuilt is deleted: checkpoint files without a row, and damaged ones, are moved to
`<home>/lost+found/` (lostfound.py) and listed there; only temporary files go.
"""

from __future__ import annotations

import json
import logging
import math
import os
import shutil
import sqlite3
import threading
import time
import zlib
from array import array
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from backend.store import diagnostics, files, lostfound
from backend.store.records import CheckpointRecord, DatasetRecord, History, RunRecord, StepChunk, SweepRecord
from backend.store.schema import migrate
from backend.store.writer import Pending as _Pending
from backend.store.writer import Writer
from backend.training.checkpoint import hparams_of as checkpoint_hparams
from backend.training.checkpoint import read_metadata
from backend.training.protocol import Cause, Divergence, Status
from backend.training.spec import HParams, RunSpec

log = logging.getLogger(__name__)

MAX_STORED_STEPS = 2_000_000  # every step up to here; past it, the bucketed history only
CHUNK_STEPS = 8_192  # steps per stored chunk at most (32 KB of losses): rewritten at most this big
KEEP_CHECKPOINTS = 50  # earlier checkpoints kept per run besides the latest (thinned evenly)


def hparams_of(text: str, max_steps: int) -> HParams:
    """A run's hparams as its row keeps them: rows written before max_steps was one of them keep it
    in a column of its own (still written, with the same value)."""
    return HParams.model_validate({"max_steps": max_steps, **json.loads(text)})


def divergence_json(d: Divergence | None) -> str | None:
    return None if d is None else json.dumps(vars(d))  # a step's loss may be nan or inf: JSON's NaN, Infinity


def divergence_of(text: str | None) -> Divergence | None:
    return None if text is None else Divergence(**json.loads(text))


def _json(value: Any) -> str | None:
    return None if value is None else json.dumps(value, allow_nan=False)


def _finite(x: float | None) -> float | None:
    return x if x is not None and math.isfinite(x) else None


class Store(Writer):
    def __init__(self, home: Path) -> None:
        self.home = home
        self.path = home / "makemore.db"
        self.checkpoint_dir = home / "checkpoints"
        self.lost_found = lostfound.LostFound(home)
        self._local = threading.local()
        self._writer: threading.Thread | None = None
        super().__init__()
        self.diagnostics = diagnostics.DiagnosticsStore(self._queue, self._reader)

    # ---- lifecycle -----------------------------------------------------------------------------------
    def open(self) -> None:
        """Create or migrate the database, clean up after a crash, start the writer."""
        self.home.mkdir(parents=True, exist_ok=True)
        self.checkpoint_dir.mkdir(exist_ok=True)
        conn = self._connect()
        conn.execute("PRAGMA journal_mode=WAL")
        migrate(conn)
        conn.close()
        self._writer = threading.Thread(target=self._write_loop, name="store-writer", daemon=True)
        self._writer.start()

    def close(self) -> None:
        """Commit what is queued and stop the writer."""
        if self._writer is None:
            return
        self._ops.put(None)
        self._writer.join(30)
        self._writer = None
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=30)
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("PRAGMA foreign_keys=ON")
        return conn

    def _reader(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._connect()
            self._local.conn = conn
        return conn

    # ---- steps ---------------------------------------------------------------------------------------
    def add_steps(
        self, run_id: str, first: int, losses: list[float], lrs: list[float], batch_size: int, time_end: float
    ) -> None:
        def op(conn: sqlite3.Connection) -> None:
            p = self._pending.get(run_id)
            if p is not None and (
                p.batch_size != batch_size or p.first + len(p.losses) != first or len(p.losses) >= CHUNK_STEPS
            ):
                self._flush_run(conn, run_id)
                p = None
            if p is None:
                self._pending[run_id] = _Pending(first, array("f", losses), array("f", lrs), batch_size, time_end)
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

    def _write_chunk(self, conn: sqlite3.Connection, run_id: str, p: _Pending) -> None:
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

    # ---- evaluations, changes, sweeps -------------------------------------------------------------------
    def add_eval(self, run_id: str, step: int, train: float | None, dev: float | None) -> None:
        self._queue(
            lambda c: c.execute(
                "INSERT OR REPLACE INTO evals (run_id, step, train_loss, dev_loss, b_noise) VALUES (?, ?, ?, ?, NULL)",
                (run_id, step, _finite(train), _finite(dev)),
            )
        )

    def set_noise(self, run_id: str, step: int, b_noise: float) -> None:
        self._queue(
            lambda c: c.execute(
                "UPDATE evals SET b_noise = ? WHERE run_id = ? AND step = ?", (_finite(b_noise), run_id, step)
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

    def history(self, run_id: str) -> History:
        """Evaluations, changes and the last learning-rate sweep of a run. Blocking."""
        c = self._reader()
        evals = c.execute(
            "SELECT step, train_loss, dev_loss, b_noise FROM evals WHERE run_id = ? ORDER BY step", (run_id,)
        ).fetchall()
        changes = [
            json.loads(t) for (t,) in c.execute("SELECT change FROM changes WHERE run_id = ? ORDER BY seq", (run_id,))
        ]
        row = c.execute("SELECT result FROM lrfinds WHERE run_id = ? ORDER BY seq DESC LIMIT 1", (run_id,)).fetchone()
        return History(evals, changes, json.loads(row[0]) if row else None)

    # ---- runs ----------------------------------------------------------------------------------------
    def put_run(self, r: RunRecord, wait: bool = False) -> None:
        """Insert or update a run's record (not its history); with `wait`, once it is committed
        (blocking)."""
        values = (
            r.id, r.name, r.spec.model_dump_json(), r.spec.dataset, r.status.value, r.detail, r.step,
            r.hparams.model_dump_json(), r.hparams.max_steps, r.train_seconds, _json(r.last_eval), _json(r.test),
            r.parent_id, r.parent_step, r.sweep_id, r.created_at, r.updated_at, r.cause, divergence_json(r.divergence),
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

    @property
    def max_stored_steps(self) -> int:
        """Steps stored one by one per run; past them, the run's bucketed history only."""
        return MAX_STORED_STEPS

    def put_history_blob(self, run_id: str, blob: bytes | None) -> None:
        self._queue(lambda c: c.execute("UPDATE runs SET history = ? WHERE id = ?", (blob, run_id)))

    def history_blob(self, run_id: str) -> bytes | None:
        row = self._reader().execute("SELECT history FROM runs WHERE id = ?", (run_id,)).fetchone()
        return row[0] if row else None

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
            if upto > MAX_STORED_STEPS:  # steps past those stored: the parent's buckets, cut as they are read
                c.execute(
                    "UPDATE runs SET history = (SELECT history FROM runs WHERE id = ?) WHERE id = ?",
                    (parent_id, child_id),
                )

        self._write(op)

    # ---- checkpoints ---------------------------------------------------------------------------------
    def put_checkpoint(
        self, run_id: str, step: int, data: bytes, train_loss: float | None, dev_loss: float | None
    ) -> None:
        """Write the file (atomically), then its row; keep the latest and KEEP_CHECKPOINTS earlier."""
        rel = f"checkpoints/{run_id}/{step:012d}.safetensors"

        def op(c: sqlite3.Connection) -> None:
            if c.execute("SELECT 1 FROM runs WHERE id = ?", (run_id,)).fetchone() is None:
                return  # deleted meanwhile
            sha = files.write_atomic(self.home / rel, data)
            c.execute(
                "INSERT OR REPLACE INTO checkpoints (run_id, step, file, bytes, sha256, train_loss, dev_loss,"
                " created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (run_id, step, rel, len(data), sha, _finite(train_loss), _finite(dev_loss), time.time()),
            )
            steps = [s for (s,) in c.execute("SELECT step FROM checkpoints WHERE run_id = ?", (run_id,))]
            for old in files.thin(steps, KEEP_CHECKPOINTS):
                (old_file,) = c.execute(
                    "SELECT file FROM checkpoints WHERE run_id = ? AND step = ?", (run_id, old)
                ).fetchone()
                c.execute("DELETE FROM checkpoints WHERE run_id = ? AND step = ?", (run_id, old))
                files.remove(self.home / old_file)

        self._queue(op, checkpoint=(run_id, step, len(data)))

    def checkpoints(self, run_id: str) -> list[CheckpointRecord]:
        rows = self._reader().execute(
            "SELECT run_id, step, file, bytes, sha256, train_loss, dev_loss, created_at FROM checkpoints"
            " WHERE run_id = ? ORDER BY step",
            (run_id,),
        )
        return [CheckpointRecord(*r) for r in rows]

    def load_checkpoint(self, run_id: str, step: int | None = None) -> tuple[int, bytes] | None:
        """The checkpoint at `step` (default: the latest whose file is sound), verified. Blocking."""
        for ck in reversed(self.checkpoints(run_id)):
            if step is not None and ck.step != step:
                continue
            try:
                return ck.step, files.read_verified(self.home / ck.file, ck.sha256)
            except files.CorruptCheckpointError as e:
                log.warning("skipping a damaged checkpoint: %s", e)
                if step is not None:
                    raise
        return None

    # ---- cutting a run back to its last checkpoint ---------------------------------------------------
    def cut_to_checkpoint(
        self, run_id: str, status: Status | None, detail: str | None, cause: Cause | None = None
    ) -> RunRecord | None:
        """After its worker or the server died mid-run, or when its checkpoint at its step is found
        damaged or gone: the run stands where its latest sound checkpoint does, its stored history
        cut to match (steps after it, evaluations and changes after it), with this status (see
        `_cut`). Waits until done (blocking)."""

        def op(c: sqlite3.Connection) -> RunRecord | None:
            self._drop_deferred(run_id)
            self._flush_run(c, run_id)
            return self._cut(c, run_id, status, detail, cause)

        result: RunRecord | None = self._write(op)
        return result

    def _cut(
        self, c: sqlite3.Connection, run_id: str, status: Status | None, detail: str | None, cause: Cause | None = None
    ) -> RunRecord | None:
        """The run back to its newest sound checkpoint, in the caller's transaction. Unsound ones
        on the way are dropped (their files moved to lost+found). `detail` may name {step}; None:
        the run is cut because the checkpoint at its step is damaged, gone or was never saved,
        and its detail says so. `status` None: the run keeps its own, but one that was finished,
        queued or running is paused (it is no longer at its end, in the queue, or training). A
        checkpoint lost on the way is said in its detail and in its timeline (lostfound.restored).
        `cause` goes with a given status; a run that keeps its status keeps its cause."""
        row = c.execute(f"SELECT {self._RUN_COLUMNS} FROM runs WHERE id = ?", (run_id,)).fetchone()
        if row is None:
            return None
        record = self._record(row)
        was = record.step
        found, lost = None, []  # lost: (step, why) of the checkpoints dropped, newest first
        for ck in reversed([CheckpointRecord(*r) for r in c.execute(
            "SELECT run_id, step, file, bytes, sha256, train_loss, dev_loss, created_at FROM checkpoints"
            " WHERE run_id = ? ORDER BY step", (run_id,))]):  # fmt: skip
            try:
                found = read_metadata(files.read_verified(self.home / ck.file, ck.sha256))
                break
            except ValueError as e:  # CorruptCheckpointError, or not a checkpoint's metadata
                log.warning("run %s: checkpoint at step %d not used: %s", run_id, ck.step, e)
                c.execute("DELETE FROM checkpoints WHERE run_id = ? AND step = ?", (run_id, ck.step))
                item = self.lost_found.move(ck.file, run_id, ck.step, lostfound.REASONS[lostfound.why(e)])
                lost.append((ck.step, item.why))
        if found is not None:
            k = found["step"]
            record.hparams = checkpoint_hparams(found)
            record.train_seconds = found["train_seconds"]
        else:  # never checkpointed: it starts again from its settings
            k = 0
            record.hparams = record.spec.hparams()
            record.train_seconds = 0.0
        straddling = c.execute(
            "SELECT first, n, loss, lr FROM steps WHERE run_id = ? AND first < ? AND first + n > ?", (run_id, k, k)
        ).fetchone()
        if straddling is not None:
            first, _n, loss, lr = straddling
            keep = k - first
            c.execute(
                "UPDATE steps SET n = ?, loss = ?, lr = ?, time_end = ? WHERE run_id = ? AND first = ?",
                (
                    keep,
                    loss[: 4 * keep],
                    lr[: 4 * keep] if lr is not None else None,
                    record.train_seconds,
                    run_id,
                    first,
                ),
            )
        c.execute("DELETE FROM steps WHERE run_id = ? AND first >= ?", (run_id, k))
        c.execute("DELETE FROM evals WHERE run_id = ? AND step > ?", (run_id, k))
        c.execute("DELETE FROM changes WHERE run_id = ? AND step > ?", (run_id, k))
        diagnostics.cut(c, run_id, k)
        last = c.execute(
            "SELECT step, train_loss, dev_loss, b_noise FROM evals WHERE run_id = ? ORDER BY step DESC LIMIT 1",
            (run_id,),
        ).fetchone()
        record.last_eval = (
            None if last is None else dict(zip(("step", "train_loss", "dev_loss", "b_noise"), last, strict=True))
        )
        if lost:
            damage: tuple[int, str] | None = lost[0]
        else:  # a step past its newest checkpoint is no loss while it trained, else one never saved
            damage = (was, "never saved") if detail is None and was > k else None
        if damage is not None:
            hparams = record.hparams.model_dump(mode="json")
            c.execute(
                "INSERT INTO changes (run_id, step, seq, change) VALUES (?, ?,"
                " (SELECT COALESCE(MAX(seq), -1) + 1 FROM changes WHERE run_id = ?), ?)",
                (run_id, k, run_id, json.dumps(lostfound.restored(k, *damage, hparams))),
            )
        record.detail = lostfound.cut_detail(detail, k, damage, found is not None)
        if status is None:
            keep = record.status not in (Status.FINISHED, Status.QUEUED, Status.RUNNING)
            status = record.status if keep else Status.PAUSED
            cause = record.cause if keep else None
        if cause is not record.cause:
            record.cause, record.divergence = cause, None
        record.step, record.status = k, status
        record.updated_at = time.time()
        c.execute(
            "UPDATE runs SET status = ?, detail = ?, step = ?, hparams = ?, max_steps = ?, train_seconds = ?,"
            " last_eval = ?, updated_at = ?, cause = ?, divergence = ? WHERE id = ?",  # history: cut when read
            (record.status.value, record.detail, k, record.hparams.model_dump_json(), record.hparams.max_steps,
             record.train_seconds, _json(record.last_eval), record.updated_at, record.cause,
             divergence_json(record.divergence), run_id),
        )  # fmt: skip
        return record

    def recover(self) -> list[RunRecord]:
        """At start-up, before anything runs: runs that were training when the process died are
        `interrupted` at their last checkpoint; any other run whose latest checkpoint fails its
        sha256, or is gone, or is older than its step, stands at its newest sound one (`_cut`);
        runs that waited in the queue are paused. Files without rows go to lost+found, rows
        without files are dropped (and recorded there). Returns the runs it changed. Blocking."""

        def op(c: sqlite3.Connection) -> list[RunRecord]:
            changed: dict[str, RunRecord] = {}
            for (run_id,) in c.execute("SELECT id FROM runs WHERE status = ?", (Status.RUNNING.value,)).fetchall():
                detail = "interrupted at step {step:,}: the server stopped while it trained; resume it from there"
                if (r := self._cut(c, run_id, Status.INTERRUPTED, detail, Cause.SERVER_STOPPED)) is not None:
                    changed[run_id] = r
            # one file read and hashed per run: a home of 1,000 runs of 60 KB checkpoints starts in
            # ~0.2 s more (0.03 -> 0.21-0.26 s here, warm cache); a cut reads the older ones
            for run_id, step, latest, file, sha in c.execute(
                "SELECT r.id, r.step, k.step, k.file, k.sha256 FROM runs r JOIN checkpoints k ON k.run_id = r.id"
                " AND k.step = (SELECT MAX(step) FROM checkpoints WHERE run_id = r.id) WHERE r.status != ?",
                (Status.RUNNING.value,),
            ).fetchall():
                if step <= latest and files.sound(self.home / file, sha):
                    continue
                if (r := self._cut(c, run_id, None, None)) is not None:
                    changed[run_id] = r
            self._clean_files(c)
            for (run_id,) in c.execute("SELECT id FROM runs WHERE status = ?", (Status.QUEUED.value,)).fetchall():
                c.execute(
                    "UPDATE runs SET status = ?, detail = ?, cause = ?, divergence = NULL WHERE id = ?",
                    (
                        Status.PAUSED.value,
                        "it was waiting in the queue when the server stopped",
                        Cause.SERVER_STOPPED,
                        run_id,
                    ),
                )
                if (r := self.run_in(c, run_id)) is not None:
                    changed[run_id] = r
            return list(changed.values())

        result: list[RunRecord] = self._write(op)
        return result

    def run_in(self, c: sqlite3.Connection, run_id: str) -> RunRecord | None:
        row = c.execute(f"SELECT {self._RUN_COLUMNS} FROM runs WHERE id = ?", (run_id,)).fetchone()
        return self._record(row) if row else None

    def _clean_files(self, c: sqlite3.Connection) -> None:
        """Files without rows are moved to lost+found (written just before a crash, or their rows
        lost with the WAL: maybe the only copy of a run), temporary files left by a crash go (never
        the only copy), rows without files are dropped and recorded. One listing of each run's
        directory and set lookups, no stat per file: a home of 1,000 runs holds ~51,000 checkpoint
        files, which pathlib's glob and a stat each took ~1.5 s of CPU to go through at every start."""
        rows = {
            f: (run_id, step, size)
            for run_id, step, f, size in c.execute("SELECT run_id, step, file, bytes FROM checkpoints")
        }
        present = set()
        with os.scandir(self.checkpoint_dir) as run_dirs:
            for run_dir in run_dirs:
                if not run_dir.is_dir():
                    continue
                with os.scandir(run_dir.path) as entries:
                    for entry in entries:
                        rel = f"{self.checkpoint_dir.name}/{run_dir.name}/{entry.name}"
                        if rel in rows:
                            present.add(rel)
                        elif entry.name.endswith(".tmp"):
                            log.info("removing %s: a temporary file left by a crash", rel)
                            files.remove(Path(entry.path))
                        elif entry.is_file():
                            step = lostfound.step_of(entry.name)
                            self.lost_found.move(rel, run_dir.name, step, lostfound.NO_ROW)
        for rel in rows.keys() - present:
            run_id, step, size = rows[rel]
            c.execute("DELETE FROM checkpoints WHERE run_id = ? AND step = ?", (run_id, step))
            self.lost_found.record(rel, run_id, step, size, lostfound.REASONS["missing"])

    # ---- datasets ------------------------------------------------------------------------------------
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

    # ---- sweeps --------------------------------------------------------------------------------
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

    # ---- size on disk --------------------------------------------------------------------------------
    def run_bytes(self, run_id: str) -> int:
        """What one run takes: its rows' payloads and its checkpoint files (for the benchmark)."""
        c = self._reader()
        (steps,) = c.execute(
            "SELECT COALESCE(SUM(LENGTH(loss) + COALESCE(LENGTH(lr), 0) + 40), 0) FROM steps WHERE run_id = ?",
            (run_id,),
        ).fetchone()
        (other,) = c.execute(
            "SELECT (SELECT COUNT(*) * 40 FROM evals WHERE run_id = ?) + (SELECT COALESCE(SUM(LENGTH(change)), 0)"
            " FROM changes WHERE run_id = ?) + (SELECT COALESCE(SUM(LENGTH(result)), 0) FROM lrfinds WHERE run_id = ?)",
            (run_id, run_id, run_id),
        ).fetchone()
        (ck,) = c.execute("SELECT COALESCE(SUM(bytes), 0) FROM checkpoints WHERE run_id = ?", (run_id,)).fetchone()
        return int(steps + other + ck)


class NoHistoryStore(Store):
    """Bench only (Settings.bench_no_store): a store that keeps run records and datasets but drops
    every write of a run's steps, evaluations and checkpoints, so that a benchmark can put the
    cost of storing them beside a run that does not pay it."""

    def add_steps(
        self, run_id: str, first: int, losses: list[float], lrs: list[float], batch_size: int, time_end: float
    ) -> None:
        pass

    def add_eval(self, run_id: str, step: int, train: float | None, dev: float | None) -> None:
        pass

    def set_noise(self, run_id: str, step: int, b_noise: float) -> None:
        pass

    def put_checkpoint(
        self, run_id: str, step: int, data: bytes, train_loss: float | None, dev_loss: float | None
    ) -> None:
        pass
