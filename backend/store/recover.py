"""Crash recovery: a run cut back to its newest sound checkpoint (its history with it), and at
start-up every run checked and the checkpoint files matched with their rows (see store.py).
"""

from __future__ import annotations

import json
import logging
import os
import sqlite3
import time
from pathlib import Path

from backend.store import diagnostics, files, lostfound
from backend.store.base import json_or_none
from backend.store.records import CheckpointRecord, RunRecord
from backend.store.runs import Runs, divergence_json
from backend.training.checkpoint import hparams_of as checkpoint_hparams
from backend.training.checkpoint import read_metadata
from backend.training.protocol import Cause, Status

log = logging.getLogger(__name__)


class Recovery(Runs):
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
             record.train_seconds, json_or_none(record.last_eval), record.updated_at, record.cause,
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
