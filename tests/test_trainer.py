import math
from collections.abc import Iterator

import pytest
import torch

from backend.data import Dataset
from backend.evaluate import CountedExamples, exact_losses
from backend.model import MLP, ModelShape, SGDStep
from backend.trainer import (
    ConflictError,
    EvalResult,
    HParams,
    HParamsChanged,
    Status,
    StatusChanged,
    Steps,
    Trainer,
    Update,
    check_update,
)
from tests.conftest import Recorder, wait_for

SEED = 2147483647


_started: list[Trainer] = []


@pytest.fixture(autouse=True)
def _stop_trainers() -> Iterator[None]:
    """A failed test must not leave a trainer thread running."""
    yield
    while _started:
        _started.pop().stop()


def make_trainer(ds: Dataset, rec: Recorder, **kw: object) -> Trainer:
    hp = HParams(lr=kw.pop("lr", 0.1), batch_size=kw.pop("batch_size", 32), eval_every=kw.pop("eval_every", 1000))  # type: ignore[arg-type]
    max_steps = kw.pop("max_steps", 200_000)
    model = kw.pop("model", None) or MLP.lecture_init(ModelShape(ds.vocab.size))
    trainer = Trainer(model, ds.splits(3), ds.vocab.size, hp, max_steps, SEED, rec)  # type: ignore[arg-type]
    _started.append(trainer)
    return trainer


def statuses(rec: Recorder) -> list[Status]:
    return [e.status for e in rec.of(StatusChanged)]


def all_losses(rec: Recorder) -> dict[int, float]:
    out: dict[int, float] = {}
    for s in rec.of(Steps):
        for i, loss in enumerate(s.losses):
            assert s.first + i not in out, "a step was reported twice"
            out[s.first + i] = loss
    return out


def test_runs_to_max_steps_with_evaluations(small_dataset: Dataset) -> None:
    rec = Recorder()
    t = make_trainer(small_dataset, rec, max_steps=2500, eval_every=1000)
    t.start(running=True)
    wait_for(lambda: t.status is Status.FINISHED, what="the run to finish")
    assert t.step == 2500
    assert [e.step for e in rec.of(EvalResult)] == [0, 1000, 2000, 2500]
    losses = all_losses(rec)
    assert sorted(losses) == list(range(2500))  # every step reported once, no gaps
    assert statuses(rec) == [Status.RUNNING, Status.FINISHED]
    assert t.last_eval is not None and t.last_eval.step == 2500
    # the last evaluation is exact: recompute it from the final weights
    counted = CountedExamples.from_splits([small_dataset.splits(3).train], 27)
    assert t.last_eval.train_loss == pytest.approx(exact_losses(t.weights(), counted)[0], rel=1e-6)
    t.stop()


def test_paused_run_evaluates_step_zero_and_waits(small_dataset: Dataset) -> None:
    rec = Recorder()
    t = make_trainer(small_dataset, rec)
    t.start(running=False)
    ev = wait_for(lambda: rec.of(EvalResult), what="the step-0 evaluation")[0]
    assert ev.step == 0 and ev.train_loss > 15  # the lecture's init: far above ln 27
    assert t.step == 0 and t.status is Status.PAUSED
    t.stop()
    assert t.status is Status.STOPPED
    with pytest.raises(ConflictError):
        t.submit(Update(lr=0.5))


def test_change_applies_at_the_reported_step(small_dataset: Dataset) -> None:
    """Replay the run by hand: lr 0.1 and batch 32 until the reported step, then lr 0.05 and
    batch 8. Every reported loss and the final weights must match the replay exactly."""
    rec = Recorder()
    t = make_trainer(small_dataset, rec, eval_every=10**6)
    t.start(running=True)
    wait_for(lambda: t.step > 300, what="some steps")
    t.submit(Update(lr=0.05, batch_size=8)).result(10)
    start, change = rec.of(HParamsChanged)
    assert (start.step, start.hparams) == (0, HParams(0.1, 32, 10**6))
    wait_for(lambda: t.step > change.step + 300, what="steps after the change")
    t.submit(Update(status=Status.PAUSED)).result(10)
    end = t.step
    assert change.hparams == HParams(0.05, 8, 10**6)
    assert 300 < change.step < end

    ex = small_dataset.splits(3).train
    model = MLP.lecture_init(ModelShape(27))
    sgd = SGDStep(model)
    gen = torch.Generator().manual_seed(SEED)
    reported = all_losses(rec)
    for step in range(end):
        lr, B = (0.1, 32) if step < change.step else (0.05, 8)
        idx = torch.randint(0, len(ex), (B,), generator=gen)
        assert float(sgd(ex.X, ex.Y, idx, lr)) == reported[step], step
    for mine, theirs in zip(model.parameters(), t.weights().parameters(), strict=True):
        assert torch.equal(mine, theirs)
    t.stop()


def test_pause_resume_and_status_events(small_dataset: Dataset) -> None:
    rec = Recorder()
    t = make_trainer(small_dataset, rec)
    t.start(running=False)
    t.submit(Update(status=Status.RUNNING)).result(10)
    wait_for(lambda: t.step > 100)
    t.submit(Update(status=Status.PAUSED)).result(10)
    paused_at = t.step
    t.submit(Update(lr=0.2)).result(10)  # a change while paused applies at once
    assert rec.of(HParamsChanged)[-1].step == paused_at
    t.submit(Update(lr=0.2)).result(10)  # no change, but still confirmed
    assert len(rec.of(HParamsChanged)) == 3
    assert t.step == paused_at
    t.submit(Update(status=Status.RUNNING)).result(10)
    wait_for(lambda: t.step > paused_at + 100)
    assert statuses(rec) == [Status.RUNNING, Status.PAUSED, Status.RUNNING]
    assert [s.step for s in rec.of(StatusChanged)][1] == paused_at
    t.stop()


def test_divergence_restores_last_good_weights(small_dataset: Dataset) -> None:
    rec = Recorder()
    t = make_trainer(small_dataset, rec, eval_every=500)
    t.start(running=True)
    wait_for(lambda: t.step > 3000, what="training")
    t.submit(Update(lr=10.0)).result(10)
    wait_for(lambda: t.status is Status.DIVERGED, timeout=30, what="divergence at lr 10")
    status = rec.of(StatusChanged)[-1]
    assert "diverged at lr 10" in status.detail and "weights restored" in status.detail
    evals = rec.of(EvalResult)
    restored = evals[-1]  # evaluated right after the restore
    good = [e for e in evals[:-1] if e.step <= rec.of(HParamsChanged)[-1].step]
    assert restored.train_loss == pytest.approx(good[-1].train_loss, rel=1e-6)
    assert restored.train_loss < 3.0
    # lower the rate and resume: training goes on from the restored weights
    t.submit(Update(lr=0.05, status=Status.RUNNING)).result(10)
    at = t.step
    wait_for(lambda: max(all_losses(rec)) > at + 500, what="reported steps after the resume")
    recent = [v for k, v in all_losses(rec).items() if k > at + 400]
    assert max(recent) < 6
    t.stop()


def test_nan_weights_diverge_immediately(small_dataset: Dataset) -> None:
    rec = Recorder()
    model = MLP.lecture_init(ModelShape(27))
    model.W2[0, 0] = math.nan
    t = make_trainer(small_dataset, rec, model=model)
    t.start(running=True)
    wait_for(lambda: t.status is Status.DIVERGED, what="NaN divergence")
    assert "nan" in t.detail
    t.stop()


def test_check_update_rules() -> None:
    check_update(Status.PAUSED, 10, 100, Update(status=Status.RUNNING))
    with pytest.raises(ConflictError, match="stopped"):
        check_update(Status.STOPPED, 10, 100, Update(lr=0.1))
    with pytest.raises(ConflictError, match="max_steps"):
        check_update(Status.FINISHED, 100, 100, Update(status=Status.RUNNING))
    check_update(Status.FINISHED, 100, 100, Update(status=Status.RUNNING, max_steps=200))


def test_finished_run_resumes_with_more_steps(small_dataset: Dataset) -> None:
    rec = Recorder()
    t = make_trainer(small_dataset, rec, max_steps=200)
    t.start(running=True)
    wait_for(lambda: t.status is Status.FINISHED)
    with pytest.raises(ConflictError):
        t.submit(Update(status=Status.RUNNING)).result(10)
    t.submit(Update(max_steps=400, status=Status.RUNNING)).result(10)
    wait_for(lambda: t.status is Status.FINISHED and t.step == 400)
    assert [e.step for e in rec.of(EvalResult)] == [0, 200, 400]
    t.stop()
