"""Memory of a server and its processes, and the size of its home on disk.

Since issue 8 the server process holds the registry, the store and the websocket fan-out, and
each run that trains (or was just read) has a worker process of its own, forked from a
forkserver that the server starts and that has torch imported. So the server's RSS no longer
includes any training; the workers are measured apart. A worker shares its parent's pages until
it writes them (copy-on-write), so RSS added over processes counts shared pages more than once:
the totals here add PSS (each shared page divided among the processes that map it).
MB here is 10^6 bytes.
"""

from __future__ import annotations

import contextlib
import sqlite3
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import psutil

MB = 1_000_000


def rss_mb(pid: int) -> float:
    return float(psutil.Process(pid).memory_info().rss) / MB


def peak_rss_mb(pid: int) -> float | None:
    """The kernel's high-water mark of the process's RSS (Linux), so no peak falls between samples."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024 / MB
    except OSError:
        return None
    return None


@dataclass(frozen=True)
class Tree:
    """The server process and what it started: RSS of each, PSS added up."""

    server_rss_mb: float  # the registry, the store, the fan-out (no training since issue 8)
    server_peak_mb: float | None  # its VmHWM
    forkserver_rss_mb: float  # the preloaded parent of the workers (torch imported, no run)
    workers_rss_mb: list[float]  # one per run's worker process
    workers_peak_mb: list[float]  # their VmHWM
    total_pss_mb: float  # every process of the server's, shared pages counted once

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _pss(p: psutil.Process) -> float:
    try:
        return float(p.memory_full_info().pss) / MB
    except (psutil.Error, AttributeError):  # PSS is Linux-only; a process may be gone
        return 0.0


def tree(server_pid: int) -> Tree:
    """The server's processes: its direct children are the forkserver (and multiprocessing's
    resource tracker); the forkserver's children are the runs' workers."""
    server = psutil.Process(server_pid)
    forkserver_rss, workers, peaks, total = 0.0, [], [], _pss(server)
    for child in server.children(recursive=True):
        with contextlib.suppress(psutil.Error):
            cmd = " ".join(child.cmdline())
            total += _pss(child)
            if child.ppid() == server_pid:
                if "forkserver" in cmd:
                    forkserver_rss = rss_mb(child.pid)
            else:  # forked by the forkserver: a run's worker
                workers.append(rss_mb(child.pid))
                peaks.append(peak_rss_mb(child.pid) or 0.0)
    return Tree(
        server_rss_mb=round(rss_mb(server_pid), 1),
        server_peak_mb=peak_rss_mb(server_pid),
        forkserver_rss_mb=round(forkserver_rss, 1),
        workers_rss_mb=[round(w, 1) for w in workers],
        workers_peak_mb=[round(w, 1) for w in peaks],
        total_pss_mb=round(total, 1),
    )


# ---- disk ---------------------------------------------------------------------------------------
def dir_bytes(path: Path) -> tuple[int, int]:
    """(bytes, files) under `path`: the files' sizes (what `du --apparent-size` says)."""
    size = files = 0
    for f in path.rglob("*"):
        if f.is_file():
            size += f.stat().st_size
            files += 1
    return size, files


def checkpoint_wal(db: Path) -> None:
    """Fold the WAL into the database and truncate it (the server must have stopped or be idle)."""
    conn = sqlite3.connect(db)
    try:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        conn.close()


def home_bytes(home: Path) -> dict[str, int]:
    """The home directory's size: the database (with its WAL and shared-memory files, whatever
    they hold now) and the checkpoint files."""
    db = sum(f.stat().st_size for f in home.glob("makemore.db*") if f.is_file())
    ck, ck_files = dir_bytes(home / "checkpoints") if (home / "checkpoints").exists() else (0, 0)
    return {"database": db, "checkpoints": ck, "checkpoint_files": ck_files, "total": db + ck}
