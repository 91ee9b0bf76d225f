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

import threading

from backend.store.checkpoints import KEEP_CHECKPOINTS, Checkpoints
from backend.store.datasets import Datasets
from backend.store.evals import Evals
from backend.store.recover import Recovery
from backend.store.schema import migrate
from backend.store.steps import CHUNK_STEPS, MAX_STORED_STEPS
from backend.store.sweeps import Sweeps

__all__ = ["CHUNK_STEPS", "KEEP_CHECKPOINTS", "MAX_STORED_STEPS", "Store"]


class Store(Recovery, Evals, Checkpoints, Datasets, Sweeps):
    """The store's tables (one module each) over one writer thread and its connections."""

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
