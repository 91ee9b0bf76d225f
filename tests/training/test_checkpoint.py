"""A trainer's checkpoint (backend/training/checkpoint.py): encoded to bytes and back, a trainer
built from it continues exactly as the original does."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch
from safetensors.torch import load

from backend.core.data import Dataset
from backend.core.optim import OptimizerKind
from backend.training.checkpoint import decode, encode, read_metadata, weights_file
from backend.training.protocol import CheckpointTaken, EvalResult, Status, StatusChanged, Steps, Stop, Update
from backend.training.spec import RunSpec
from backend.training.trainer import Trainer
from tests.conftest import Recorder, spy_on_evaluations, wait_for

_started: list[Trainer] = []


@pytest.fixture(autouse=True)
def _stop_trainers() -> Iterator[None]:
    yield
    while _started:
        _started.pop().stop()


def trainer(ds: Dataset, spec: RunSpec, rec: Recorder, state: bytes | None = None) -> Trainer:
    t = Trainer(spec, ds.splits(spec.block_size), ds.vocab.chars, rec, 1, state=decode(state).state if state else None)
    _started.append(t)
    return t


def run_to(t: Trainer, steps: int) -> None:
    t.submit(Update(max_steps=steps, status=Status.RUNNING)).result(10)
    wait_for(lambda: t.status is Status.FINISHED and t.step == steps, timeout=120, what=f"step {steps}")


def losses(rec: Recorder, first: int = 0) -> dict[int, float]:
    return {s.first + i: v for s in rec.of(Steps) for i, v in enumerate(s.losses) if s.first + i >= first}


@pytest.mark.parametrize(
    ("optimizer", "batch_size", "k"),
    [("sgd", 32, 1234), ("momentum", 16, 777), ("adam", 64, 1500)],
)
def test_resume_from_bytes_continues_exactly(
    small_dataset: Dataset, optimizer: OptimizerKind, batch_size: int, k: int
) -> None:
    """Run A to step m; run B to k, checkpoint, rebuild from the bytes as C, and continue to m:
    every step loss after k and the final weights are A's, bit for bit."""
    m = 2600
    lr = 0.01 if optimizer == "adam" else 0.1
    spec = RunSpec(optimizer=optimizer, batch_size=batch_size, lr=lr, eval_every=500, max_steps=m, init="scaled")
    rec_a, rec_b, rec_c = Recorder(), Recorder(), Recorder()
    a = trainer(small_dataset, spec, rec_a)
    a.start(running=False)
    run_to(a, m)
    b = trainer(small_dataset, spec, rec_b)
    b.start(running=False)
    run_to(b, k)  # k is not a multiple of the minibatch block: the cursor stands mid-block
    b.stop()
    last = rec_b.of(CheckpointTaken)[-1]
    assert last.step == k
    data = encode(spec, last.state, small_dataset.vocab.chars)
    c = trainer(small_dataset, spec, rec_c, state=data)
    assert c.step == k
    c.start(running=False)
    run_to(c, m)
    assert losses(rec_c, k) == losses(rec_a, k)
    assert sorted(losses(rec_c, k)) == list(range(k, m))
    for x, y in zip(a.weights().parameters(), c.weights().parameters(), strict=True):
        assert torch.equal(x, y)


def test_every_checkpoint_resumes_exactly_after_a_batch_change(small_dataset: Dataset) -> None:
    """Checkpoints taken at evaluations and while paused, with a batch-size change between: each
    resumes into the very same losses as the original run."""
    spec = RunSpec(eval_every=300, max_steps=2000)
    rec = Recorder()
    t = trainer(small_dataset, spec, rec)
    t.start(running=False)
    run_to(t, 700)
    t.submit(Update(batch_size=48, lr=0.05)).result(10)  # while paused: a checkpoint carries it
    run_to(t, 2000)
    reference = losses(rec)
    states = {c.step: c.state for c in rec.of(CheckpointTaken)}
    assert {0, 300, 600, 700, 900, 2000} <= set(states)
    # from 600 the change at 700 is not replayed (it was a user's): compare up to it
    for step, until in ((600, 700), (700, 1500), (900, 1500)):
        r = Recorder()
        again = trainer(small_dataset, spec, r, state=encode(spec, states[step], small_dataset.vocab.chars))
        again.start(running=False)
        run_to(again, until)
        assert losses(r, step) == {s: v for s, v in reference.items() if step <= s < until}, step


def test_a_stop_in_the_middle_of_an_evaluation_resumes_exactly(
    small_dataset: Dataset, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Run B is stopped (as New run or a shutdown stops a worker) in the middle of its evaluation
    at step 1,000 (Adam, so that the optimizer's state counts too). It stops at once, and its
    checkpoint continues exactly as run A, which nobody stopped: the evaluation is done again
    there and the training does not notice."""

    def at_chunk(t: Trainer, n: int) -> None:
        if t is trainers[0] and t.step == 1000 and n == 3:
            t._put(Stop("paused"))  # what Trainer.stop() sends, from the trainer's own thread

    trainers: list[Trainer] = []
    log = spy_on_evaluations(monkeypatch, at_chunk, trainers)
    spec = RunSpec(optimizer="adam", lr=0.01, init="scaled", eval_every=500, max_steps=2000)
    rec_a, rec_b, rec_c = Recorder(), Recorder(), Recorder()
    b = trainer(small_dataset, spec, rec_b)
    trainers.append(b)
    b.start(running=True)
    wait_for(lambda: rec_b.of(StatusChanged) and rec_b.of(StatusChanged)[-1].status is Status.PAUSED)
    wait_for(lambda: not b._thread.is_alive(), what="b's thread to end")
    assert log[-1] == "chunk"  # the evaluation at 1,000 did not end
    assert [e.step for e in rec_b.of(EvalResult)] == [0, 500]
    last = rec_b.of(CheckpointTaken)[-1]
    assert last.step == 1000 and last.state.last_eval_step == 500
    c = trainer(small_dataset, spec, rec_c, state=encode(spec, last.state, small_dataset.vocab.chars))
    trainers.append(c)
    c.start(running=False)
    run_to(c, 2000)
    assert [e.step for e in rec_c.of(EvalResult)] == [1000, 1500, 2000]
    a = trainer(small_dataset, spec, rec_a)
    trainers.append(a)
    a.start(running=True)
    wait_for(lambda: a.status is Status.FINISHED and a.step == 2000)
    assert losses(rec_c, 1000) == losses(rec_a, 1000)
    for x, y in zip(a.weights().parameters(), c.weights().parameters(), strict=True):
        assert torch.equal(x, y)


def test_checkpoint_is_safetensors_with_json_metadata(small_dataset: Dataset) -> None:
    spec = RunSpec(max_steps=100)
    rec = Recorder()
    t = trainer(small_dataset, spec, rec)
    t.start(running=True)
    wait_for(lambda: t.status is Status.FINISHED)
    t.stop()
    data = encode(spec, rec.of(CheckpointTaken)[-1].state, small_dataset.vocab.chars)
    tensors = load(data)  # plain safetensors: no pickle
    assert {"C", "W1", "b1", "W2", "b2", "batch_gen", "noise_gen"} <= set(tensors)
    meta = read_metadata(data)
    assert meta["step"] == 100 and meta["status"] == "finished" and meta["spec"]["max_steps"] == 100
    assert meta["vocab"] == list(small_dataset.vocab.chars)
    ck = decode(data)
    assert ck.spec == spec and ck.state.step == 100
    with pytest.raises(ValueError, match=r"safetensors|checkpoint"):
        decode(data[:50])
    with pytest.raises(ValueError):
        decode(b"not a checkpoint at all")


def test_weights_file_loads_with_safetensors(small_dataset: Dataset) -> None:
    spec = RunSpec()
    model = spec.init_model(small_dataset.vocab.size)
    data = weights_file(spec, small_dataset.vocab.chars, model, 42)
    tensors = load(data)
    assert tensors["W1"].shape == (30, 200) and tensors["b2"].shape == (27,)
    assert torch.equal(tensors["W2"], model.W2)
