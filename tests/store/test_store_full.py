"""A full disk is reported, not hidden, and loses nothing the server was told (backend/store/
writer.py, health.py; files.write_atomic; /api/health).

On a real small filesystem (a 2 MB tmpfs, filled to its last block with a filler file): the
store's health says `degraded` and why; the evaluations, changes, statuses, steps and checkpoints
queued meanwhile are held, not dropped, and are written once space returns (found again after
the store is reopened); past the bound of held checkpoint bytes only each run's newest is kept,
every evaluation still; closing on a full disk says what is lost; a checkpoint that could not be
written leaves no temporary file; reads never raise; the database is sound after. Through the
app: /api/runs answers, /api/health says degraded, and a pause whose checkpoint is not written
says so. Mounting needs root: skipped without it."""

from __future__ import annotations

import errno
import json
import os
import sqlite3
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient

from backend.core.data import Dataset
from backend.runs.datasets import record_of
from backend.store import files, writer
from backend.store.store import Store
from backend.training.protocol import Status
from tests.conftest import wait_for
from tests.store.test_store import record


@pytest.fixture
def disk(tmp_path: Path) -> Iterator[Path]:
    """A 2 MB tmpfs, unmounted and removed after the test, whatever happened in it."""
    where = tmp_path / "disk"
    where.mkdir()
    mount = ["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(where)]
    mounted = subprocess.run(mount, check=False, capture_output=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here (needs root): {mounted.stderr.decode().strip()}")
    try:
        yield where
    finally:
        # lazily if a connection is still open on it: the mount goes once that closes
        if subprocess.run(["umount", str(where)], check=False, capture_output=True).returncode != 0:
            subprocess.run(["umount", "-l", str(where)], check=True)
        where.rmdir()


def fill(disk: Path, name: str = "filler") -> Path:
    """Take every free block of `disk` with one file."""
    filler = disk / name
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT)
    try:
        for block in (1 << 16, 1 << 12):
            try:
                while True:
                    os.write(fd, b"\0" * block)
            except OSError as e:
                assert e.errno == errno.ENOSPC
    finally:
        os.close(fd)
    return filler


def free_bytes(disk: Path) -> int:
    st = os.statvfs(disk)
    return st.f_bavail * st.f_frsize


@pytest.fixture
def store(disk: Path, small_dataset: Dataset) -> Iterator[Store]:
    s = Store(disk / "home")
    s.open()
    s.put_dataset(record_of(small_dataset, time.time()), "\n".join(small_dataset.words))
    s.put_run(record(s.datasets()[0].id), wait=True)  # r1, running at step 0
    yield s
    s.close()


def degraded(s: Store) -> dict[str, object] | None:
    state = s.health.state()
    return state if state["status"] == "degraded" else None


def test_writes_are_held_while_the_disk_is_full_and_written_when_space_returns(store: Store, disk: Path) -> None:
    told: list[tuple[str, int, bool]] = []
    store.on_checkpoint = lambda *a: told.append(a)
    filler = fill(disk)
    losses = [2.0 - i / 1000 for i in range(1000)]
    store.add_steps("r1", 0, losses, [0.1] * 1000, 32, 1.5)
    for step in range(0, 1001, 100):
        store.add_eval("r1", step, 2.5 - step / 1000, 2.6 - step / 1000)
    store.add_change("r1", {"step": 500, "lr": 0.05}, replace_last=False)
    data = np.random.default_rng(0).bytes(300_000)  # random: no filesystem could store it in less
    store.put_checkpoint("r1", 1000, data, 1.5, 1.6)
    r = record(store.datasets()[0].id, status=Status.PAUSED, detail="paused by a user", step=1000)
    store.put_run(r)

    state = wait_for(lambda: degraded(store), timeout=10, what="health to say degraded")
    assert state["reason"] == "the disk is full"
    held = {"writes": 15, "steps": 1000, "checkpoints": 1, "checkpoint_bytes": 300_000}  # all of them
    wait_for(lambda: store.health.state().get("held") == held, timeout=10, what="all writes held")
    assert told == [("r1", 1000, False)]  # the registry hears that this checkpoint is not on disk
    # reads answer what is committed, and do not raise
    store.flush()
    assert [(x.status, x.step) for x in store.runs()] == [(Status.RUNNING, 0)]
    assert store.checkpoints("r1") == []
    assert list(store.checkpoint_dir.rglob("*.tmp")) == []  # the failed checkpoint left nothing behind
    # a write someone waits for answers too (it is held with the rest)
    store.put_run(record(store.datasets()[0].id, "r2"), wait=True)

    filler.unlink()
    wait_for(lambda: store.health.state() == {"status": "ok"}, timeout=10, what="health to be ok again")
    assert told == [("r1", 1000, False), ("r1", 1000, True)]
    store.close()

    again = Store(disk / "home")
    again.open()
    try:
        assert [(x.id, x.status, x.step, x.detail) for x in again.runs()] == [
            ("r2", Status.RUNNING, 0, ""),
            ("r1", Status.PAUSED, 1000, "paused by a user"),
        ]
        h = again.history("r1")
        assert [e[0] for e in h.evals] == list(range(0, 1001, 100))
        assert h.changes == [{"step": 500, "lr": 0.05}]
        [chunk] = list(again.steps("r1"))
        assert chunk.first == 0 and np.allclose(chunk.losses, np.float32(losses))
        assert again.load_checkpoint("r1") == (1000, data)
        conn = sqlite3.connect(again.path)
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        conn.close()
    finally:
        again.close()


def test_a_checkpoint_that_does_not_fit_waits_while_the_rest_is_committed(store: Store, disk: Path) -> None:
    """Room for rows, not for a checkpoint: the evaluations commit, the checkpoint waits in memory."""
    spare = disk / "spare"
    spare.write_bytes(b"\0" * 256 * 1024)
    filler = fill(disk)
    spare.unlink()  # ~256 KB free: the rows fit, a 1 MB checkpoint does not
    store.put_checkpoint("r1", 100, b"\1" * 1_000_000, None, None)
    store.add_eval("r1", 100, 2.0, 2.1)
    store.flush()
    assert [e[0] for e in store.history("r1").evals] == [100]  # committed, past the checkpoint
    state = wait_for(lambda: degraded(store), timeout=10, what="health to say degraded")
    assert state["reason"] == "the disk is full" and state["held"]["checkpoints"] == 1
    assert store.checkpoints("r1") == [] and list(store.checkpoint_dir.rglob("*.tmp")) == []
    filler.unlink()
    wait_for(lambda: store.checkpoints("r1"), timeout=10, what="the checkpoint written")
    assert store.health.state() == {"status": "ok"}
    assert store.load_checkpoint("r1") == (100, b"\1" * 1_000_000)


def test_past_the_bound_only_the_newest_checkpoint_of_a_run_is_held(
    store: Store, disk: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(writer, "MAX_HELD_CHECKPOINT_BYTES", 500_000)
    filler = fill(disk)
    for step in (100, 200, 300):  # 900 KB in all
        store.add_eval("r1", step, 2.0, 2.1)
        store.put_checkpoint("r1", step, bytes([step // 100]) * 300_000, None, None)
    held = {"writes": 4, "steps": 0, "checkpoints": 1, "checkpoint_bytes": 300_000}  # every evaluation
    wait_for(lambda: store.health.state().get("held") == held, timeout=10, what="the older checkpoints dropped")
    filler.unlink()
    wait_for(lambda: store.health.state() == {"status": "ok"}, timeout=10, what="health ok again")
    assert [c.step for c in store.checkpoints("r1")] == [300]
    assert [e[0] for e in store.history("r1").evals] == [100, 200, 300]


def test_closing_on_a_full_disk_says_what_is_lost(store: Store, disk: Path, caplog: pytest.LogCaptureFixture) -> None:
    fill(disk)
    store.add_eval("r1", 100, 2.0, 2.1)
    wait_for(lambda: degraded(store), timeout=10, what="health to say degraded")
    store.close()
    [lost] = [r for r in caplog.records if "lost" in r.getMessage()]
    assert lost.levelname == "ERROR" and "'writes': 1" in lost.getMessage()


def test_a_failed_checkpoint_write_removes_its_temporary_file(disk: Path) -> None:
    target = disk / "checkpoints" / "r1" / "000000000100.safetensors"
    target.parent.mkdir(parents=True)
    spare = disk / "spare"
    spare.write_bytes(b"\0" * 16384)
    fill(disk)
    spare.unlink()
    before = free_bytes(disk)
    assert before == 16384
    with pytest.raises(OSError) as raised:  # written part way, then the disk is full
        files.write_atomic(target, b"\1" * 65536)
    assert raised.value.errno == errno.ENOSPC
    assert list(target.parent.iterdir()) == []
    assert free_bytes(disk) == before  # the space it took is given back


# ---- through the application ---------------------------------------------------------------------
@pytest.fixture
def full_app(disk: Path, make_client: Callable[..., TestClient]) -> tuple[TestClient, Path]:
    """The app with its home on the small disk; torn down before the disk (fixture order)."""
    client = make_client(home=disk / "home")
    wait_for(lambda: client.get("/api/runs/current").json()["last_eval"], timeout=90, what="the step-0 evaluation")
    return client, disk


def test_the_api_answers_and_says_degraded_while_the_disk_is_full(full_app: tuple[TestClient, Path]) -> None:
    client, disk = full_app
    assert client.get("/api/health").json() == {"status": "ok"}
    run = client.get("/api/runs/current").json()
    filler = fill(disk)
    assert client.patch(f"/api/runs/{run['id']}", json={"name": "renamed on a full disk"}).status_code == 200

    health = wait_for(
        lambda: (h := client.get("/api/health")).status_code == 200 and h.json()["status"] == "degraded" and h.json(),
        timeout=10,
        what="/api/health to say degraded",
    )
    assert health["reason"] == "the disk is full" and health["held"]["writes"] >= 1 and health["since"] <= time.time()
    runs = client.get("/api/runs")
    assert runs.status_code == 200 and [r["id"] for r in runs.json()] == [run["id"]]
    assert client.get(f"/api/runs/{run['id']}/checkpoints").status_code == 200

    filler.unlink()
    wait_for(lambda: client.get("/api/health").json() == {"status": "ok"}, timeout=10, what="health ok again")
    stored = client.app.state.registry.store.run(run["id"])  # type: ignore[attr-defined]
    assert stored.name == "renamed on a full disk"  # held, then written


def test_a_pause_whose_checkpoint_is_not_written_says_so(full_app: tuple[TestClient, Path]) -> None:
    client, disk = full_app
    rid = client.get("/api/runs/current").json()["id"]
    assert client.patch(f"/api/runs/{rid}", json={"status": "running"}).status_code == 200
    wait_for(lambda: client.get(f"/api/runs/{rid}").json()["step"] > 200, timeout=60, what="training")
    filler = fill(disk)
    paused = client.patch(f"/api/runs/{rid}", json={"status": "paused"}).json()
    step = paused["step"]

    def detail() -> str:
        return str(client.get(f"/api/runs/{rid}").json()["detail"])

    def held() -> bool:
        return bool(client.get(f"/api/runs/{rid}").json()["checkpoint_held"])

    wait_for(held, timeout=10, what="the run to say its checkpoint is held")

    def listed() -> dict[str, Any]:  # the runs list's summary of it
        with client.websocket_connect("/ws/runs") as ws:
            return next(r for r in ws.receive_json()["runs"] if r["id"] == rid)

    assert listed()["checkpoint_held"] is True and listed()["cause"] == "user"
    assert detail() == (
        f"paused by a user; its checkpoint at step {step:,} is not yet written (the disk is full):"
        " it is kept in memory and written when space returns"
    )
    filler.unlink()
    wait_for(lambda: not held(), timeout=10, what="the flag to clear once it is written")
    assert listed()["checkpoint_held"] is False
    assert detail() == "paused by a user"
    store = client.app.state.registry.store  # type: ignore[attr-defined]
    assert store.checkpoints(rid)[-1].step == step
    assert json.loads(json.dumps(store.health.state())) == {"status": "ok"}
