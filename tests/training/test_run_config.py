"""A run's settings are defined once (backend/training/spec.py): RunConfig (fixed), HParams
(steered), RunSpec (both, flat). `HParams.merged` is the one "None keeps the old value" rule, and
model_dump/model_validate the one codec; a home written before max_steps was one of the hparams
(and before a run's schedule was never null) still opens."""

from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path

from safetensors.torch import load, save

from backend.core.data import Dataset
from backend.runs.datasets import record_of
from backend.runs.starts import first_evaluation
from backend.runtime.wire import CheckpointData
from backend.store.records import RunRecord
from backend.store.store import Store
from backend.training.checkpoint import decode, read_metadata
from backend.training.protocol import Status, Update
from backend.training.spec import CONSTANT, HParams, HParamsPatch, RunConfig, RunSpec, StepSchedule


def test_merged_keeps_what_the_patch_leaves_out() -> None:
    h = HParams(lr=0.1, batch_size=32, eval_every=100, max_steps=1000)
    step = StepSchedule(kind="step", at=500, factor=0.5)
    assert h.merged(HParamsPatch()) == h
    assert h.merged(HParamsPatch(lr=0.05, schedule=step)) == HParams(
        lr=0.05, batch_size=32, eval_every=100, max_steps=1000, schedule=step
    )
    # a command's status is not an hparam: it changes nothing here
    assert h.merged(Update(max_steps=2000, status=Status.RUNNING)) == h.model_copy(update={"max_steps": 2000})


def test_a_spec_is_its_config_and_its_hparams() -> None:
    spec = RunSpec(lr=0.2, n_hidden=64, max_steps=500, schedule=None)  # type: ignore[arg-type]
    assert spec.schedule == CONSTANT  # null (a create body, an old row) is the constant schedule
    assert spec.hparams() == HParams(lr=0.2, max_steps=500)
    assert spec.config() == RunConfig(n_hidden=64)
    assert set(RunSpec.model_fields) == set(RunConfig.model_fields) | set(HParams.model_fields)


def _old_checkpoint(data: bytes) -> bytes:
    """The same checkpoint as an earlier version wrote it: max_steps beside the hparams, the
    spec's schedule null."""
    meta = read_metadata(data)
    hparams = dict(meta["hparams"])
    meta["max_steps"] = hparams.pop("max_steps")
    meta["hparams"] = hparams
    meta["spec"]["schedule"] = None
    return save(load(data), metadata={"makemore": json.dumps(meta)})


def test_a_home_written_before_max_steps_was_an_hparam_still_opens(tmp_path: Path, small_dataset: Dataset) -> None:
    s = Store(tmp_path / "h")
    s.open()
    s.put_dataset(record_of(small_dataset, 1.0), "\n".join(small_dataset.words))
    spec = RunSpec(dataset=s.datasets()[0].id, lr=0.05, eval_every=200, max_steps=3000)
    hp = HParams(lr=0.02, batch_size=16, eval_every=200, max_steps=4000)  # changed while it trained
    now = time.time()
    s.put_run(RunRecord("r", "r", spec, Status.PAUSED, "", 0, hp, now, now), wait=True)
    (ck,) = [e for e in first_evaluation(spec, small_dataset, hp) if isinstance(e, CheckpointData)]
    s.put_checkpoint("r", 0, _old_checkpoint(ck.data), None, None)
    s.flush()
    s.close()
    old_spec = {**json.loads(spec.model_dump_json()), "schedule": None}
    old_hparams = {"lr": 0.02, "batch_size": 16, "eval_every": 200, "schedule": {"kind": "constant"}}
    with sqlite3.connect(s.path) as c:
        c.execute(
            "UPDATE runs SET spec = ?, hparams = ?, max_steps = 4000, status = 'running' WHERE id = 'r'",
            (json.dumps(old_spec), json.dumps(old_hparams)),
        )
    c.close()

    assert decode(_old_checkpoint(ck.data)).state.hparams == hp
    s = Store(tmp_path / "h")
    s.open()
    run = s.run("r")
    assert run is not None and run.spec == spec and run.hparams == hp
    (back,) = s.recover()  # it was training: it stands at its checkpoint, whose hparams are read the old way
    assert back.status is Status.INTERRUPTED and back.hparams == hp
    again = s.run("r")
    assert again is not None and again.hparams == hp
    s.close()
