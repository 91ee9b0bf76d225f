"""Faults at start-up stop the process with one line; no traceback ever reaches a client."""

from __future__ import annotations

import logging
import os
import signal
import sqlite3
import subprocess
import urllib.request
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from backend.app import failures
from backend.app.boot import Boot
from backend.app.main import create_app
from backend.config import Settings
from backend.core.data import Dataset
from backend.runs.registry import RunRegistry
from backend.store import preflight
from backend.store.preflight import StartError, check_database
from backend.store.store import Store
from harness.server import ROOT, running_server, start_to_end
from tests.conftest import wait_for

DEADLINE = 60.0  # seconds; generous, for a loaded machine


def start(home: Path) -> subprocess.CompletedProcess[str]:
    return start_to_end(home, DEADLINE)


def one_line(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr  # one line: no log, no traceback
    assert "Traceback" not in result.stderr and lines[0].startswith("makemore live: cannot start: ")
    return lines[0]


def test_a_home_that_cannot_be_written_stops_the_server(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("not a directory")
    home = tmp_path / "file" / "home"  # root may write anywhere, but not under a file
    assert f"cannot write in the home {home}" in one_line(start(home))


def test_a_garbage_database_stops_the_server(tmp_path: Path) -> None:
    (tmp_path / "makemore.db").write_bytes(os.urandom(64 * 1024))
    line = one_line(start(tmp_path))
    assert f"the database {tmp_path / 'makemore.db'} is damaged (file is not a database)" in line


def damaged_database(path: Path) -> None:
    """A database whose header holds but one of its pages does not."""
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE t (a INTEGER PRIMARY KEY, b TEXT)")
        conn.execute("CREATE INDEX t_b ON t (b)")
        conn.executemany("INSERT INTO t (b) VALUES (?)", [(str(i) * 20,) for i in range(20_000)])
    conn.close()
    with open(path, "r+b") as f:
        f.seek(5 * 4096 + 100)
        f.write(b"\xab" * 300)


def test_a_damaged_page_is_found_and_told_in_one_line(tmp_path: Path) -> None:
    damaged_database(tmp_path / "makemore.db")
    with pytest.raises(StartError) as e:
        check_database(tmp_path / "makemore.db")
    assert "is damaged (" in str(e.value) and "\n" not in str(e.value)


def test_a_big_database_is_checked_for_at_most_its_time(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """quick_check stopped by its deadline is no damage: the server starts."""
    store = Store(tmp_path)
    store.open()
    store.close()
    assert store.path.name == preflight.DATABASE  # the file the preflight checks is the store's
    check_database(store.path)
    monkeypatch.setattr(preflight, "CHECK_SECONDS", -1.0)  # past its deadline from the start
    check_database(store.path)


def test_an_unhandled_exception_is_500_with_an_error_id_and_no_traceback(
    tmp_path: Path, small_dataset: Dataset, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    async def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError(f"secret detail in {tmp_path}")

    monkeypatch.setattr(RunRegistry, "runs", broken)
    app = create_app(Settings(home=tmp_path), small_dataset)
    with TestClient(app, raise_server_exceptions=False) as client:
        answer = client.get("/api/runs")
    assert answer.status_code == 500
    body = answer.json()
    assert body == {"detail": "internal error", "error_id": body["error_id"]} and len(body["error_id"]) == 8
    assert "secret" not in answer.text and "Traceback" not in answer.text
    logged = [r for r in caplog.records if body["error_id"] in r.getMessage()]
    assert len(logged) == 1 and logged[0].exc_info is not None  # the id and the traceback, together
    assert "secret detail" in str(logged[0].exc_info[1])


def test_boot_passes_on_no_exception_the_application_answered_and_logged() -> None:
    """Starlette raises the exception again after its 500 "so that servers log it": uvicorn would
    log a second traceback, without the error id. Boot keeps it; other exceptions go on."""
    app = FastAPI()
    app.add_exception_handler(Exception, failures.internal_error)

    @app.get("/api/broken")
    async def broken() -> None:
        raise RuntimeError("boom")

    with TestClient(Boot(lambda: app)) as client:  # raises what reaches it
        answer = client.get("/api/broken")
    assert answer.status_code == 500 and set(answer.json()) == {"detail", "error_id"}


def test_a_failed_start_after_listening_ends_the_process(tmp_path: Path) -> None:
    """Past the preflight, the application fails to start (its checkpoints directory is a file):
    the process exits non-zero, its last line naming the error's id."""
    (tmp_path / "checkpoints").write_text("not a directory")
    result = start(tmp_path)
    assert result.returncode == 1
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("makemore live: cannot start: the application failed (error ")
    error_id = last.split("(error ")[1].split(",")[0]
    assert f"the application failed to start (error {error_id})" in result.stderr  # with its traceback


@pytest.mark.slow
def test_ctrl_c_stops_the_server_without_a_traceback(tmp_path: Path) -> None:
    log = tmp_path / "server.log"
    # a terminal's server: Ctrl-C not ignored. A runner started in the background by a
    # non-interactive shell (`.ci/run &`) ignores SIGINT, and its children inherit that across
    # exec: such a server shuts down on SIGINT (uvicorn catches it) but cannot die of it after
    was = signal.signal(signal.SIGINT, signal.default_int_handler)  # a handler is reset by exec
    try:
        with running_server(log=log) as server:
            # the application loaded (torch, the store): what a user who presses Ctrl-C has running
            with urllib.request.urlopen(f"{server.url}/api/runs", timeout=120) as r:
                assert r.status == 200
            os.kill(server.pid, signal.SIGINT)

            def ended() -> list[int]:
                pid, status = os.waitpid(server.pid, os.WNOHANG)
                return [os.waitstatus_to_exitcode(status)] if pid else []

            code = wait_for(ended, timeout=30, what="the server to exit after SIGINT")
    finally:
        signal.signal(signal.SIGINT, was)
    assert code == [130]
    output = log.read_text()
    assert "Shutting down" in output and "Traceback" not in output and "KeyboardInterrupt" not in output


def test_the_503_of_a_failed_start_has_an_id_not_the_reason(caplog: pytest.LogCaptureFixture) -> None:
    calls: list[str] = []

    def load() -> FastAPI:
        raise RuntimeError(f"no torch in {ROOT}")

    with TestClient(Boot(load, on_failure=lambda: calls.append("failed"))) as client:
        answer = client.get("/api/runs")
        assert answer.status_code == 503
        assert answer.json() == {"detail": "the server failed to start", "error_id": answer.json()["error_id"]}
        assert str(ROOT) not in answer.text
        assert client.get("/api/health").status_code == 503
    assert calls == ["failed"]
    record = next(r for r in caplog.records if answer.json()["error_id"] in r.getMessage())
    assert record.levelno == logging.ERROR and record.exc_info is not None
