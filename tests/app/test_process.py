"""The real server process (`python -m backend`) dying or asked to stop, and started again on
the same home: kill -9 loses at most ~2 s of training and no worker outlives it; SIGTERM, and a
terminal's Ctrl-C (SIGINT to the whole process group), checkpoint every running run, mark it paused
and exit within 5 s."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import psutil
import pytest

from harness import rawclient
from harness.server import ROOT, free_port, wait_healthy
from tests.conftest import wait_for

pytestmark = pytest.mark.slow


class Server:
    """`python -m backend` on a home of the test's own, that the test may kill."""

    def __init__(self, home: Path, log: Path, **settings: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {k: v for k, v in os.environ.items() if not k.startswith("MAKEMORE_")}
        env["MAKEMORE_HOME"] = str(home)
        env |= {f"MAKEMORE_{k.upper()}": v for k, v in settings.items()}
        with open(log, "ab") as out:
            # a process group of its own, as a terminal gives the command it runs: a test can signal
            # the whole group (Ctrl-C) without signalling pytest
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "backend", "--port", str(self.port)],
                cwd=ROOT,
                env=env,
                stdout=out,
                stderr=out,
                start_new_session=True,
            )
        wait_healthy(self.url, self.proc)

    def call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.url + path, data=data, method=method)
        req.add_header("Content-Type", "application/json")
        with urllib.request.urlopen(req, timeout=30) as r:
            return json.load(r)

    def workers(self) -> list[psutil.Process]:
        """Its runs' worker processes (forked by its forkserver: its grandchildren)."""
        me = psutil.Process(self.proc.pid)
        return [p for p in me.children(recursive=True) if p.name() != "" and "makemore-run" in " ".join(_cmd(p))]

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)


def _cmd(p: psutil.Process) -> list[str]:
    try:
        return [p.name(), *p.cmdline()]
    except psutil.Error:
        return []


def training(server: Server) -> dict[str, Any]:
    """A run that trains on (evaluations rare: its checkpoints are the timed ones, every 2 s)."""
    run: dict[str, Any] = server.call("POST", "/api/runs", {"max_steps": 10**8, "eval_every": 10**6})
    wait_for(lambda: server.call("GET", f"/api/runs/{run['id']}")["step"] > 20_000, timeout=60, what="training")
    return run


def worker_pids(server: Server, run_id: str) -> int:
    where = server.call("GET", f"/api/runs/{run_id}")["worker"]
    assert where is not None and where.startswith("local:")
    return int(where.split(":")[1])


@pytest.mark.timeout(180)
def test_kill_9_loses_at_most_two_seconds_and_no_worker_outlives_it(tmp_path: Path) -> None:
    log = tmp_path / "server.log"
    server = Server(tmp_path / "home", log)
    try:
        run = training(server)
        pid = worker_pids(server, run["id"])
        before = server.call("GET", f"/api/runs/{run['id']}")
        t0 = time.monotonic()
        server.proc.send_signal(signal.SIGKILL)
        server.proc.wait(10)
        steps_per_s = before["step"] / before["train_seconds"]
        # the worker notices its server is gone and exits within a few seconds
        wait_for(lambda: not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE, timeout=5)
        assert time.monotonic() - t0 < 5
    finally:
        server.stop()
    again = Server(tmp_path / "home", log)
    try:
        run = again.call("GET", f"/api/runs/{run['id']}")
        assert run["status"] == "interrupted" and f"interrupted at step {run['step']:,}" in run["detail"]
        cks = again.call("GET", f"/api/runs/{run['id']}/checkpoints")
        assert run["step"] == cks[-1]["step"]
        lost = before["step"] - run["step"]  # at least this much was trained and is lost
        assert lost / steps_per_s <= 2.5, (lost, steps_per_s)  # a checkpoint every 2 s of training
        history = again.call("GET", f"/api/runs/{run['id']}/history")
        assert history["steps"]["step"] == list(range(run["step"]))  # cut to match
        again.call("PATCH", f"/api/runs/{run['id']}", {"status": "running"})
        wait_for(lambda: again.call("GET", f"/api/runs/{run['id']}")["step"] > run["step"] + 1000, timeout=30)
    finally:
        again.stop()


@pytest.mark.timeout(180)
def test_sigterm_checkpoints_pauses_and_exits_within_5_s(tmp_path: Path) -> None:
    log = tmp_path / "server.log"
    server = Server(tmp_path / "home", log)
    try:
        a, b = training(server), training(server)
        pids = [worker_pids(server, r["id"]) for r in (a, b)]
        t0 = time.monotonic()
        server.proc.send_signal(signal.SIGTERM)
        code = server.proc.wait(10)
        took = time.monotonic() - t0
        assert code in (0, -signal.SIGTERM) and took < 5, took  # uvicorn re-raises the signal once it is done
        assert not any(psutil.pid_exists(p) and psutil.Process(p).status() != psutil.STATUS_ZOMBIE for p in pids)
    finally:
        server.stop()
    again = Server(tmp_path / "home", log)
    try:
        for r in (a, b):
            run = again.call("GET", f"/api/runs/{r['id']}")
            assert run["status"] == "paused" and "the server shut down" in run["detail"]
            assert run["step"] == again.call("GET", f"/api/runs/{r['id']}/checkpoints")[-1]["step"]
            assert again.call("GET", f"/api/runs/{r['id']}/history")["steps"]["step"] == list(range(run["step"]))
    finally:
        again.stop()


@pytest.mark.timeout(180)
def test_ctrl_c_to_the_process_group_pauses_every_run_at_its_step(tmp_path: Path) -> None:
    """Ctrl-C in a terminal sends SIGINT to the server and its workers alike: the workers must not
    die of it (their runs came back `interrupted` at an older checkpoint), the queued run must not
    start as the others stop, and the server must end without a traceback."""
    log = tmp_path / "server.log"
    server = Server(tmp_path / "home", log, max_running="1")
    try:
        a = training(server)
        queued = server.call("POST", "/api/runs", {"max_steps": 10**8, "eval_every": 10**6})
        assert server.call("GET", f"/api/runs/{queued['id']}")["status"] == "queued"
        pid = worker_pids(server, a["id"])
        log_before = log.stat().st_size
        t0 = time.monotonic()
        os.killpg(server.proc.pid, signal.SIGINT)
        code = server.proc.wait(10)
        took = time.monotonic() - t0
        assert took < 5, took
        assert code in (0, 130, -signal.SIGINT), code
        wait_for(lambda: not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE, timeout=5)
        said = log.read_bytes()[log_before:].decode(errors="replace")
        assert "Traceback" not in said and "KeyboardInterrupt" not in said, said[-3000:]
    finally:
        server.stop()
    again = Server(tmp_path / "home", log)
    try:
        run = again.call("GET", f"/api/runs/{a['id']}")
        assert run["status"] == "paused" and "the server shut down" in run["detail"], run
        assert run["step"] == again.call("GET", f"/api/runs/{a['id']}/checkpoints")[-1]["step"]
        assert run["step"] > 20_000  # not cut back to an older checkpoint
        assert again.call("GET", f"/api/runs/{a['id']}/history")["steps"]["step"] == list(range(run["step"]))
        waiting = again.call("GET", f"/api/runs/{queued['id']}")
        # never started: it was waiting in the queue when the server stopped
        assert waiting["status"] == "paused" and waiting["step"] == 0 and "queue" in waiting["detail"], waiting
    finally:
        again.stop()


@pytest.mark.timeout(240)
def test_sigterm_with_stalled_viewers_and_slowloris_pauses_at_once_and_exits_within_5_s(tmp_path: Path) -> None:
    """120 viewers that never read and 120 half-sent requests hold the server's graceful shutdown
    for its whole deadline; the runs are paused at the signal, not after it, and it all ends in 5 s
    (it took 5.35-5.48 s: the connections' deadline, then the runs' checkpoints)."""
    log = tmp_path / "server.log"
    server = Server(tmp_path / "home", log)
    socks = []
    try:
        a = training(server)
        for _ in range(120):
            socks.append(rawclient.websocket(server.port, f"/ws/runs/{a['id']}", rcvbuf=4096))
            slow = rawclient.connect(server.port)
            # slowloris on the body: a request begun holds the graceful shutdown to its deadline
            slow.sendall(b"POST /api/runs HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 1000\r\n\r\n{")
            socks.append(slow)
        at_signal = server.call("GET", f"/api/runs/{a['id']}")["step"]
        t0 = time.monotonic()
        server.proc.send_signal(signal.SIGTERM)
        code = server.proc.wait(15)
        took = time.monotonic() - t0
        assert code in (0, -signal.SIGTERM) and took <= 5, took
        assert "timeout graceful shutdown exceeded" in log.read_text()  # the connections held it
    finally:
        for sock in socks:
            sock.close()
        server.stop()
    again = Server(tmp_path / "home", log)
    try:
        run = again.call("GET", f"/api/runs/{a['id']}")
        assert run["status"] == "paused" and "the server shut down" in run["detail"], run
        assert run["step"] == again.call("GET", f"/api/runs/{a['id']}/checkpoints")[-1]["step"]
        # paused as the signal came: the steps of the seconds the connections were given are not trained
        steps_per_s = run["step"] / run["train_seconds"]
        assert (run["step"] - at_signal) / steps_per_s < 1.0, (run["step"], at_signal, steps_per_s)
    finally:
        again.stop()


@pytest.mark.timeout(120)
def test_workers_train_behind_the_server(tmp_path: Path) -> None:
    """Every thread of a run's worker (trainer, OpenMP, pipe) runs at the server's niceness plus
    MAKEMORE_WORKER_NICE; the server's own threads keep theirs."""
    server = Server(tmp_path / "home", tmp_path / "server.log", worker_nice="7")
    try:
        run = training(server)
        worker = psutil.Process(worker_pids(server, run["id"]))
        base = os.getpriority(os.PRIO_PROCESS, server.proc.pid)
        threads = [t.id for t in worker.threads()]
        assert len(threads) >= 3  # the trainer's, the pipe's sender, the main thread at least
        assert {os.getpriority(os.PRIO_PROCESS, t) for t in threads} == {min(19, base + 7)}
        assert {os.getpriority(os.PRIO_PROCESS, t.id) for t in psutil.Process(server.proc.pid).threads()} == {base}
    finally:
        server.stop()
