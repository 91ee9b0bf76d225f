import itertools
import math

import pytest
from pydantic import TypeAdapter

from backend.training.spec import ConstantSchedule, CosineSchedule, Schedule, StepSchedule


def test_constant_step_and_cosine() -> None:
    assert ConstantSchedule(kind="constant").lr(0.1, 123, 1000) == 0.1
    step = StepSchedule(kind="step", at=100_000, factor=0.1)
    assert step.lr(0.1, 99_999, 200_000) == 0.1
    assert step.lr(0.1, 100_000, 200_000) == pytest.approx(0.01)
    cosine = CosineSchedule(kind="cosine", min_lr=0.001)
    assert cosine.lr(0.1, 0, 1000) == pytest.approx(0.1)
    assert cosine.lr(0.1, 500, 1000) == pytest.approx(0.001 + 0.099 / 2)
    assert cosine.lr(0.1, 1000, 1000) == pytest.approx(0.001)
    assert cosine.lr(0.1, 5000, 1000) == pytest.approx(0.001)  # past max_steps: stays at min_lr
    values = [cosine.lr(0.1, s, 1000) for s in range(1001)]
    assert all(a >= b for a, b in itertools.pairwise(values))
    assert all(math.isfinite(v) for v in values)


def test_public_forms() -> None:
    """The JSON form of each schedule is what the API, the store and checkpoints keep, and reads back."""
    forms = [{"kind": "constant"}, {"kind": "step", "at": 5, "factor": 0.5}, {"kind": "cosine", "min_lr": 0.01}]
    adapter: TypeAdapter[Schedule] = TypeAdapter(Schedule)
    for form in forms:
        assert adapter.validate_python(form).model_dump() == form
