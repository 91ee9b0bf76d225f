"""Start the real server (`python -m backend`) as a separate process, for end-to-end tests."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def start_to_end(home: Path, timeout: float) -> subprocess.CompletedProcess[str]:
    """`python -m backend --home <home>` on a free port, run to its end (a start that must fail:
    its exit code and one-line output)."""
    return subprocess.run(
        [sys.executable, "-m", "backend", "--home", str(home), "--port", str(free_port())],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def wait_healthy(url: str, proc: subprocess.Popen[bytes], timeout: float = 90.0) -> float:
    """Poll /api/health until it answers; return the seconds it took."""
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(f"{url}/api/health", timeout=1) as r:
                if r.status == 200:
                    return time.monotonic() - start
        except OSError:
            time.sleep(0.02)  # poll interval
    raise TimeoutError(f"{url} did not answer /api/health within {timeout}s")


@dataclass(frozen=True)
class ServerProcess:
    url: str  # http://127.0.0.1:PORT
    pid: int
    started_in: float  # seconds from the process start to its first /api/health answer


@contextmanager
def running_server(*args: str, env: dict[str, str] | None = None, log: Path | None = None) -> Iterator[ServerProcess]:
    """`python -m backend --port <free> *args`, until /api/health answers.
    An empty value in `env` removes that variable. The server's output goes to `log`, if given.
    Its store is a fresh temporary directory unless `env` names MAKEMORE_HOME (never the user's)."""
    port = free_port()
    home = tempfile.mkdtemp(prefix="makemore-home-")
    full_env = {k: v for k, v in {**os.environ, **(env or {})}.items() if v != ""}
    full_env.setdefault("MAKEMORE_HOME", home)
    with open(log or os.devnull, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "backend", "--port", str(port), *args],
            cwd=ROOT,
            env=full_env,
            stdout=out,
            stderr=out,
        )
    try:
        url = f"http://127.0.0.1:{port}"
        try:
            took = wait_healthy(url, proc)
        except (RuntimeError, TimeoutError) as e:
            tail = log.read_text()[-3000:] if log else ""
            raise RuntimeError(f"{e}\n{tail}") from None
        yield ServerProcess(url, proc.pid, took)
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
        shutil.rmtree(home, ignore_errors=True)
