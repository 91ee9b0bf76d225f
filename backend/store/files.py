"""Checkpoint files: written whole or not at all, read back only if their checksum holds.

A write goes to a temporary file in the same directory, is flushed to disk (fsync), renamed over
its final name (atomic on POSIX), and the directory is fsynced so the rename itself survives a
crash. The database records each file's sha256 only after the file is in place; a file without
a row (the process died in between, or the row was lost) is moved to lost+found at start-up
(lostfound.py), never removed: it may be the only copy of a run's weights.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
from pathlib import Path


class CorruptCheckpointError(ValueError):
    pass


class MissingCheckpointError(CorruptCheckpointError):
    """The file is not there (or cannot be read at all)."""


def write_atomic(path: Path, data: bytes) -> str:
    """Write `data` to `path` durably and atomically; return its sha256 (hex).

    A write that fails (the disk full) leaves nothing behind: its temporary file would hold on to
    what space is left. A file already there with these very bytes (written before the
    transaction of its row failed, and written again when that is retried) is kept as it is:
    writing it anew would need its size in free space once more."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if not _holds(path, data):
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        try:
            with open(tmp, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
        except BaseException:
            remove(tmp)
            raise
    fsync_dir(path.parent)
    return hashlib.sha256(data).hexdigest()


def _holds(path: Path, data: bytes) -> bool:
    try:
        return path.stat().st_size == len(data) and path.read_bytes() == data
    except OSError:
        return False


def fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def read_verified(path: Path, sha256: str) -> bytes:
    try:
        data = path.read_bytes()
    except OSError as e:
        raise MissingCheckpointError(f"{path}: cannot read ({e.strerror})") from None
    if hashlib.sha256(data).hexdigest() != sha256:
        raise CorruptCheckpointError(f"{path}: checksum mismatch (a damaged or half-written file)")
    return data


def sound(path: Path, sha256: str) -> bool:
    """Whether the file is there and its checksum holds."""
    try:
        read_verified(path, sha256)
    except CorruptCheckpointError:
        return False
    return True


def remove(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        path.unlink()


def thin(steps: list[int], keep: int) -> list[int]:
    """Which checkpoints to drop so that at most `keep` earlier ones remain besides the latest.

    The first and the latest stay; among the others, drop again and again the one whose
    neighbours are closest together, so that what remains is spread evenly over the run: a branch
    can start anywhere in it, not only near its end."""
    kept = sorted(steps)
    dropped: list[int] = []
    while len(kept) > keep + 1 and len(kept) > 2:
        # the interior point i whose removal leaves the smallest gap kept[i+1] - kept[i-1]
        i = min(range(1, len(kept) - 1), key=lambda j: (kept[j + 1] - kept[j - 1], kept[j]))
        dropped.append(kept.pop(i))
    return dropped
