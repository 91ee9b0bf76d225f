"""Damaged or missing files are facts, not guesses (backend/store/recover.py `recover` and `_cut`,
backend/store/lostfound.py): at start-up a run whose latest checkpoint fails its sha256 (or is
gone, or was never saved) stands at its newest sound one and says so, its stored history cut to
match in the same transaction; nothing is deleted that cannot be rebuilt (files without a row and
damaged files are moved to lost+found/, listed by GET /api/lost-found); a read names the step of
the weights it used; resuming over a checkpoint damaged while the server ran is a 409 that cuts
the run back, and it then trains on over a contiguous history."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from backend.app.main import create_app
from backend.config import Settings
from backend.core.data import Dataset
from backend.runs.datasets import record_of
from backend.store.lostfound import REASONS, LostFound
from backend.store.records import CheckpointRecord
from backend.store.store import Store
from backend.training.checkpoint import encode
from backend.training.protocol import Status
from tests.conftest import wait_for
from tests.store.test_store import checkpoint_bytes, dataset_id, record


def damage(path: Path, how: str) -> bytes:
    """Flip 8 bytes in the middle of the file, cut it short, or delete it; its bytes after."""
    data = path.read_bytes()
    if how == "flip":
        mid = len(data) // 2
        data = data[:mid] + bytes(b ^ 0xFF for b in data[mid : mid + 8]) + data[mid + 8 :]
        path.write_bytes(data)
    elif how == "truncate":
        data = data[: len(data) // 3]
        path.write_bytes(data)
    else:
        path.unlink()
        data = b""
    return data


def integrity(home: Path) -> str:
    conn = sqlite3.connect(home / "makemore.db")
    try:
        return str(conn.execute("PRAGMA integrity_check").fetchone()[0])
    finally:
        conn.close()


def contiguous(store: Store, run_id: str) -> int:
    """The stored steps run from 0 without a gap or an overlap; their count."""
    end = 0
    for chunk in store.steps(run_id):
        assert chunk.first == end, f"a chunk starts at {chunk.first}, after steps up to {end}"
        end += chunk.n
    return end


def stored_run(
    tmp_path: Path, small_dataset: Dataset, status: Status = Status.PAUSED
) -> tuple[Store, list[CheckpointRecord]]:
    """A closed store with run r1 at step 300 (`status`): every step, evaluations and checkpoints
    at 0, 100, 200 and 300 (real ones), the timeline's step-0 entry and a change at step 250."""
    s = Store(tmp_path / "h")
    s.open()
    s.put_dataset(record_of(small_dataset, 1.0), "\n".join(small_dataset.words))
    spec, taken = checkpoint_bytes(small_dataset, 300)
    s.put_run(record(dataset_id(s), "r1", step=300, status=status), wait=True)
    s.add_steps("r1", 0, [1.0] * 300, [0.1] * 300, 32, 3.0)
    for ck in taken:
        s.put_checkpoint("r1", ck.step, encode(spec, ck.state, small_dataset.vocab.chars), None, None)
    for step in (0, 100, 200, 300):
        s.add_eval("r1", step, 2.0, 2.1)
    s.add_change("r1", {"step": 0, "lr": 0.1}, replace_last=False)
    s.add_change("r1", {"step": 250, "lr": 0.01}, replace_last=False)
    s.flush()
    s.close()
    rows = s.checkpoints("r1")
    assert [c.step for c in rows] == [0, 100, 200, 300]
    return s, rows


# ---- the store ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("how", ["flip", "truncate", "missing"])
def test_a_paused_run_whose_latest_checkpoint_is_damaged_stands_at_its_newest_sound_one(
    tmp_path: Path, small_dataset: Dataset, how: str
) -> None:
    s, rows = stored_run(tmp_path, small_dataset)
    left = damage(s.home / rows[-1].file, how)

    s = Store(tmp_path / "h")
    s.open()
    changed = {r.id: r for r in s.recover()}
    r1 = changed["r1"]
    what = "missing" if how == "missing" else "damaged"
    assert (r1.status, r1.step) == (Status.PAUSED, 200)
    assert r1.detail == f"its checkpoint at step 300 was {what}; it stands at step 200, its newest sound one"
    assert s.run("r1") == r1  # stored as returned
    # the history ends where the weights are: steps, evaluations, changes after 200 are gone
    assert contiguous(s, "r1") == 200
    h = s.history("r1")
    assert [e[0] for e in h.evals] == [0, 100, 200] and r1.last_eval is not None and r1.last_eval["step"] == 200
    # ... and the timeline says what happened, with the values the run stands at
    assert [c["step"] for c in h.changes] == [0, 200]
    event = h.changes[-1]
    assert {k: event[k] for k in ("kind", "restored", "damaged", "why")} == {
        "kind": "restored",
        "restored": 200,
        "damaged": 300,
        "why": what,
    }
    assert event["max_steps"] == r1.max_steps and event["lr"] == r1.hparams.lr
    assert [c.step for c in s.checkpoints("r1")] == [0, 100, 200]
    assert integrity(s.home) == "ok"
    # the damaged file is kept, moved, not deleted
    kept = s.home / "lost+found" / rows[-1].file
    assert not (s.home / rows[-1].file).exists()
    (item,) = s.lost_found.items()
    assert (item.run_id, item.step, item.file) == ("r1", 300, rows[-1].file)
    if how == "missing":
        assert item.path is None and not kept.exists()
    else:
        assert item.path == f"lost+found/{rows[-1].file}" and kept.read_bytes() == left
        assert item.bytes == len(left) and what in item.reason
    assert (s.load_checkpoint("r1") or (None,))[0] == 200
    # a second start finds everything sound: nothing changes
    s.close()
    s = Store(tmp_path / "h")
    s.open()
    assert s.recover() == [] and len(s.lost_found.items()) == 1
    s.close()


def test_a_run_without_any_sound_checkpoint_starts_again_from_its_settings(
    tmp_path: Path, small_dataset: Dataset
) -> None:
    s, rows = stored_run(tmp_path, small_dataset, Status.FINISHED)
    for ck in rows:
        damage(s.home / ck.file, "flip")
    s = Store(tmp_path / "h")
    s.open()
    (r1,) = s.recover()
    assert (r1.status, r1.step, r1.train_seconds) == (Status.PAUSED, 0, 0.0)  # finished no more
    assert r1.detail == (
        "its checkpoint at step 300 was damaged; it stands at step 0, from its settings: no sound checkpoint was left"
    )
    assert s.checkpoints("r1") == [] and contiguous(s, "r1") == 0
    assert s.history("r1").changes[-1]["kind"] == "restored"
    assert sorted(i.step for i in s.lost_found.items()) == [0, 100, 200, 300]
    assert len(list((s.home / "lost+found" / "checkpoints" / "r1").iterdir())) == 4
    s.close()


def test_a_checkpoint_never_saved_before_the_server_stopped_is_said(tmp_path: Path, small_dataset: Dataset) -> None:
    """The run's record says it paused at 300, but the checkpoint at 300 never got its row (the
    process died in between): it stands at 200, and says why."""
    s, rows = stored_run(tmp_path, small_dataset)
    conn = sqlite3.connect(s.path)
    with conn:
        conn.execute("DELETE FROM checkpoints WHERE step = 300")
    conn.close()
    s = Store(tmp_path / "h")
    s.open()
    (r1,) = s.recover()
    assert r1.step == 200 and "its checkpoint at step 300 was never saved" in r1.detail
    assert s.history("r1").changes[-1]["damaged"] == 300
    # the file whose row never came is kept in lost+found
    (item,) = s.lost_found.items()
    assert item.reason == "no checkpoint row" and (s.home / "lost+found" / rows[-1].file).is_file()
    s.close()


# ---- through the server --------------------------------------------------------------------------------
def server(home: Path, dataset: Dataset) -> TestClient:
    """The app on `home`, to use in a `with`: leaving it stops the server as a SIGTERM would."""
    return TestClient(create_app(Settings(home=home), dataset))


def run_state(client: TestClient, run_id: str) -> dict[str, Any]:
    answer = client.get(f"/api/runs/{run_id}")
    assert answer.status_code == 200, answer.text
    state: dict[str, Any] = answer.json()
    return state


def train_then_stop(client: TestClient, run_id: str, past: int) -> None:
    """Resume the run, wait until it is past step `past`; the caller stops the server (it pauses
    the run at its exact step, checkpointing there)."""
    answer = client.patch(f"/api/runs/{run_id}", json={"status": "running"})
    assert answer.status_code == 200, answer.text
    wait_for(lambda: run_state(client, run_id)["step"] > past, 90, f"step {past}")


@pytest.mark.parametrize("how", ["flip", "truncate"])
def test_a_damaged_checkpoint_through_restarts_and_resumes(tmp_path: Path, small_dataset: Dataset, how: str) -> None:
    home = tmp_path / "home"
    with server(home, small_dataset) as client:
        run = {"max_steps": 1_000_000, "eval_every": 100, "start": False}
        run_id = client.post("/api/runs", json=run).json()["id"]
        train_then_stop(client, run_id, 300)

    store = Store(home)
    rows = store.checkpoints(run_id)
    stopped = store.run(run_id)
    assert stopped is not None and stopped.status is Status.PAUSED and stopped.step == rows[-1].step
    bad, good = rows[-1].step, rows[-2].step
    damage(home / rows[-1].file, how)

    with server(home, small_dataset) as client:
        run = run_state(client, run_id)
        assert (run["status"], run["step"]) == ("paused", good)
        said = f"its checkpoint at step {bad:,} was damaged; it stands at step {good:,}, its newest sound one"
        assert run["detail"] == said
        assert store.history(run_id).changes[-1]["damaged"] == bad
        assert contiguous(store, run_id) == good and max(e[0] for e in store.history(run_id).evals) <= good
        assert integrity(home) == "ok"
        (item,) = client.get("/api/lost-found").json()["items"]
        assert (item["run_id"], item["step"], item["path"]) == (run_id, bad, f"lost+found/{rows[-1].file}")
        assert (home / item["path"]).is_file()

        # damaged while the server runs (the run has no worker, its weights not read yet): every
        # read names the step of the weights it used, not the run's
        now = store.checkpoints(run_id)
        assert now[-1].step == good
        damage(home / now[-1].file, how)
        older = now[-2].step
        assert client.get(f"/api/runs/{run_id}/sample", params={"n": 3, "seed": 1}).json()["step"] == older
        weights = client.get(f"/api/runs/{run_id}/weights")
        assert weights.status_code == 200 and weights.headers["X-Step"] == str(older)
        assert f"step{older}.safetensors" in weights.headers["Content-Disposition"]
        # resuming is a 409 that says why and cuts the run back; resumed again, it trains on
        refused = client.patch(f"/api/runs/{run_id}", json={"status": "running"})
        assert refused.status_code == 409
        assert f"its checkpoint at step {good:,} was damaged; it stands at step {older:,}" in refused.json()["detail"]
        assert run_state(client, run_id)["step"] == older
        assert store.history(run_id).changes[-1]["damaged"] == good
        train_then_stop(client, run_id, older + 300)

    # contiguous: a later start reads the history whole and the run resumes
    end = contiguous(store, run_id)
    final = store.run(run_id)
    assert final is not None and end == final.step == store.checkpoints(run_id)[-1].step > older + 300
    assert integrity(home) == "ok"
    with server(home, small_dataset) as client:
        assert client.get(f"/api/runs/{run_id}/points").status_code == 200
        assert client.get(f"/api/runs/{run_id}/sample", params={"n": 3}).json()["step"] == end
        train_then_stop(client, run_id, end)
        assert len(client.get("/api/lost-found").json()["items"]) == 2


def test_files_without_rows_are_moved_to_lost_found_never_deleted(tmp_path: Path, small_dataset: Dataset) -> None:
    """The WAL is lost: the database no longer names checkpoint files it wrote, of its runs or of
    runs it no longer lists. Each is moved, byte for byte, and listed; a temporary file goes."""
    home = tmp_path / "home"
    with server(home, small_dataset) as client:
        run_id = wait_for(lambda: client.get("/api/runs/current").json().get("id"), 60, "the default run")
        wait_for(lambda: Store(home).checkpoints(run_id), 60, "the default run's first checkpoint")

    orphans = {
        f"checkpoints/{run_id}/000000012600.safetensors": b"weights at 12,600",
        "checkpoints/gone/000000000700.safetensors": b"a run the database lost",
        "checkpoints/gone/notes": b"not a step",
    }
    for rel, data in orphans.items():
        (home / rel).parent.mkdir(parents=True, exist_ok=True)
        (home / rel).write_bytes(data)
    tmp = home / "checkpoints" / "gone" / ".000000000800.safetensors.99.tmp"
    tmp.write_bytes(b"half")
    before = time.time()

    with server(home, small_dataset) as client:
        for rel, data in orphans.items():
            assert (home / "lost+found" / rel).read_bytes() == data
        items = client.get("/api/lost-found").json()["items"]
        # the run the database still lists is as it was
        assert run_state(client, run_id)["status"] == "paused" and Store(home).checkpoints(run_id)
    assert {i["file"]: (i["run_id"], i["step"], i["bytes"]) for i in items} == {
        f"checkpoints/{run_id}/000000012600.safetensors": (run_id, 12600, 17),
        "checkpoints/gone/000000000700.safetensors": ("gone", 700, 23),
        "checkpoints/gone/notes": ("gone", None, 10),
    }
    for i in items:
        assert i["reason"] == "no checkpoint row" and i["when"] >= before
        assert i["path"] == f"lost+found/{i['file']}" and (home / i["path"]).read_bytes() == orphans[i["file"]]
        assert not (home / i["file"]).exists()
    assert not tmp.exists()
    assert (home / "lost+found" / "README").is_file()


def test_a_write_run_again_after_its_transaction_failed_moves_and_records_once(tmp_path: Path) -> None:
    """The writer runs a failed transaction's writes again (the disk full): the rows are back,
    the files are moved already. The second pass answers what the first did, and the index has
    each item once."""
    lf = LostFound(tmp_path)
    (tmp_path / "checkpoints" / "r1").mkdir(parents=True)
    (tmp_path / "checkpoints" / "r1" / "000000000300.safetensors").write_bytes(b"bad")
    first = lf.move("checkpoints/r1/000000000300.safetensors", "r1", 300, REASONS["damaged"])
    gone = lf.record("checkpoints/r1/000000000200.safetensors", "r1", 200, 99, REASONS["missing"])
    again = lf.move("checkpoints/r1/000000000300.safetensors", "r1", 300, REASONS["damaged"])
    assert (
        again == first and again.why == "damaged" and first.path == "lost+found/checkpoints/r1/000000000300.safetensors"
    )
    assert lf.record("checkpoints/r1/000000000200.safetensors", "r1", 200, 99, REASONS["missing"]) == gone
    assert lf.items() == [first, gone]
    # a new file at a name moved before is moved too, beside the first
    (tmp_path / "checkpoints" / "r1" / "000000000300.safetensors").write_bytes(b"bad again")
    later = lf.move("checkpoints/r1/000000000300.safetensors", "r1", 300, REASONS["damaged"])
    assert later.path == "lost+found/checkpoints/r1/000000000300.safetensors.1"
    assert (tmp_path / later.path).read_bytes() == b"bad again" and len(lf.items()) == 3


def test_a_history_broken_by_an_older_version_is_a_409_not_a_500(tmp_path: Path, small_dataset: Dataset) -> None:
    """Steps stored twice over (a version before this one resumed a run from an older checkpoint
    than its history): changing or resuming the run says why it cannot, as a 409."""
    s, _ = stored_run(tmp_path, small_dataset)
    s.open()
    s.add_steps("r1", 250, [1.0] * 50, [0.1] * 50, 32, 3.5)  # over steps 250-299, stored already
    s.flush()
    s.close()
    with server(s.home, small_dataset) as client:
        for body in ({"status": "running"}, {"lr": 0.05}):
            answer = client.patch("/api/runs/r1", json=body)
            assert answer.status_code == 409, answer.text
            assert "steps must be contiguous" in answer.json()["detail"]


def test_a_run_whose_dataset_is_gone_cannot_resume_and_says_so(tmp_path: Path, small_dataset: Dataset) -> None:
    s, _ = stored_run(tmp_path, small_dataset)
    gone = dataset_id(s)
    conn = sqlite3.connect(s.path)  # foreign keys off, as a hand with the sqlite3 shell has them
    with conn:
        conn.execute("DELETE FROM datasets")
    conn.close()
    with server(s.home, Dataset("other", small_dataset.words[:1000])) as client:  # another built-in list
        answer = client.patch("/api/runs/r1", json={"status": "running"})
        assert answer.status_code == 409, answer.text
        assert answer.json()["detail"] == f"its dataset {gone} is not stored any more"
        assert run_state(client, "r1")["status"] == "paused"


def test_a_branch_from_a_damaged_checkpoint_is_a_409(tmp_path: Path, small_dataset: Dataset) -> None:
    s, rows = stored_run(tmp_path, small_dataset)
    with server(s.home, small_dataset) as client:
        damage(s.home / rows[2].file, "flip")  # step 200, not the latest: nothing at start-up reads it
        answer = client.post("/api/runs/r1/branch", json={"step": 200})
        assert answer.status_code == 409, answer.text
        assert answer.json()["detail"] == "its checkpoint at step 200 is damaged; branch from another"
        assert client.post("/api/runs/r1/branch", json={"step": 100}).status_code == 201


def test_while_the_disk_refuses_writes_a_missing_checkpoint_is_not_cut_away(
    tmp_path: Path, small_dataset: Dataset
) -> None:
    """While the store holds writes in memory (a full disk), a run's checkpoint at its step may be
    held, not lost: resuming is refused, and nothing is cut until the store writes again."""
    s, _ = stored_run(tmp_path, small_dataset)
    with server(s.home, small_dataset) as client:
        conn = sqlite3.connect(s.path)
        with conn:
            conn.execute("DELETE FROM checkpoints WHERE step = 300")  # not on disk (yet)
        conn.close()
        health = client.app.state.registry.store.health  # type: ignore[attr-defined]
        health.failing("the disk is full", {})
        answer = client.patch("/api/runs/r1", json={"status": "running"})
        assert answer.status_code == 409
        assert answer.json()["detail"] == "its checkpoint at step 300 is not written yet (the disk is full)"
        assert run_state(client, "r1")["step"] == 300 and contiguous(s, "r1") == 300
        health.ok()
        answer = client.patch("/api/runs/r1", json={"status": "running"})
        assert answer.status_code == 409 and "its checkpoint at step 300 was never saved" in answer.json()["detail"]
        assert run_state(client, "r1")["step"] == 200 and contiguous(s, "r1") == 200
