"""Whether the store's writes reach the disk, and what waits in memory while they do not.

A full disk (or a quota, or an I/O error) must neither lose what the server was told nor hide:
the writer keeps the writes of a transaction that failed and tries them again (store.py), and
this is what it says about that to /api/health: why, since when, and how much is held.
"""

from __future__ import annotations

import errno
import logging
import sqlite3
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any

log = logging.getLogger(__name__)

_FULL = "the disk is full"
_REASONS = {
    errno.ENOSPC: _FULL,
    errno.EDQUOT: "the disk quota is used up",
    errno.EIO: "the disk failed a write (an I/O error)",
}


def disk_refused(e: BaseException) -> str | None:
    """Why, if `e` says the disk refused a write (full, over its quota, an I/O error); else None.

    Said without the home's path: /api/health answers without a token."""
    if isinstance(e, OSError):
        return _REASONS.get(e.errno or 0)
    if isinstance(e, sqlite3.OperationalError):
        name = getattr(e, "sqlite_errorname", "") or ""
        if name == "SQLITE_FULL" or "database or disk is full" in str(e):
            return _FULL
        if name.startswith("SQLITE_IOERR") or "disk I/O error" in str(e):
            return _REASONS[errno.EIO]
    return None


class WriteHealth:
    """Updated by the writer thread, read by any (a lock: a snapshot is a copy)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._state: dict[str, Any] = {"status": "ok"}

    def failing(self, reason: str, held: dict[str, int]) -> None:
        with self._lock:
            began = self._state["status"] == "ok"
            since = time.time() if began else self._state["since"]
            self._state = {"status": "degraded", "reason": reason, "since": since, "held": held}
        if began:
            log.error("the store's writes fail (%s): they are kept in memory and tried again every second", reason)

    def ok(self) -> None:
        with self._lock:
            since = self._state.get("since")
            self._state = {"status": "ok"}
        if since is not None:
            log.warning("the store's writes reach the disk again, after %.0f s", time.time() - since)

    def state(self) -> dict[str, Any]:
        """{"status": "ok"}, or {"status": "degraded", "reason", "since" (Unix time), "held"}."""
        with self._lock:
            return dict(self._state)

    @property
    def failed(self) -> bool:
        with self._lock:
            return bool(self._state["status"] != "ok")


@dataclass(frozen=True)
class Write:
    """A write the store's writer runs in a transaction (store.py)."""

    op: Callable[[sqlite3.Connection], Any]
    done: Future[Any] | None  # someone waits for its commit
    checkpoint: tuple[str, int, int] | None = None  # (run id, step, bytes): its op writes that file first
    steps: int = 0  # the steps it adds


def held_counts(writes: list[Write]) -> dict[str, int]:
    checkpoints = [w.checkpoint for w in writes if w.checkpoint is not None]
    return {
        "writes": len(writes),
        "steps": sum(w.steps for w in writes),
        "checkpoints": len(checkpoints),
        "checkpoint_bytes": sum(c[2] for c in checkpoints),
    }


def bounded(writes: list[Write], max_checkpoint_bytes: int) -> tuple[list[Write], list[Write]]:
    """(kept, dropped): past `max_checkpoint_bytes` of held checkpoints, only each run's newest is
    kept (a checkpoint is the whole state: the newest makes the older ones of its run redundant).
    Nothing else is ever dropped: evaluations, changes, statuses and steps are small, and a gap in
    a run's steps would make its history unreadable."""
    checkpoints = [w for w in writes if w.checkpoint is not None]
    if sum(w.checkpoint[2] for w in checkpoints if w.checkpoint is not None) <= max_checkpoint_bytes:
        return writes, []
    newest = {w.checkpoint[0]: w for w in checkpoints if w.checkpoint is not None}  # in order: the last one wins
    keep = {id(w) for w in newest.values()}
    dropped = [w for w in checkpoints if id(w) not in keep]
    gone = {id(w) for w in dropped}
    return [w for w in writes if id(w) not in gone], dropped
