"""Step chunks that grow over commits (backend/store/steps.py): a running run's steps reach the
database at every commit, in a row that is rewritten with more steps until it holds CHUNK_STEPS,
so that a 200,000-step run's losses take little more than their 4 bytes a step on disk."""

from __future__ import annotations

import math
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from backend.core.data import Dataset
from backend.runs.datasets import record_of
from backend.store.records import RunRecord
from backend.store.store import CHUNK_STEPS, Store
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
    now = time.time()
    spec = RunSpec(dataset=s.datasets()[0].id)
    s.put_run(RunRecord("r1", "a run", spec, Status.RUNNING, "", 0, HParams(max_steps=200_000), now, now), wait=True)
    yield s
    s.close()


def add(store: Store, losses: np.ndarray, first: int, last: int, per_commit: int) -> None:
    """Steps first .. last - 1, `per_commit` of them per transaction (as a trainer's messages
    reach the store between two of its commits)."""
    for a in range(first, last, per_commit):
        b = min(last, a + per_commit)
        store.add_steps("r1", a, losses[a:b].tolist(), [0.1] * (b - a), 32, b / 1000)
        store.flush()


def stored(store: Store) -> np.ndarray:
    return np.concatenate([c.losses for c in store.steps("r1")])


def rows(store: Store) -> list[tuple[int, int]]:
    return sqlite3.connect(store.path).execute("SELECT first, n FROM steps ORDER BY first").fetchall()


def test_a_chunk_grows_over_commits(store: Store) -> None:
    losses = np.random.default_rng(0).random(20_000).astype(np.float32)
    add(store, losses, 0, 20_000, 300)
    # one row per commit would be 67 rows; a chunk takes new steps until it holds CHUNK_STEPS
    got = rows(store)
    assert len(got) == math.ceil(20_000 / (math.ceil(CHUNK_STEPS / 300) * 300))
    assert all(CHUNK_STEPS <= n < CHUNK_STEPS + 300 for _, n in got[:-1])
    assert [first for first, _ in got] == [sum(n for _, n in got[:i]) for i in range(len(got))]
    assert np.array_equal(stored(store), losses)


def test_steps_take_little_more_than_their_payload_on_disk(store: Store) -> None:
    losses = np.random.default_rng(1).random(200_000).astype(np.float32)
    add(store, losses, 0, 200_000, 300)  # ~600 steps/s: a commit holds 300 steps
    (on_disk,) = sqlite3.connect(store.path).execute("SELECT SUM(pgsize) FROM dbstat WHERE name = 'steps'").fetchone()
    assert on_disk <= 1.1 * 200_000 * 4  # a row per commit took ~4x (overflow pages of their own)
    assert np.array_equal(stored(store), losses)


def test_a_chunk_not_grown_over_a_commit_is_let_go(store: Store) -> None:
    losses = np.arange(600, dtype=np.float32)
    add(store, losses, 0, 500, 100)
    store.flush()  # a commit without new steps: the run stopped training
    add(store, losses, 500, 600, 100)
    assert rows(store) == [(0, 500), (500, 100)]
    assert np.array_equal(stored(store), losses)


def test_cutting_back_to_a_checkpoint_drops_the_growing_chunk(store: Store, small_dataset: Dataset) -> None:
    """After a worker died: the run stands at its checkpoint, and the steps after it that its
    growing chunk held never come back when the run trains on."""
    spec = RunSpec(eval_every=100, max_steps=300)
    rec = Recorder()
    t = Trainer(spec, small_dataset.splits(3), small_dataset.vocab.chars, rec)
    t.start(running=True)
    wait_for(lambda: t.status is Status.FINISHED, what="training")
    t.stop()
    at_300 = next(ck for ck in rec.of(CheckpointTaken) if ck.step == 300)
    losses = np.random.default_rng(2).random(600).astype(np.float32)
    add(store, losses, 0, 300, 100)
    store.put_checkpoint("r1", 300, encode(spec, at_300.state, small_dataset.vocab.chars), None, None)
    add(store, losses, 300, 500, 100)  # the same chunk grows past the checkpoint
    store.add_steps("r1", 500, losses[500:600].tolist(), [0.1] * 100, 32, 0.6)  # and the worker dies
    record = store.cut_to_checkpoint("r1", Status.INTERRUPTED, "interrupted at step {step}")
    assert record is not None and record.step == 300 and record.status is Status.INTERRUPTED
    assert np.array_equal(stored(store), losses[:300])
    again = np.random.default_rng(3).random(600).astype(np.float32)
    add(store, again, 300, 400, 50)  # trains on from its checkpoint
    assert np.array_equal(stored(store), np.concatenate([losses[:300], again[300:400]]))
