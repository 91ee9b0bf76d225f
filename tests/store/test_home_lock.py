"""One server per home: the second one on a home exits at once, naming the first."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from backend.store.lock import LOCK_FILE, HomeInUseError, HomeLock
from backend.store.store import Store
from harness.server import ROOT, running_server, start_to_end

DEADLINE = 30.0  # seconds; generous, for a loaded machine

HOLD = """
import sys
from pathlib import Path
from backend.store.lock import HomeLock
lock = HomeLock.acquire(Path(sys.argv[1]), "http://127.0.0.1:1234")
print("locked", flush=True)
sys.stdin.read()  # until the test closes our stdin
"""


def test_the_lock_is_held_by_one_process_and_released_when_it_exits(tmp_path: Path) -> None:
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(tmp_path)], cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "locked\n"
        with pytest.raises(HomeInUseError) as refused:
            HomeLock.acquire(tmp_path, "http://127.0.0.1:5678")
        assert refused.value.holder == f"pid {holder.pid}, http://127.0.0.1:1234"
        assert f"pid {holder.pid}" in str(refused.value) and str(tmp_path) in str(refused.value)
    finally:
        assert holder.stdin is not None
        holder.stdin.close()  # the holder ends; the kernel releases its lock, the file stays
        holder.wait(DEADLINE)
    lock = HomeLock.acquire(tmp_path, "http://127.0.0.1:5678")
    try:
        assert (tmp_path / LOCK_FILE).read_text() == f"{os.getpid()} http://127.0.0.1:5678\n"
    finally:
        lock.release()
    HomeLock.acquire(tmp_path, "http://127.0.0.1:5678").release()  # released: free again


def test_the_lock_file_is_no_business_of_the_store(tmp_path: Path) -> None:
    """The store opens, cleans up and closes a locked home, and leaves the lock file alone."""
    lock = HomeLock.acquire(tmp_path, "http://127.0.0.1:1")
    try:
        for _ in range(2):  # the second open is a restart's: it cleans up after "a crash"
            store = Store(tmp_path)
            store.open()
            store.close()
        assert (tmp_path / LOCK_FILE).read_text() == f"{os.getpid()} http://127.0.0.1:1\n"
    finally:
        lock.release()


def start_second(home: Path) -> subprocess.CompletedProcess[str]:
    return start_to_end(home, DEADLINE)


@pytest.mark.slow
def test_a_second_server_on_a_home_exits_at_once_naming_the_first(tmp_path: Path) -> None:
    home = tmp_path / "home"
    with running_server(env={"MAKEMORE_HOME": str(home)}) as first:
        began = time.monotonic()
        second = start_second(home)
        took = time.monotonic() - began
        assert second.returncode == 2
        lines = second.stderr.strip().splitlines()
        assert len(lines) == 1, second.stderr  # one line: no log, no traceback
        assert f"another server (pid {first.pid}, {first.url})" in lines[0]
        assert str(home) in lines[0] and "--home" in lines[0]
        assert took < 10, took  # before the port and torch: about the interpreter's start
    # the first has stopped: the home is free
    with running_server(env={"MAKEMORE_HOME": str(home)}) as again:
        assert (home / LOCK_FILE).read_text() == f"{again.pid} {again.url}\n"
