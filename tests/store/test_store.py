"""The store (backend/store/): schema versions, batched writes, step chunks, checkpoints written
atomically and checked, thinning, and cutting a run back to its last checkpoint."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from backend.core.data import Dataset
from backend.runs.datasets import record_of
from backend.store import files
from backend.store.records import RunRecord
from backend.store.schema import MIGRATIONS, SchemaError, migrate
from backend.store.store import KEEP_CHECKPOINTS, MAX_STORED_STEPS, Store
from backend.training.checkpoint import encode
from backend.training.protocol import CheckpointTaken, Status
from backend.training.spec import HParams, RunSpec
from backend.training.trainer import Trainer
from tests.conftest import Recorder, wait_for


@pytest.fixture
def store(tmp_path: Path, small_dataset: Dataset) -> Iterator[Store]:
    s = Store(tmp_path / "home")
    s.open()
    s.put_dataset(record_of(small_dataset, time.time()), "\n".join(small_dataset.words))
    yield s
    s.close()


def record(ds_id: str, run_id: str = "r1", **changes: object) -> RunRecord:
    now = time.time()
    spec = RunSpec(dataset=ds_id)
    r = RunRecord(run_id, "a run", spec, Status.RUNNING, "", 0, HParams(max_steps=200_000), now, now)
    for k, v in changes.items():
        setattr(r, k, v)
    return r


def dataset_id(store: Store) -> str:
    return store.datasets()[0].id


def checkpoint_bytes(small_dataset: Dataset, steps: int) -> tuple[RunSpec, list[CheckpointTaken]]:
    """Real checkpoints of a real trainer, at evaluations every 100 steps up to `steps`."""
    spec = RunSpec(eval_every=100, max_steps=steps)
    rec = Recorder()
    t = Trainer(spec, small_dataset.splits(3), small_dataset.vocab.chars, rec)
    t.start(running=True)
    wait_for(lambda: t.status is Status.FINISHED, what="training")
    t.stop()
    return spec, rec.of(CheckpointTaken)


# ---- schema ------------------------------------------------------------------------------------------
def test_migrations_step_through_versions(tmp_path: Path) -> None:
    conn = sqlite3.connect(tmp_path / "db", isolation_level=None)
    assert migrate(conn) == 0
    assert conn.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS)
    tables = {name for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert {"runs", "steps", "evals", "changes", "lrfinds", "checkpoints", "datasets"} <= tables
    conn.execute("INSERT INTO datasets VALUES ('d', 'n', x'00', 1, 1, 1, 1, 1, 1, 0)")
    # a next version (as a later release would add): applied once, data kept
    later = [*MIGRATIONS, "ALTER TABLE runs ADD COLUMN notes TEXT NOT NULL DEFAULT '';"]
    assert migrate(conn, later) == len(MIGRATIONS)
    assert migrate(conn, later) == len(later)  # nothing left to do
    assert "notes" in [row[1] for row in conn.execute("PRAGMA table_info(runs)")]
    assert conn.execute("SELECT COUNT(*) FROM datasets").fetchone()[0] == 1
    # a failing step leaves the database at the version before it
    broken = [*later, "CREATE TABLE extra (x); INSERT INTO nowhere VALUES (1);"]
    with pytest.raises(sqlite3.OperationalError):
        migrate(conn, broken)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == len(later)
    assert "extra" not in {n for (n,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    # a database from a newer program is refused, not damaged
    with pytest.raises(SchemaError, match="newer"):
        migrate(conn, MIGRATIONS)


def test_store_is_wal_and_reopens(tmp_path: Path, small_dataset: Dataset) -> None:
    s = Store(tmp_path / "h")
    s.open()
    s.put_dataset(record_of(small_dataset, 1.0), "\n".join(small_dataset.words))
    s.put_run(record(dataset_id(s)), wait=True)
    s.close()
    conn = sqlite3.connect(tmp_path / "h" / "makemore.db")
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    again = Store(tmp_path / "h")
    again.open()
    run = again.run("r1")
    assert run is not None and run.spec == RunSpec(dataset=dataset_id(again)) and run.status is Status.RUNNING
    assert again.dataset_text(dataset_id(again)) == "\n".join(small_dataset.words)
    again.close()


# ---- steps -------------------------------------------------------------------------------------------
def test_steps_are_merged_into_chunks_and_read_back(store: Store) -> None:
    store.put_run(record(dataset_id(store)), wait=True)
    rng = np.random.default_rng(0)
    losses = rng.random(3000).astype(np.float32).tolist()
    for first in range(0, 2000, 100):  # ten messages a second, as a trainer sends them
        store.add_steps("r1", first, losses[first : first + 100], [0.1] * 100, 32, first / 1000)
    store.add_steps("r1", 2000, losses[2000:3000], [0.05] * 500 + [0.01] * 500, 64, 3.0)  # a new batch size
    store.flush()
    chunks = list(store.steps("r1"))
    assert [(c.first, c.n, c.batch_size) for c in chunks] == [(0, 2000, 32), (2000, 1000, 64)]
    assert np.array_equal(np.concatenate([c.losses for c in chunks]), np.asarray(losses, dtype=np.float32))
    assert np.allclose(chunks[0].lrs, 0.1) and chunks[1].lrs[600] == pytest.approx(0.01)
    assert chunks[-1].time_end == 3.0
    cut = list(store.steps("r1", upto=2500))
    assert sum(c.n for c in cut) == 2500
    rows = sqlite3.connect(store.path).execute("SELECT COUNT(*), SUM(LENGTH(loss)) FROM steps").fetchone()
    assert rows == (2, 3000 * 4)  # compact: 4 bytes a loss, a constant rate stored once


def test_steps_past_the_cap_are_not_stored(store: Store) -> None:
    store.put_run(record(dataset_id(store)), wait=True)
    first = MAX_STORED_STEPS - 10
    store.add_steps("r1", first, [1.0] * 100, [0.1] * 100, 32, 1.0)
    store.add_steps("r1", first + 100, [1.0] * 100, [0.1] * 100, 32, 2.0)
    store.flush()
    assert [(c.first, c.n) for c in store.steps("r1")] == [(first, 10)]


# ---- checkpoints -------------------------------------------------------------------------------------
def test_checkpoints_are_checked_and_a_damaged_one_is_skipped(store: Store, small_dataset: Dataset) -> None:
    store.put_run(record(dataset_id(store)), wait=True)
    spec, taken = checkpoint_bytes(small_dataset, 300)
    for ck in taken:
        store.put_checkpoint("r1", ck.step, encode(spec, ck.state, small_dataset.vocab.chars), None, None)
    store.flush()
    rows = store.checkpoints("r1")
    assert [c.step for c in rows] == [0, 100, 200, 300]
    step, data = store.load_checkpoint("r1") or (None, b"")
    assert step == 300 and data == (store.home / rows[-1].file).read_bytes()
    # the latest file is damaged (a bad disk, a half-written copy): the one before is used
    path = store.home / rows[-1].file
    path.write_bytes(path.read_bytes()[:-10] + b"0123456789")
    assert (store.load_checkpoint("r1") or (None,))[0] == 200
    with pytest.raises(files.CorruptCheckpointError):
        store.load_checkpoint("r1", 300)
    assert not list(path.parent.glob(".*.tmp"))  # no temporary file left behind


def test_thinning_keeps_the_first_the_latest_and_spreads_the_rest() -> None:
    steps = list(range(0, 200_001, 1000))  # a checkpoint at every evaluation of a 200,000-step run
    kept = sorted(set(steps) - set(files.thin(steps, KEEP_CHECKPOINTS)))
    assert len(kept) == KEEP_CHECKPOINTS + 1 and kept[0] == 0 and kept[-1] == 200_000
    gaps = np.diff(kept)
    assert gaps.max() <= 2 * gaps.min() + 1000  # spread evenly, not bunched at the end
    assert files.thin([5, 9], 50) == []


def test_many_checkpoints_stay_bounded_on_disk(store: Store, small_dataset: Dataset) -> None:
    store.put_run(record(dataset_id(store)), wait=True)
    spec, taken = checkpoint_bytes(small_dataset, 100)
    data = encode(spec, taken[-1].state, small_dataset.vocab.chars)
    for step in range(0, 120_000, 1000):
        store.put_checkpoint("r1", step, data, 2.0, 2.1)
    store.flush()
    assert len(store.checkpoints("r1")) == KEEP_CHECKPOINTS + 1
    assert len(list((store.checkpoint_dir / "r1").iterdir())) == KEEP_CHECKPOINTS + 1


# ---- cutting back and recovering ----------------------------------------------------------------------
def test_recover_cuts_a_run_that_was_training_to_its_checkpoint(tmp_path: Path, small_dataset: Dataset) -> None:
    s = Store(tmp_path / "h")
    s.open()
    s.put_dataset(record_of(small_dataset, 1.0), "\n".join(small_dataset.words))
    ds = dataset_id(s)
    spec, taken = checkpoint_bytes(small_dataset, 200)
    s.put_run(record(ds, "r1", step=260, status=Status.RUNNING), wait=True)
    s.put_run(record(ds, "r2", status=Status.QUEUED), wait=True)
    s.add_steps("r1", 0, [1.0] * 260, [0.1] * 260, 32, 2.6)
    for ck in taken:
        s.put_checkpoint("r1", ck.step, encode(spec, ck.state, small_dataset.vocab.chars), None, None)
    for step in (0, 100, 200, 250):
        s.add_eval("r1", step, 2.0, 2.1)
    s.add_change("r1", {"step": 0, "lr": 0.1}, replace_last=False)
    s.add_change("r1", {"step": 230, "lr": 0.01}, replace_last=False)
    s.flush()
    s.close()
    # the process died here; a file written but never recorded is left over too
    (s.checkpoint_dir / "r1" / "000000000255.safetensors").write_bytes(b"half")
    s = Store(tmp_path / "h")
    s.open()
    changed = {r.id: r for r in s.recover()}
    r1 = changed["r1"]
    assert (r1.status, r1.step) == (Status.INTERRUPTED, 200) and "interrupted at step 200" in r1.detail
    assert changed["r2"].status is Status.PAUSED
    assert sum(c.n for c in s.steps("r1")) == 200
    h = s.history("r1")
    assert [e[0] for e in h.evals] == [0, 100, 200] and [c["step"] for c in h.changes] == [0]
    assert r1.last_eval is not None and r1.last_eval["step"] == 200
    assert not (s.checkpoint_dir / "r1" / "000000000255.safetensors").exists()
    stored = s.run("r1")
    assert stored is not None and (stored.status, stored.step) == (Status.INTERRUPTED, 200)
    s.close()


def test_delete_and_branch_copy(store: Store) -> None:
    ds = dataset_id(store)
    store.put_run(record(ds, "p"), wait=True)
    store.put_run(record(ds, "c"), wait=True)
    store.add_steps("p", 0, [2.0] * 500, [0.1] * 500, 32, 5.0)
    for step in (0, 250, 500):
        store.add_eval("p", step, 2.0, 2.1)
    store.copy_history("p", "c", 300)
    assert sum(c.n for c in store.steps("c")) == 300
    assert [e[0] for e in store.history("c").evals] == [0, 250]
    store.delete_run("p")
    assert store.run("p") is None and list(store.steps("p")) == []
    assert sum(c.n for c in store.steps("c")) == 300  # the branch keeps its own copy


def test_writes_are_batched_and_committed_within_a_second(store: Store) -> None:
    store.put_run(record(dataset_id(store)))
    reader = sqlite3.connect(store.path)
    wait_for(lambda: reader.execute("SELECT COUNT(*) FROM runs").fetchone()[0] == 1, timeout=2, what="the commit")


def test_update_of_a_run(store: Store) -> None:
    ds = dataset_id(store)
    store.put_run(record(ds), wait=True)
    r = record(ds, name="renamed", status=Status.FINISHED, step=500, last_eval={"step": 500, "train_loss": 2.0})
    store.put_run(r, wait=True)
    got = store.run("r1")
    assert got is not None and (got.name, got.status, got.step) == ("renamed", Status.FINISHED, 500)
    assert store.runs(Status.FINISHED)[0].id == "r1" and store.runs(Status.PAUSED) == []
