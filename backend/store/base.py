"""What every table of the store shares: the home's paths, the connections (one per
reading thread, the writer's own), and how values are kept in a row.
"""

from __future__ import annotations

import json
import math
import sqlite3
import threading
from pathlib import Path
from typing import Any

from backend.store import diagnostics, lostfound
from backend.store.writer import Writer


def json_or_none(value: Any) -> str | None:
    return None if value is None else json.dumps(value, allow_nan=False)


def finite(x: float | None) -> float | None:
    return x if x is not None and math.isfinite(x) else None


class Base(Writer):
    """The store's tables are mixins of Base; Store (store.py) is all of them over one writer."""

    def __init__(self, home: Path, history: bool = True) -> None:
        self.home = home
        # False: bench only (Settings.bench_no_store, bench/store_cost.py): run records and datasets
        # are kept, a run's steps, evaluations and checkpoints are dropped, so that a benchmark can
        # put the cost of storing them beside a run that does not pay it
        self.keeps_history = history
        self.path = home / "makemore.db"
        self.checkpoint_dir = home / "checkpoints"
        self.lost_found = lostfound.LostFound(home)
        self._local = threading.local()
        self._writer: threading.Thread | None = None
        super().__init__()
        self.diagnostics = diagnostics.DiagnosticsStore(self._queue, self._reader)

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
