"""Training quality at the lecture's settings, on the built-in data."""

import pytest

from backend.core.data import Dataset
from backend.training.protocol import EvalResult, Status
from backend.training.spec import RunSpec
from backend.training.trainer import Trainer
from tests.conftest import Recorder, wait_for


@pytest.mark.slow
def test_20k_steps_reach_dev_loss_below_2_6(default_dataset: Dataset) -> None:
    rec = Recorder()
    spec = RunSpec(lr=0.1, batch_size=32, eval_every=5000, max_steps=20_000)
    t = Trainer(spec, default_dataset.splits(3), default_dataset.vocab.chars, rec)
    t.start(running=True)
    wait_for(lambda: t.status is Status.FINISHED, timeout=300, what="20,000 steps")
    evals = rec.of(EvalResult)
    assert [e.step for e in evals] == [0, 5000, 10_000, 15_000, 20_000]
    assert evals[0].dev_loss > 15  # the hockey stick's start
    assert evals[-1].dev_loss < 2.6, evals[-1]
    assert evals[-1].train_loss < 2.6
    t.stop()
