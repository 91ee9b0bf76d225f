"""Checkpoints: a file written atomically, then its row; the latest and KEEP_CHECKPOINTS
earlier ones kept; read back only if their sha256 holds.
"""

from __future__ import annotations

import logging
import sqlite3
import time

from backend.store import files
from backend.store.base import Base, finite
from backend.store.records import CheckpointRecord

log = logging.getLogger(__name__)

KEEP_CHECKPOINTS = 50  # earlier checkpoints kept per run besides the latest (thinned evenly)


class Checkpoints(Base):
    def put_checkpoint(
        self, run_id: str, step: int, data: bytes, train_loss: float | None, dev_loss: float | None
    ) -> None:
        """Write the file (atomically), then its row; keep the latest and KEEP_CHECKPOINTS earlier."""
        if not self.keeps_history:  # bench only (Settings.bench_no_store)
            return
        rel = f"checkpoints/{run_id}/{step:012d}.safetensors"

        def op(c: sqlite3.Connection) -> None:
            if c.execute("SELECT 1 FROM runs WHERE id = ?", (run_id,)).fetchone() is None:
                return  # deleted meanwhile
            sha = files.write_atomic(self.home / rel, data)
            c.execute(
                "INSERT OR REPLACE INTO checkpoints (run_id, step, file, bytes, sha256, train_loss, dev_loss,"
                " created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (run_id, step, rel, len(data), sha, finite(train_loss), finite(dev_loss), time.time()),
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
