"""What `python -m backend` checks of its home before it listens, each fault one line to stderr.

A home the server cannot write in, or a database that is not one, used to surface only once
the application had loaded: as a server answering every request 503. Found here, the process
exits instead (so a supervisor such as Docker shows or restarts it), in milliseconds and
without importing torch or the store (numpy).
"""

from __future__ import annotations

import errno
import os
import sqlite3
import tempfile
import time
from pathlib import Path

from backend.container import in_container
from backend.store.lock import HomeInUseError, HomeLock

DATABASE = "makemore.db"  # Store.path's name (tests/app/test_startup_faults.py checks they agree)
CHECK_SECONDS = 1.0  # quick_check reads every page: ~0.15 s for 200 MB cached, more from a cold disk


class StartError(Exception):
    """Why the server cannot start on this home, in one line."""


def prepare_home(home: Path, address: str) -> HomeLock:
    """The home exists and is writable, no other server uses it (its lock, held from now on),
    and its database, if any, opens and passes a quick check."""
    check_writable(home)
    try:
        lock = HomeLock.acquire(home, address)
    except HomeInUseError as e:
        raise StartError(f"{e}; stop it or use --home") from None
    except OSError as e:
        raise StartError(f"cannot lock the home {home}: {e.strerror or e}") from None
    try:
        check_database(home / DATABASE)
    except StartError:
        lock.release()
        raise
    return lock


def check_writable(home: Path) -> None:
    """Creating a file is the test: permissions alone say nothing to root, nor of a read-only mount."""
    try:
        home.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=home):
            pass
    except OSError as e:
        raise StartError(f"cannot write in the home {home}: {e.strerror or e}{_container_fix(e, home)}") from None


def _container_fix(e: OSError, home: Path) -> str:
    """In the Docker image the server runs as uid 10001, and a directory bind-mounted from the
    host keeps the host's owner: say whom to give it to, and how."""
    if not in_container() or e.errno not in (errno.EACCES, errno.EPERM):
        return ""
    uid = os.getuid()
    return (
        f" (the container runs as uid {uid}: on the host, `chown -R {uid} DIR` for the directory "
        f"mounted at {home}, or use a named volume: -v makemore:{home})"
    )


def check_database(path: Path) -> None:
    """The database opens and its pages pass `PRAGMA quick_check` (within CHECK_SECONDS: a
    bigger database is checked in part; SQLite reports damage in the rest when it reads it)."""
    if not path.exists():
        return  # a new home: the store creates it
    deadline = time.monotonic() + CHECK_SECONDS
    try:
        conn = sqlite3.connect(path, timeout=5)
    except sqlite3.Error as e:
        raise StartError(f"cannot open the database {path}: {e}") from None
    try:
        conn.set_progress_handler(lambda: time.monotonic() > deadline, 10_000)
        result = [row[0] for row in conn.execute("PRAGMA quick_check(1)")]
    except sqlite3.OperationalError as e:
        if "interrupted" in str(e):
            return  # out of time, no damage found so far
        raise StartError(f"cannot read the database {path}: {e}") from None
    except sqlite3.Error as e:  # not a database, or damaged
        raise StartError(_damaged(path, str(e))) from None
    finally:
        conn.close()
    if result != ["ok"]:
        raise StartError(_damaged(path, " ".join(str(result[0]).split())))  # one line


def _damaged(path: Path, reason: str) -> str:
    return f"the database {path} is damaged ({reason}); move it aside to start afresh, or restore a copy"
