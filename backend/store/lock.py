"""One server per home: an OS lock on `<home>/server.lock`, held for the process's life.

SQLite's own locks serialise transactions, but two servers on one home would each believe they
own its runs: both resume the same run, write its checkpoints, remove each other's files as
"left by a crash". `flock` is released by the kernel when the holder dies, however it dies (a
crash, SIGKILL, a container stopped), so a stale lock never blocks the next start, which a
PID file alone would. The file itself stays; it names the holder (its PID and address) so that
a second server can say which one is in the way.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from pathlib import Path

LOCK_FILE = "server.lock"  # in the home; the store never looks at files outside checkpoints/


class HomeInUseError(Exception):
    def __init__(self, home: Path, holder: str) -> None:
        self.home, self.holder = home, holder  # "pid 1234, http://127.0.0.1:8000", or "" if unknown
        super().__init__(f"another server ({holder or 'pid unknown'}) uses the home {home}")


class HomeLock:
    """The lock of one home, held until `release` (or until the process ends)."""

    def __init__(self, home: Path, fd: int) -> None:
        self.path = home / LOCK_FILE
        self._fd: int | None = fd

    @classmethod
    def acquire(cls, home: Path, address: str) -> HomeLock:
        """Take the lock (without waiting) and write this process's PID and `address` into it;
        HomeInUseError names the holder if another process has it. The home must exist."""
        path = home / LOCK_FILE
        # Not inherited across exec (PEP 446); a forked child shares the lock, and keeps the home
        # locked while it lives: it may still be writing to it.
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise HomeInUseError(home, _read_holder(path)) from None
        except BaseException:
            os.close(fd)
            raise
        lock = cls(home, fd)
        lock.describe(address)
        return lock

    def describe(self, address: str) -> None:
        """Name the holder in the file: this process's PID and the address it serves."""
        assert self._fd is not None, "released"
        text = f"{os.getpid()} {address}\n".encode()
        os.ftruncate(self._fd, 0)
        os.pwrite(self._fd, text, 0)

    def release(self) -> None:
        if self._fd is not None:
            with contextlib.suppress(OSError):
                os.ftruncate(self._fd, 0)  # the PID would be stale
            os.close(self._fd)  # closing the only descriptor releases the lock
            self._fd = None


def _read_holder(path: Path) -> str:
    """The holder as "pid 1234, http://host:port" from its file; "" if it has not written it yet."""
    try:
        pid, _, address = path.read_text(errors="replace").strip().partition(" ")
    except OSError:
        return ""
    if not pid.isdigit():
        return ""
    return f"pid {pid}, {address}" if address else f"pid {pid}"
