"""At start-up the store squares its checkpoint files with its rows (backend/store/recover.py,
`recover`): a file without a row (written just before a crash) is moved to lost+found, a
temporary file left half written is removed, a row whose file is gone (not a run's latest: see
test_store_damage.py) is dropped, and everything else stays as it was."""

from __future__ import annotations

import time
from pathlib import Path

from backend.core.data import Dataset
from backend.runs.datasets import record_of
from backend.store.records import RunRecord
from backend.store.store import Store
from backend.training.protocol import Status
from backend.training.spec import CosineSchedule, HParams, RunSpec


def test_recover_squares_checkpoint_files_with_rows(tmp_path: Path, small_dataset: Dataset) -> None:
    s = Store(tmp_path / "h")
    s.open()
    s.put_dataset(record_of(small_dataset, 1.0), "\n".join(small_dataset.words))
    spec = RunSpec(dataset=s.datasets()[0].id)
    now = time.time()
    for rid, step in (("r1", 100), ("r2", 0)):
        s.put_run(RunRecord(rid, rid, spec, Status.PAUSED, "", step, HParams(max_steps=1000), now, now), wait=True)
        s.put_checkpoint(rid, 0, f"{rid} at 0".encode(), None, None)
    s.put_checkpoint("r1", 50, b"r1 at 50", None, None)
    s.put_checkpoint("r1", 100, b"r1 at 100", None, None)
    s.flush()
    s.close()
    files = {(c.run_id, c.step): s.home / c.file for rid in ("r1", "r2") for c in s.checkpoints(rid)}
    assert set(files) == {("r1", 0), ("r1", 50), ("r1", 100), ("r2", 0)}
    files[("r1", 50)].unlink()  # a row whose file is gone (a disk error, a hand that cleaned up)
    orphan = s.checkpoint_dir / "r1" / "000000000150.safetensors"  # written, never recorded
    orphan.write_bytes(b"half")
    temporary = s.checkpoint_dir / "r2" / ".000000000010.safetensors.123.tmp"  # left half written
    temporary.write_bytes(b"hal")
    stray = s.checkpoint_dir / "notes.txt"  # not in a run's directory: not the store's business
    stray.write_text("mine")

    s = Store(tmp_path / "h")
    s.open()
    assert s.recover() == []  # nothing was training or queued
    assert [c.step for c in s.checkpoints("r1")] == [0, 100] and [c.step for c in s.checkpoints("r2")] == [0]
    assert not orphan.exists() and not temporary.exists() and stray.read_text() == "mine"
    assert files[("r1", 0)].read_bytes() == b"r1 at 0" and files[("r2", 0)].read_bytes() == b"r2 at 0"
    s.close()


def test_a_run_killed_before_its_first_checkpoint_comes_back_with_its_schedule(
    tmp_path: Path, small_dataset: Dataset
) -> None:
    """It starts again from its settings, all of them: its schedule was left out (a cosine run came
    back constant)."""
    s = Store(tmp_path / "h")
    s.open()
    s.put_dataset(record_of(small_dataset, 1.0), "\n".join(small_dataset.words))
    spec = RunSpec(dataset=s.datasets()[0].id, lr=0.05, schedule=CosineSchedule(kind="cosine", min_lr=0.001))
    now = time.time()
    s.put_run(RunRecord("r", "r", spec, Status.RUNNING, "", 500, HParams(max_steps=1000), now, now), wait=True)
    s.close()
    s = Store(tmp_path / "h")
    s.open()
    (back,) = s.recover()
    assert back.status is Status.INTERRUPTED and back.step == 0
    assert back.hparams.lr == 0.05 and back.hparams.schedule.model_dump() == {"kind": "cosine", "min_lr": 0.001}
    stored = s.run("r")
    assert stored is not None and stored.hparams == back.hparams
    s.close()
