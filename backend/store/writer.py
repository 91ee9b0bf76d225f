"""The store's writer thread: writes are queued (they return at once, off the training and
event-loop paths) and committed in batches, one transaction every COMMIT_SECONDS (see store.py).

A transaction that fails (the disk full, over its quota, failing) is rolled back and its writes
are held, in order, and run again at the start of the next one: every RETRY_SECONDS while any are
held, and at once for a write someone waits for. Nothing is lost while the process lives, and
the store's `health` says why writes fail, since when and how much is held (/api/health). Writes
are closures over the connection: run again after a rollback, each finds the rows it read as they
were, and the chunks of steps are set back as the failed transaction found them (`_marks`). A
checkpoint whose file cannot be written waits alone: nothing of it is in the transaction, which
commits the rest. Reads see what is committed, not what is held.
"""

from __future__ import annotations

import logging
import queue
import sqlite3
import time
from array import array
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any, TypeVar

from backend.store.health import Write, WriteHealth, bounded, disk_refused, held_counts

log = logging.getLogger(__name__)

COMMIT_SECONDS = 0.5  # writes wait at most this long for their transaction
RETRY_SECONDS = 1.0  # while the disk refuses writes, those held are tried again this often
MAX_HELD_CHECKPOINT_BYTES = 64 << 20  # past it, only each run's newest held checkpoint is kept

T = TypeVar("T")
Op = Callable[[sqlite3.Connection], Any]


@dataclass(frozen=True)
class _Flush:
    done: Future[None]  # answered once everything queued before it is committed (or held)


_COMMIT = object()  # the writer's own marker: commit the open transaction now


@dataclass
class Pending:
    """A run's chunk that still grows: its steps so far, merged. Each commit (re)writes its row
    while it has new steps; it is let go once full, cut off (a new batch size, a gap), or not
    grown since the last commit (the run stopped training): the row stays as written."""

    first: int
    losses: array[float]  # float32, as stored
    lrs: array[float]
    batch_size: int
    time_end: float
    dirty: bool = True  # steps not yet in its row


class Writer:
    """The writer half of Store: it gives `_connect` and `_flush_steps` (the chunks of steps)."""

    def __init__(self) -> None:
        self._ops: queue.SimpleQueue[Write | _Flush | object | None] = queue.SimpleQueue()
        self._pending: dict[str, Pending] = {}  # the writer thread's own
        self.health = WriteHealth()
        # (run id, step, written): called on the writer thread when a checkpoint could not be
        # written (False: it is held) and when a held one is written at last (True)
        self.on_checkpoint: Callable[[str, int, bool], object] | None = None
        # the writer thread's own: the open transaction's writes, in order, or with none open those
        # held (a transaction failed); the checkpoints in it whose files could not be written; the
        # chunks of steps as it found them (chunk, its length, time_end, dirty); the checkpoints
        # said to be held; why writes fail; when those held are tried again
        self._txn: list[Write] = []
        self._deferred: list[Write] = []
        self._marks: dict[str, tuple[Pending, int, float, bool]] | None = None
        self._announced: set[tuple[str, int]] = set()
        self._reason = ""
        self._retry_at = 0.0

    def _connect(self) -> sqlite3.Connection:
        raise NotImplementedError

    def _flush_steps(self, conn: sqlite3.Connection) -> None:
        raise NotImplementedError

    def _write_loop(self) -> None:
        conn = self._connect()
        started: float | None = None  # when the open transaction began
        waiting: list[tuple[Future[Any], Any]] = []  # answered once their transaction commits or is held
        while True:
            if started is not None:
                timeout: float | None = max(0.0, started + COMMIT_SECONDS - time.monotonic())
            else:
                timeout = max(0.0, self._retry_at - time.monotonic()) if self._txn else None
            try:
                item = self._ops.get(timeout=timeout)
            except queue.Empty:
                item = _COMMIT
            if item is _COMMIT or item is None:
                if started is None and self._txn:  # those held, tried again
                    started = self._begin(conn, waiting, [])
                if started is not None:
                    self._commit(conn, waiting)
                    started = None
                if item is None:  # close()
                    if self._txn:
                        log.error("the store closes with writes it could not make, lost: %s", held_counts(self._txn))
                    conn.close()
                    return
                continue
            if isinstance(item, _Flush):
                # no transaction open: what was queued before is committed already, or held (the
                # disk refuses it: the reader reads what is committed). A commit of nothing costs
                # a sync of the disk: tens of ms, per read that asks for it. Chunks not grown
                # since the last commit are let go, as a commit would.
                if started is None and (self._txn or not any(p.dirty for p in self._pending.values())):
                    if not self._txn:
                        self._flush_steps(conn)  # writes nothing: nothing is dirty
                    item.done.set_result(None)
                else:
                    waiting.append((item.done, None))
                    self._commit(conn, waiting)
                    started = None
                continue
            assert isinstance(item, Write)
            if started is None:
                if self._txn and item.done is None:
                    self._txn.append(item)  # held with the rest, until the next try
                    continue
                started = self._begin(conn, waiting, [item])
            elif not self._run(conn, [item], waiting):
                started = None
            if started is not None and (item.done is not None or time.monotonic() - started >= COMMIT_SECONDS):
                self._commit(conn, waiting)  # someone waits for this one: commit now
                started = None

    def _begin(
        self, conn: sqlite3.Connection, waiting: list[tuple[Future[Any], Any]], new: list[Write]
    ) -> float | None:
        """Open a transaction and run in it those held, then `new`: when it began, or None if it failed."""
        try:
            conn.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as e:
            self._txn.extend(w for w in new if not self._refused(w, e))
            self._fail(conn, disk_refused(e) or f"a transaction could not begin ({e})", waiting)
            return None
        self._marks = {rid: (p, len(p.losses), p.time_end, p.dirty) for rid, p in self._pending.items()}
        held, self._txn, self._deferred = self._txn, [], []
        return time.monotonic() if self._run(conn, held + new, waiting) else None

    def _run(self, conn: sqlite3.Connection, writes: list[Write], waiting: list[tuple[Future[Any], Any]]) -> bool:
        """The writes, in order, in the open transaction; False if it failed (then all are held)."""
        for i, w in enumerate(writes):
            try:
                result = w.op(conn)
            except Exception as e:
                reason = disk_refused(e)
                if reason is None:  # its own fault: dropped, the transaction goes on
                    log.exception("store write failed")
                    self._refused(w, e)
                elif w.checkpoint is not None and isinstance(e, OSError):
                    # its file could not be written: nothing of it is in the transaction
                    self._txn.append(w)
                    self._deferred.append(w)
                    self._reason = reason
                else:
                    self._txn.extend(x for x in writes[i:] if not self._refused(x, e))
                    self._fail(conn, reason, waiting)
                    return False
                continue
            self._txn.append(w)
            if w.done is not None and not w.done.done():  # not when it runs again, held
                waiting.append((w.done, result))
        return True

    @staticmethod
    def _refused(w: Write, e: Exception) -> bool:
        """A write someone waits for that did not run is answered with the error, and not held."""
        if w.done is None or w.done.done():
            return False
        w.done.set_exception(e)
        return True

    def _commit(self, conn: sqlite3.Connection, waiting: list[tuple[Future[Any], Any]]) -> None:
        try:
            self._flush_steps(conn)
            conn.execute("COMMIT")
        except Exception as e:
            reason = disk_refused(e)
            if reason is None:
                log.exception("store commit failed")
            self._fail(conn, reason or f"a commit failed ({e})", waiting)
            return
        self._marks = None
        for done, result in waiting:
            done.set_result(result)
        waiting.clear()
        committed, self._txn, self._deferred = self._txn, self._deferred, []
        if self._txn:  # checkpoints whose files could not be written
            self._hold(self._reason)
        else:
            self.health.ok()
        held = {id(w) for w in self._txn}
        for w in committed:
            if w.checkpoint is not None and id(w) not in held:
                self._announce(w.checkpoint, written=True)

    def _fail(self, conn: sqlite3.Connection, reason: str, waiting: list[tuple[Future[Any], Any]]) -> None:
        """The transaction failed: rolled back, its writes held (self._txn), its chunks set back."""
        if conn.in_transaction:
            try:
                conn.execute("ROLLBACK")
            except sqlite3.Error:
                log.exception("store rollback failed")
        if self._marks is not None:
            self._pending = {}
            for rid, (p, n, time_end, dirty) in self._marks.items():
                del p.losses[n:], p.lrs[n:]
                p.time_end, p.dirty = time_end, dirty
                self._pending[rid] = p
            self._marks = None
        self._deferred = []
        for done, result in waiting:
            done.set_result(result)  # held: in memory, written when the disk takes it
        waiting.clear()
        self._hold(reason)

    def _hold(self, reason: str) -> None:
        self._txn, dropped = bounded(self._txn, MAX_HELD_CHECKPOINT_BYTES)
        for w in dropped:
            assert w.checkpoint is not None
            log.warning("run %s: its held checkpoint at step %d is dropped: a newer one is held", *w.checkpoint[:2])
            self._announced.discard(w.checkpoint[:2])
        self._reason = reason
        self._retry_at = time.monotonic() + RETRY_SECONDS
        self.health.failing(reason, held_counts(self._txn))
        for w in self._txn:
            if w.checkpoint is not None and w.checkpoint[:2] not in self._announced:
                self._announce(w.checkpoint, written=False)

    def _announce(self, checkpoint: tuple[str, int, int], written: bool) -> None:
        run_id, step = checkpoint[:2]
        if written:
            if (run_id, step) not in self._announced:
                return
            self._announced.discard((run_id, step))
        else:
            self._announced.add((run_id, step))
        if self.on_checkpoint is not None:
            try:
                self.on_checkpoint(run_id, step, written)
            except Exception:
                log.exception("on_checkpoint failed")

    def _drop_deferred(self, run_id: str) -> None:
        """The run's checkpoints whose files could not be written in this transaction are dropped:
        it is being cut back to its newest durable one."""
        gone = {id(w) for w in self._deferred if w.checkpoint is not None and w.checkpoint[0] == run_id}
        self._deferred = [w for w in self._deferred if id(w) not in gone]
        self._txn = [w for w in self._txn if id(w) not in gone]
        self._announced -= {k for k in self._announced if k[0] == run_id}

    def _queue(self, op: Op, checkpoint: tuple[str, int, int] | None = None, steps: int = 0) -> None:
        """Queue a write; it is committed within COMMIT_SECONDS (or held while the disk refuses it)."""
        self._ops.put(Write(op, None, checkpoint, steps))

    def _write(self, op: Callable[[sqlite3.Connection], T]) -> T:
        """Queue a write, commit it now, and wait; its result (blocking: not on the event loop).
        While the disk refuses writes, its result once it ran, the write held; it raises only if
        it did not run."""
        done: Future[T] = Future()
        self._ops.put(Write(op, done))
        return done.result(60)

    def flush(self) -> None:
        """Wait until everything queued so far is committed, or held (blocking; never raises for
        a failing disk: a read after it reads what is committed)."""
        done: Future[None] = Future()
        self._ops.put(_Flush(done))
        done.result(60)
