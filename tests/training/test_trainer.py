import gc
import math
import weakref
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from typing import Any

import pytest
import torch

import backend.training.lrsweep as lrsweep_module
from backend.core.data import Dataset
from backend.core.evaluate import CountedExamples, exact_losses
from backend.core.lrfind import LrFindResult, LrFindSpec
from backend.core.model import MLP, ModelShape, SGDStep
from backend.core.optim import OptimizerSpec
from backend.training.minibatches import Minibatches
from backend.training.noise_budget import EVERY
from backend.training.protocol import (
    CheckpointTaken,
    ConflictError,
    EmbeddingsChanged,
    EvalResult,
    HParamsChanged,
    LrFindDone,
    LrFindProgress,
    NoiseEstimate,
    Status,
    StatusChanged,
    Steps,
    Update,
    check_update,
)
from backend.training.spec import CONSTANT, CosineSchedule, HParams, RunSpec, Schedule, StepSchedule
from backend.training.trainer import Trainer
from tests.conftest import Recorder, spy_on_evaluations, wait_for

SEED = 2147483647


_started: list[Trainer] = []


@pytest.fixture(autouse=True)
def _stop_trainers() -> Iterator[None]:
    """A failed test must not leave a trainer thread running."""
    yield
    while _started:
        _started.pop().stop()


def make_trainer(
    ds: Dataset,
    rec: Recorder,
    lr: float = 0.1,
    batch_size: int = 32,
    eval_every: int = 1000,
    max_steps: int = 200_000,
    model: MLP | None = None,
    schedule: Schedule | None = None,
    optimizer: OptimizerSpec | None = None,
) -> Trainer:
    hp = HParams(
        lr=lr, batch_size=batch_size, eval_every=eval_every, max_steps=max_steps, schedule=schedule or CONSTANT
    )
    opt = optimizer or OptimizerSpec()
    spec = RunSpec(seed=SEED, optimizer=opt.kind, momentum=opt.momentum, max_steps=max_steps)
    trainer = Trainer(spec, ds.splits(3), ds.vocab.chars, rec, 2, model=model, hparams=hp)
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
    assert t.status is Status.PAUSED
    assert rec.of(CheckpointTaken)[-1].step == 0  # the state it stopped in went out
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
    assert (start.step, start.hparams) == (0, HParams(lr=0.1, batch_size=32, eval_every=10**6))
    wait_for(lambda: t.step > change.step + 300, what="steps after the change")
    t.submit(Update(status=Status.PAUSED)).result(10)
    end = t.step
    assert change.hparams == HParams(lr=0.05, batch_size=8, eval_every=10**6)
    assert 300 < change.step < end

    ex = small_dataset.splits(3).train
    model = MLP.lecture_init(ModelShape(27))
    sgd = SGDStep(model)
    gen = torch.Generator().manual_seed(SEED)
    reported = all_losses(rec)
    batches = Minibatches(len(ex), 32, gen)
    for step in range(end):
        if step == change.step:
            batches = Minibatches(len(ex), 8, gen)  # a new batch size starts a new block of draws
        lr = 0.1 if step < change.step else 0.05
        assert float(sgd(ex.X, ex.Y, batches(), lr)) == reported[step], step
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
    for status in (Status.DIVERGED, Status.INTERRUPTED, Status.QUEUED):
        check_update(status, 10, 100, Update(status=Status.RUNNING, lr=0.01))
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


def all_lrs(rec: Recorder) -> dict[int, float]:
    return {s.first + i: lr for s in rec.of(Steps) for i, lr in enumerate(s.lrs)}


def test_schedule_sets_every_steps_rate(small_dataset: Dataset) -> None:
    rec = Recorder()
    t = make_trainer(small_dataset, rec, lr=0.2, max_steps=600, schedule=StepSchedule(kind="step", at=250, factor=0.1))
    t.start(running=True)
    wait_for(lambda: t.status is Status.FINISHED)
    lrs = all_lrs(rec)
    assert sorted(lrs) == list(range(600))
    assert {lrs[s] for s in range(250)} == {0.2}
    assert all(lrs[s] == pytest.approx(0.02) for s in range(250, 600))
    # switch to cosine mid-way (live), continue to 1,200
    t.submit(Update(schedule=CosineSchedule(kind="cosine", min_lr=0.0), max_steps=1200, status=Status.RUNNING)).result(
        10
    )
    wait_for(lambda: t.status is Status.FINISHED and t.step == 1200)
    lrs = all_lrs(rec)
    assert lrs[600] == pytest.approx(CosineSchedule(kind="cosine").lr(0.2, 600, 1200))
    assert lrs[1199] < 0.001
    times = [s.time for s in rec.of(Steps)]
    assert times == sorted(times) and 0 < times[-1] == pytest.approx(t.train_seconds, abs=0.5)


def test_evaluations_bring_noise_scale_and_embeddings(small_dataset: Dataset) -> None:
    rec = Recorder()
    t = make_trainer(small_dataset, rec, max_steps=2000, eval_every=1000)
    t.start(running=True)
    wait_for(lambda: t.status is Status.FINISHED)
    noise = rec.of(NoiseEstimate)
    maps = rec.of(EmbeddingsChanged)
    # the first and the last evaluation always bring one; the middle one unless the first was too recent
    assert {0, 2000} <= {n.step for n in noise} <= {0, 1000, 2000} and all(n.b_noise > 0 for n in noise)
    assert [m.step for m in maps] == [0, 1000, 2000]
    assert maps[0].chars == small_dataset.vocab.chars and maps[0].method == "pca"
    assert t.noise == (2000, noise[-1].b_noise)


def test_noise_estimates_take_a_bounded_share_of_the_time(small_dataset: Dataset) -> None:
    """An estimate costs about two more evaluations, and they may take at most a fifth of the time
    (noise_budget.py): with an evaluation after every step, most evaluations go without."""
    rec = Recorder()
    t = make_trainer(small_dataset, rec, max_steps=60, eval_every=1)
    t.start(running=True)
    wait_for(lambda: t.status is Status.FINISHED)
    evals, noise = rec.of(EvalResult), rec.of(NoiseEstimate)
    assert len(evals) == 61
    assert noise[0].step == 0 and noise[-1].step == 60
    # 6-7 here; the trainer's time now includes its diagnostics (a share of its own), and on a
    # loaded machine one slow evaluation lets a few more through: still most go without
    assert len(noise) <= len(evals) // 4


def test_lr_find_leaves_the_run_exactly_as_it_was(small_dataset: Dataset) -> None:
    """Two identical runs; one sweeps mid-way. Afterwards both must train identically."""
    recs = [Recorder(), Recorder()]
    ts = [make_trainer(small_dataset, r, eval_every=10**6) for r in recs]
    for t in ts:
        t.start(running=False)
        t.submit(Update(max_steps=300, status=Status.RUNNING)).result(10)
        wait_for(lambda t=t: t.status is Status.FINISHED)
    before = ts[0].weights()
    ts[0].submit(LrFindSpec(1e-3, 10, 200)).result(30)
    result = ts[0].last_lrfind
    assert result is not None and result.step == 300
    assert 20 < len(result.lr) <= 200 and result.lr == sorted(result.lr)
    assert result.stopped_early  # lr 10 blows up well before the end
    assert result.suggestion is not None and result.lr[0] <= result.suggestion <= result.lr[-1]
    for a, b in zip(before.parameters(), ts[0].weights().parameters(), strict=True):
        assert torch.equal(a, b)
    assert ts[0].step == 300
    done = recs[0].of(LrFindDone)[0].result
    progress = recs[0].of(LrFindProgress)
    assert sum(len(p.lr) for p in progress) == len(done.lr)
    for t in ts:
        t.submit(Update(max_steps=600, status=Status.RUNNING)).result(10)
        wait_for(lambda t=t: t.status is Status.FINISHED)
    assert all_losses(recs[0]) == all_losses(recs[1])  # the same minibatches, the same losses
    for a, b in zip(ts[0].weights().parameters(), ts[1].weights().parameters(), strict=True):
        assert torch.equal(a, b)


def test_lr_find_pauses_a_running_run_and_resumes_it(small_dataset: Dataset) -> None:
    rec = Recorder()
    t = make_trainer(small_dataset, rec)
    t.start(running=True)
    wait_for(lambda: t.step > 100)
    t.submit(LrFindSpec(1e-3, 1, 100)).result(30)
    long = t.submit(LrFindSpec(1e-4, 1e-3, 5000))  # small rates: it runs to the end
    with pytest.raises(ConflictError, match="already"):
        t.submit(LrFindSpec(1e-3, 1, 100))  # one sweep at a time
    long.result(60)
    assert len(rec.of(LrFindDone)) == 2
    changes = [(s.status, s.detail) for s in rec.of(StatusChanged)]
    assert (Status.PAUSED, "finding the learning rate") in changes
    assert changes[-1][0] is Status.RUNNING
    at = t.step
    wait_for(lambda: t.step > at + 100, what="training after the sweep")


@pytest.mark.parametrize("kind", ["momentum", "adam"])
def test_other_optimizers_train(small_dataset: Dataset, kind: str) -> None:
    rec = Recorder()
    model = MLP.scaled_init(ModelShape(27))
    lr = 0.05 if kind == "momentum" else 0.01
    t = make_trainer(small_dataset, rec, lr=lr, max_steps=1500, model=model, optimizer=OptimizerSpec(kind))  # type: ignore[arg-type]
    t.start(running=True)
    wait_for(lambda: t.status is Status.FINISHED)
    evals = rec.of(EvalResult)
    assert evals[0].train_loss == pytest.approx(math.log(27), abs=0.2)
    assert evals[-1].train_loss < 2.6


def test_minibatches_are_the_generators_draws_step_by_step() -> None:
    """Drawing a block of steps at once gives the very numbers of one draw per step."""
    a, b = torch.Generator().manual_seed(3), torch.Generator().manual_seed(3)
    batches = Minibatches(1000, 32, a, block_rows=32 * 5)  # blocks of 5 steps
    for _ in range(12):
        assert torch.equal(batches(), torch.randint(0, 1000, (32,), generator=b))
    assert all(0 <= int(i) < 1000 for i in batches())


@pytest.mark.parametrize("kind", ["sgd", "adam"])
def test_an_estimate_in_every_three_evaluations(small_dataset: Dataset, kind: str) -> None:
    """Issue 10: 6 of 167 evaluations of a lecture run had a noise-scale estimate, none in 34,000
    steps of an Adam run. Evaluating every 1,000 steps, at least every third has one."""
    rec = Recorder()
    adam = kind == "adam"
    model = MLP.scaled_init(ModelShape(27)) if adam else None
    opt = OptimizerSpec("adam") if adam else None
    t = make_trainer(small_dataset, rec, lr=0.01 if adam else 0.1, max_steps=8000, model=model, optimizer=opt)
    t.start(running=True)
    wait_for(lambda: t.status is Status.FINISHED, timeout=120)
    evals = [e.step for e in rec.of(EvalResult)]
    estimated = {n.step for n in rec.of(NoiseEstimate)}
    assert evals == list(range(0, 8001, 1000))
    had = [step in estimated for step in evals]
    assert all(any(had[i : i + EVERY]) for i in range(len(had) - EVERY + 1)), had
    assert all(n.b_noise > 0 for n in rec.of(NoiseEstimate))


# ---- commands during long work: an evaluation in many chunks, a sweep ------------------------------
def test_a_change_during_a_long_evaluation_applies_before_it_ends(
    small_dataset: Dataset, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A `set` that arrives after the first chunk of the step-0 evaluation is confirmed while the
    evaluation still has chunks to go, and the evaluation's result is what it would have been."""
    sent: list[Future[Any]] = []
    done_at: list[int] = []

    def at_chunk(t: Trainer, n: int) -> None:
        if n == 1 and not sent:
            sent.append(t.submit(Update(lr=0.05)))
        if sent and sent[0].done() and not done_at:
            done_at.append(len(log))

    rec = Recorder()
    trainers: list[Trainer] = []
    log = spy_on_evaluations(monkeypatch, at_chunk, trainers)
    t = make_trainer(small_dataset, rec)
    trainers.append(t)
    t.start(running=False)
    ev = wait_for(lambda: rec.of(EvalResult), what="the step-0 evaluation")[0]
    assert sent[0].done() and done_at and log.count("chunk") > 10
    assert "end" not in log[: done_at[0]] and log[done_at[0] :].count("chunk") > 5  # applied mid-evaluation
    kinds = [type(e).__name__ for e in rec.events]
    assert kinds.index("EvalResult") > max(i for i, k in enumerate(kinds) if k == "HParamsChanged")
    change = rec.of(HParamsChanged)[-1]
    assert (change.step, change.hparams.lr) == (0, 0.05)
    counted = CountedExamples.from_splits([small_dataset.splits(3).train, small_dataset.splits(3).dev], 27)
    assert [ev.train_loss, ev.dev_loss] == pytest.approx(exact_losses(MLP.lecture_init(ModelShape(27)), counted))


def test_a_change_mid_evaluation_takes_effect_at_that_step_exactly(
    small_dataset: Dataset, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Run A stops at step 1,000 and goes on with lr 0.05 from there; run B gets lr 0.05 in the
    middle of its evaluation at step 1,000. The same steps, bit for bit."""

    def at_chunk(t: Trainer, n: int) -> None:
        if t is trainers[1] and t.step == 1000 and n == 3:
            t.submit(Update(lr=0.05))

    trainers: list[Trainer] = []
    spy_on_evaluations(monkeypatch, at_chunk, trainers)
    recs = [Recorder(), Recorder()]
    a = make_trainer(small_dataset, recs[0], max_steps=1000)
    b = make_trainer(small_dataset, recs[1], max_steps=2000)
    trainers += [a, b]
    a.start(running=True)
    wait_for(lambda: a.status is Status.FINISHED)
    a.submit(Update(lr=0.05, max_steps=2000, status=Status.RUNNING)).result(10)
    b.start(running=True)
    for t in (a, b):
        wait_for(lambda t=t: t.status is Status.FINISHED and t.step == 2000, timeout=60)
    change = recs[1].of(HParamsChanged)[-1]
    assert (change.step, change.hparams.lr) == (1000, 0.05)
    b_kinds = [(type(e).__name__, getattr(e, "step", None)) for e in recs[1].events]
    assert b_kinds.index(("HParamsChanged", 1000)) < b_kinds.index(("EvalResult", 1000))
    assert all_losses(recs[0]) == all_losses(recs[1])
    for x, y in zip(a.weights().parameters(), b.weights().parameters(), strict=True):
        assert torch.equal(x, y)


def test_changes_during_a_sweep_apply_before_it_ends(small_dataset: Dataset, monkeypatch: pytest.MonkeyPatch) -> None:
    """A `set` with a pause, five steps into a learning-rate sweep of a running run: the rate is
    confirmed before the sweep ends, and the run stays paused after it (instead of resuming)."""
    real = lrsweep_module.sweep
    sent: list[Future[Any]] = []

    def sweep(train_step: Any, spec: LrFindSpec, progress: Any, interrupted: Callable[[], bool], *a: Any) -> Any:
        calls = 0

        def spy() -> bool:
            nonlocal calls
            calls += 1
            if calls == 5:
                sent.append(t.submit(Update(lr=0.05, status=Status.PAUSED)))
            return interrupted()

        result: LrFindResult = real(train_step, spec, progress, spy, *a)
        assert sent[0].done()  # applied before the sweep ended
        return result

    monkeypatch.setattr(lrsweep_module, "sweep", sweep)
    rec = Recorder()
    t = make_trainer(small_dataset, rec)
    t.start(running=True)
    wait_for(lambda: t.step > 100)
    t.submit(LrFindSpec(1e-4, 1e-3, 200)).result(30)  # small rates: it runs to the end
    assert len(rec.of(LrFindDone)[0].result.lr) == 200
    kinds = [type(e).__name__ for e in rec.events]
    last_change = len(kinds) - 1 - kinds[::-1].index("HParamsChanged")
    assert kinds.index("LrFindStarted") < last_change < kinds.index("LrFindDone")
    assert rec.of(HParamsChanged)[-1].hparams.lr == 0.05
    assert (t.status, t.detail) == (Status.PAUSED, "paused by a user")
    assert [s.detail for s in rec.of(StatusChanged)][-2:] == ["finding the learning rate", "paused by a user"]
    at = t.step
    t.submit(Update(status=Status.RUNNING)).result(10)
    wait_for(lambda: t.step > at + 100, what="training after a resume")


def test_a_stopped_trainer_is_freed_without_the_cycle_collector(small_dataset: Dataset) -> None:
    """Nothing a trainer holds refers back to it once its thread has ended: the server builds one
    per run created paused (its step-0 evaluation), and one kept alive until the cycle collector
    runs keeps its weights and evaluation set with it (tests/runs/test_bursts.py's memory)."""
    t = make_trainer(small_dataset, Recorder())
    t.start(running=False)
    t.stop()
    _started.remove(t)
    gone = weakref.ref(t)
    gc.disable()
    try:
        del t
        assert gone() is None
    finally:
        gc.enable()
