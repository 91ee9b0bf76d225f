"""Runs that last (backend/runs/ with the store and local workers), through the API:
exact resume after a restart, the queue, a worker that dies, branches, reads without a worker,
the history and weights files."""

from __future__ import annotations

import csv
import io
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psutil
import pytest
import torch
from fastapi.testclient import TestClient
from safetensors.torch import load

from backend.runs.events import HISTORY_SAVE_SECONDS
from tests.conftest import wait_for

Client = Callable[..., TestClient]


def get(client: TestClient, run_id: str) -> dict[str, Any]:
    r = client.get(f"/api/runs/{run_id}")
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


def finished(client: TestClient, run_id: str, step: int, timeout: float = 60) -> dict[str, Any]:
    return wait_for(
        lambda: (r := get(client, run_id))["status"] == "finished" and r["step"] == step and r,
        timeout=timeout,
        what=f"run {run_id} to finish at step {step}",
    )


def step_losses(client: TestClient, run_id: str) -> dict[int, float]:
    h = client.get(f"/api/runs/{run_id}/history").json()["steps"]
    return dict(zip(h["step"], h["loss"], strict=True))


def weights(client: TestClient, run_id: str) -> dict[str, torch.Tensor]:
    r = client.get(f"/api/runs/{run_id}/weights")
    assert r.status_code == 200 and r.headers["content-type"] == "application/octet-stream"
    return load(r.content)


def close(client: TestClient) -> None:
    client.__exit__(None, None, None)


SPEC = {"eval_every": 400, "batch_size": 32, "start": False}


@pytest.mark.parametrize("how", ["finished", "paused"])
def test_resume_after_a_restart_is_exact(make_client: Client, tmp_path: Path, how: str) -> None:
    """A run stopped at step k (finished there, or paused mid-way), the server restarted, then
    resumed to m: every step loss from k to m and the final weights are those of the same run
    never interrupted."""
    m = 3000
    first = make_client(home=tmp_path)
    run = first.post("/api/runs", json={**SPEC, "max_steps": 1700 if how == "finished" else 10**6}).json()
    first.patch(f"/api/runs/{run['id']}", json={"status": "running"})
    if how == "finished":
        k = finished(first, run["id"], 1700)["step"]
    else:
        wait_for(lambda: get(first, run["id"])["step"] > 1200, what="some steps")
        k = first.patch(f"/api/runs/{run['id']}", json={"status": "paused"}).json()["step"]
        assert 1200 < k < m
    close(first)

    again = make_client(home=tmp_path)
    stored = get(again, run["id"])
    assert stored["status"] == ("finished" if how == "finished" else "paused") and stored["step"] == k
    assert stored["worker"] is None  # nothing trains it until asked
    r = again.patch(f"/api/runs/{run['id']}", json={"status": "running", "max_steps": m})
    assert r.status_code == 200, r.text
    finished(again, run["id"], m)
    reference = again.post("/api/runs", json={**SPEC, "max_steps": m, "start": True}).json()
    finished(again, reference["id"], m)

    resumed, never = step_losses(again, run["id"]), step_losses(again, reference["id"])
    assert sorted(resumed) == list(range(m))
    assert {s: v for s, v in resumed.items() if s >= k} == {s: v for s, v in never.items() if s >= k}
    a, b = weights(again, run["id"]), weights(again, reference["id"])
    assert a.keys() == b.keys() and all(torch.equal(a[n], b[n]) for n in a)


def snapshot_history(client: TestClient, run_id: str) -> dict[str, Any]:
    with client.websocket_connect(f"/ws/runs/{run_id}") as ws:
        msg = ws.receive_json()
    assert msg["type"] == "snapshot", msg
    history: dict[str, Any] = msg["history"]
    return history


def overlay(client: TestClient, run_id: str) -> dict[str, Any]:
    """A run's points as the compare view reads them, checked to reach the run's step."""
    step = get(client, run_id)["step"]
    p: dict[str, Any] = client.get(f"/api/runs/{run_id}/points", params={"points": 200}).json()
    assert p["step"] == sorted(p["step"]) and len(p["step"]) <= 200 and p["end"] == step
    assert step - 50 < max(p["step"]) < step  # past the stored steps too (one bucket's width)
    several = client.get("/api/runs/points", params={"ids": run_id, "points": 200}).json()
    assert several["runs"][0]["points"] == p
    return p


def test_past_the_stored_steps_the_history_lasts(
    make_client: Client, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Past the steps stored one by one (store.MAX_STORED_STEPS), a run's chart is its saved
    buckets: after a restart the run's snapshot is the one it had, and resumed it goes on (the
    history was the stored steps alone, short of the run's step, and every step message failed)."""
    cap = 1000
    monkeypatch.setattr("backend.store.steps.MAX_STORED_STEPS", cap)
    first = make_client(home=tmp_path)
    store = first.app.state.registry.store
    saves: list[float] = []
    put = store.put_history_blob

    def counted(run_id: str, blob: bytes | None) -> None:
        saves.append(time.monotonic())
        put(run_id, blob)

    monkeypatch.setattr(store, "put_history_blob", counted)
    run = first.post("/api/runs", json={**SPEC, "max_steps": 10**6}).json()
    started = time.monotonic()
    first.patch(f"/api/runs/{run['id']}", json={"status": "running"})
    wait_for(lambda: get(first, run["id"])["step"] > 3 * cap, what="steps past the stored ones")
    k = first.patch(f"/api/runs/{run['id']}", json={"status": "paused"}).json()["step"]
    checkpoints = len(first.get(f"/api/runs/{run['id']}/checkpoints").json())
    # saved once past the cap, then at most every HISTORY_SAVE_SECONDS, and with the pause's checkpoint
    assert 2 <= len(saves) <= 2 + (time.monotonic() - started) / HISTORY_SAVE_SECONDS < checkpoints
    before = snapshot_history(first, run["id"])
    assert before["n_steps"] == k and max(before["step"]) > 2 * cap
    drawn = overlay(first, run["id"])  # the run in memory: its channel's buckets
    close(first)

    again = make_client(home=tmp_path)
    read = overlay(again, run["id"])  # not in memory: its stored steps, then its saved buckets
    assert (min(read["loss"]), max(read["loss"])) == (min(drawn["loss"]), max(drawn["loss"]))
    steps_read = []
    steps = again.app.state.registry.store.steps
    monkeypatch.setattr(
        again.app.state.registry.store, "steps", lambda *a, **kw: steps_read.append(a) or steps(*a, **kw)
    )
    assert snapshot_history(again, run["id"]) == before
    assert steps_read == []  # its channel: the saved buckets alone, no stored step read to be dropped
    m = k + 1500
    assert again.patch(f"/api/runs/{run['id']}", json={"status": "running", "max_steps": m}).status_code == 200
    finished(again, run["id"], m)
    after = snapshot_history(again, run["id"])
    assert after["n_steps"] == m and m - 50 < max(after["step"]) < m
    assert sorted(after["step"]) == after["step"]
    close(again)

    # a damaged saved history: the stored steps and a gap, the run still there and resumable
    with sqlite3.connect(tmp_path / "makemore.db") as db:
        db.execute("UPDATE runs SET history = ? WHERE id = ?", (b"damaged", run["id"]))
    third = make_client(home=tmp_path)
    gap = snapshot_history(third, run["id"])
    assert gap["n_steps"] == m and max(gap["step"]) < cap and get(third, run["id"])["step"] == m


def test_past_the_stored_steps_a_dying_worker_cuts_the_history(
    make_client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A worker that dies past the stored steps: its run goes back to its last checkpoint, and its
    saved buckets (here saved with every checkpoint, so with that one or later) are cut there;
    resumed, it goes on."""
    cap = 1000
    monkeypatch.setattr("backend.store.steps.MAX_STORED_STEPS", cap)
    monkeypatch.setattr("backend.runs.events.HISTORY_SAVE_SECONDS", 0.0)
    client = make_client()
    doomed = client.post("/api/runs", json={"max_steps": 10**7, "eval_every": 300}).json()
    checkpoints = f"/api/runs/{doomed['id']}/checkpoints"

    def past() -> list[dict[str, Any]]:
        return [c for c in client.get(checkpoints).json() if c["step"] > 2 * cap]

    wait_for(past, what="a checkpoint past the cap")
    pid = int(get(client, doomed["id"])["worker"].split(":")[1])
    os.kill(pid, signal.SIGKILL)
    run = wait_for(lambda: (r := get(client, doomed["id"]))["status"] == "interrupted" and r, what="interrupted")
    k = run["step"]
    assert k > 2 * cap
    cut = snapshot_history(client, doomed["id"])
    assert cut["n_steps"] == k and max(cut["step"]) > 2 * cap
    client.patch(f"/api/runs/{doomed['id']}", json={"status": "running"})
    wait_for(lambda: get(client, doomed["id"])["step"] > k + 500, what="the resumed run")
    step = client.patch(f"/api/runs/{doomed['id']}", json={"status": "paused"}).json()["step"]
    after = snapshot_history(client, doomed["id"])
    assert after["n_steps"] == step and step - 50 < max(after["step"]) < step
    assert sorted(after["step"]) == after["step"] and len(set(after["step"])) == len(after["step"])


def test_the_queue_is_first_come_first_served(make_client: Client) -> None:
    client = make_client(max_running=1)
    long = {"max_steps": 10**7, "eval_every": 1000}
    a = client.post("/api/runs", json={**long, "name": "a"}).json()
    b = client.post("/api/runs", json={**long, "name": "b"}).json()
    c = client.post("/api/runs", json={**long, "name": "c"}).json()
    assert [x["status"] for x in (a, b, c)] == ["running", "queued", "queued"]
    assert (get(client, b["id"])["queue_position"], get(client, c["id"])["queue_position"]) == (1, 2)
    assert "waiting for a free slot" in get(client, c["id"])["detail"]
    client.patch(f"/api/runs/{a['id']}", json={"status": "paused"})
    wait_for(lambda: get(client, b["id"])["step"] > 0, what="b to start when a's slot frees")
    assert get(client, c["id"])["status"] == "queued" and get(client, c["id"])["queue_position"] == 1
    assert client.patch(f"/api/runs/{c['id']}", json={"status": "paused"}).json()["status"] == "paused"  # dequeued
    assert client.patch(f"/api/runs/{a['id']}", json={"status": "running"}).json()["status"] == "queued"
    client.patch(f"/api/runs/{c['id']}", json={"status": "running"})  # after a, again
    assert [get(client, x["id"])["queue_position"] for x in (a, c)] == [1, 2]
    here = get(client, b["id"])["step"]
    client.patch(f"/api/runs/{b['id']}", json={"max_steps": here + 200})
    wait_for(lambda: get(client, b["id"])["status"] == "finished", what="b to finish")
    wait_for(lambda: get(client, a["id"])["status"] == "running", what="a next")
    assert get(client, c["id"])["status"] == "queued"
    assert sum(get(client, x["id"])["status"] == "running" for x in (a, b, c)) == 1  # never more than allowed
    client.delete(f"/api/runs/{a['id']}")  # a deleted run frees its slot too
    wait_for(lambda: get(client, c["id"])["status"] == "running", what="c when a is deleted")


def test_a_worker_that_dies_leaves_its_run_interrupted(make_client: Client) -> None:
    client = make_client()
    doomed = client.post("/api/runs", json={"max_steps": 10**7, "eval_every": 500}).json()
    other = client.post("/api/runs", json={"max_steps": 10**7, "eval_every": 500}).json()
    wait_for(lambda: get(client, doomed["id"])["step"] > 3000, what="training")
    where = get(client, doomed["id"])["worker"]
    assert where.startswith("local:")
    pid = int(where.split(":")[1])
    assert psutil.Process(pid).ppid() != os.getpid()  # forked from the forkserver, not from the server
    os.kill(pid, signal.SIGKILL)  # out of memory, say
    run = wait_for(lambda: (r := get(client, doomed["id"]))["status"] == "interrupted" and r, what="interrupted")
    assert "interrupted at step" in run["detail"] and "exit code -9" in run["detail"]
    assert run["step"] == client.get(f"/api/runs/{doomed['id']}/checkpoints").json()[-1]["step"]
    assert sorted(step_losses(client, doomed["id"])) == list(range(run["step"]))  # history cut to match
    assert client.get("/api/health").status_code == 200
    before = get(client, other["id"])["step"]
    wait_for(lambda: get(client, other["id"])["step"] > before + 500, what="the other run training on")
    client.patch(f"/api/runs/{doomed['id']}", json={"status": "running"})
    wait_for(lambda: get(client, doomed["id"])["step"] > run["step"] + 500, what="the resumed run")
    client.patch(f"/api/runs/{doomed['id']}", json={"status": "paused"})
    resumed = sorted(step_losses(client, doomed["id"]))
    assert resumed == list(range(get(client, doomed["id"])["step"]))  # one history, no gap, no repeat


def test_branch_continues_exactly_or_as_changed(make_client: Client) -> None:
    client = make_client()
    parent = client.post("/api/runs", json={"max_steps": 2000, "eval_every": 500}).json()
    finished(client, parent["id"], 2000)
    cks = client.get(f"/api/runs/{parent['id']}/checkpoints").json()
    assert {0, 500, 1000, 1500, 2000} <= {c["step"] for c in cks}
    assert all(c["bytes"] > 40_000 for c in cks) and cks[2]["dev_loss"] is not None
    same = client.post(f"/api/runs/{parent['id']}/branch", json={"step": 1000, "max_steps": 2000}).json()
    assert same["parent"] == {"id": parent["id"], "step": 1000} and same["step"] == 1000
    finished(client, same["id"], 2000)
    theirs, mine = step_losses(client, parent["id"]), step_losses(client, same["id"])
    assert mine == theirs  # its history begins with the parent's, and continues as the parent did
    faster = client.post(f"/api/runs/{parent['id']}/branch", json={"step": 1000, "lr": 0.3, "name": "hot"}).json()
    assert faster["name"] == "hot" and faster["hparams"]["lr"] == 0.3
    # the timelines: the parent's changes up to the branch point, then the branch's own
    parents = client.get(f"/api/runs/{parent['id']}/history").json()["changes"]
    assert client.get(f"/api/runs/{same['id']}/history").json()["changes"] == parents
    hot_changes = client.get(f"/api/runs/{faster['id']}/history").json()["changes"]
    assert hot_changes[:-1] == parents and (hot_changes[-1]["step"], hot_changes[-1]["lr"]) == (1000, 0.3)
    wait_for(lambda: get(client, faster["id"])["step"] > 1100, what="the branch training")
    client.patch(f"/api/runs/{faster['id']}", json={"status": "paused"})
    hot = step_losses(client, faster["id"])
    assert all(hot[s] == theirs[s] for s in range(1000))
    assert [hot[s] for s in range(1001, 1100)] != [theirs[s] for s in range(1001, 1100)]
    assert client.post(f"/api/runs/{parent['id']}/branch", json={"step": 1234}).status_code == 404
    assert client.post("/api/runs/nope/branch").status_code == 404


def test_reads_without_a_worker_come_from_the_checkpoint(make_client: Client, tmp_path: Path) -> None:
    first = make_client(home=tmp_path)
    run = first.post("/api/runs", json={"max_steps": 1500}).json()
    finished(first, run["id"], 1500)
    names = first.get(f"/api/runs/{run['id']}/sample", params={"n": 10, "seed": 5}).json()
    test = first.post(f"/api/runs/{run['id']}/evaluate-test").json()
    close(first)
    again = make_client(home=tmp_path)
    stored = get(again, run["id"])
    assert stored["worker"] is None and stored["test"]["test_loss"] == test["test_loss"]
    assert again.get(f"/api/runs/{run['id']}/sample", params={"n": 10, "seed": 5}).json() == names
    assert again.get(f"/api/runs/{run['id']}/next", params={"context": "em"}).json()["step"] == 1500
    emb = again.get(f"/api/runs/{run['id']}/embeddings").json()
    assert emb["step"] == 1500 and len(emb["x"]) == 27
    assert get(again, run["id"])["worker"] is None  # reading did not start one
    with again.websocket_connect(f"/ws/runs/{run['id']}") as ws:
        snap = ws.receive_json()
        assert snap["run"]["status"] == "finished" and snap["history"]["n_steps"] == 1500
        assert [e[0] for e in snap["evals"]] == [0, 1000, 1500]


def test_history_as_json_and_csv_and_the_weights_file(client: TestClient) -> None:
    run = client.post("/api/runs", json={"max_steps": 1200, "eval_every": 500}).json()
    finished(client, run["id"], 1200)
    client.patch(f"/api/runs/{run['id']}", json={"lr": 0.05})
    body = client.get(f"/api/runs/{run['id']}/history").json()
    steps = body["steps"]
    assert steps["step"] == list(range(1200)) and len(steps["loss"]) == len(steps["lr"]) == 1200
    assert set(steps["batch_size"]) == {32} and set(steps["lr"]) == {0.1}
    assert [e["step"] for e in body["evals"]] == [0, 500, 1000, 1200]
    assert [c["lr"] for c in body["changes"]] == [0.1, 0.05]
    r = client.get(f"/api/runs/{run['id']}/history", params={"format": "csv"})
    assert r.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(r.text)))
    assert r.text.startswith("step,") and len(rows) == 1201  # a row per step, and the last evaluation's
    assert float(rows[7]["loss"]) == pytest.approx(steps["loss"][7], rel=1e-6) and rows[500]["dev_loss"] != ""
    w = weights(client, run["id"])
    assert set(w) == {"C", "W1", "b1", "W2", "b2"} and w["C"].shape == (27, 10)
    assert client.get("/api/runs/nope/history").status_code == 404


def test_delete_removes_everything(client: TestClient, tmp_path: Path) -> None:
    run = client.post("/api/runs", json={"max_steps": 10**6}).json()
    wait_for(lambda: client.get(f"/api/runs/{run['id']}/checkpoints").json(), what="a checkpoint")
    home = Path(client.app.state.settings.home)  # type: ignore[attr-defined]
    assert (home / "checkpoints" / run["id"]).is_dir()
    with client.websocket_connect(f"/ws/runs/{run['id']}") as ws:
        ws.receive_json()
        assert client.delete(f"/api/runs/{run['id']}").status_code == 204
        with pytest.raises(Exception) as closed:  # the viewer is told: closed with 4410
            while True:
                ws.receive_json()
        assert getattr(closed.value, "code", None) == 4410
    assert client.get(f"/api/runs/{run['id']}").status_code == 404
    assert not (home / "checkpoints" / run["id"]).exists()
    assert client.get(f"/api/runs/{run['id']}/history").status_code == 404


def test_the_readme_samples_names_from_a_weights_file(client: TestClient, tmp_path: Path) -> None:
    """docs/api.md's ten lines, run as written on a downloaded weights file."""
    run = client.post("/api/runs", json={"max_steps": 2000}).json()
    finished(client, run["id"], 2000)
    path = tmp_path / "w.safetensors"
    path.write_bytes(client.get(f"/api/runs/{run['id']}/weights").content)
    readme = (Path(__file__).resolve().parents[2] / "docs" / "api.md").read_text()
    code = readme.split("**The weights file**", 1)[1].split("```python\n", 1)[1].split("```", 1)[0]
    code = code.replace('"makemore-RUN-stepN.safetensors"', repr(str(path)))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    names = out.stdout.split()
    assert len(names) == 10 and all(set(n) <= set("abcdefghijklmnopqrstuvwxyz") for n in names)
