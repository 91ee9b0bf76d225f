import itertools
import math

import pytest

from backend.core.schedule import Schedule


def test_constant_step_and_cosine() -> None:
    assert Schedule().lr(0.1, 123, 1000) == 0.1
    step = Schedule("step", at=100_000, factor=0.1)
    assert step.lr(0.1, 99_999, 200_000) == 0.1
    assert step.lr(0.1, 100_000, 200_000) == pytest.approx(0.01)
    cosine = Schedule("cosine", min_lr=0.001)
    assert cosine.lr(0.1, 0, 1000) == pytest.approx(0.1)
    assert cosine.lr(0.1, 500, 1000) == pytest.approx(0.001 + 0.099 / 2)
    assert cosine.lr(0.1, 1000, 1000) == pytest.approx(0.001)
    assert cosine.lr(0.1, 5000, 1000) == pytest.approx(0.001)  # past max_steps: stays at min_lr
    values = [cosine.lr(0.1, s, 1000) for s in range(1001)]
    assert all(a >= b for a, b in itertools.pairwise(values))
    assert all(math.isfinite(v) for v in values)


def test_public_forms() -> None:
    assert Schedule().public() == {"kind": "constant"}
    assert Schedule("step", at=5, factor=0.5).public() == {"kind": "step", "at": 5, "factor": 0.5}
    assert Schedule("cosine", min_lr=0.01).public() == {"kind": "cosine", "min_lr": 0.01}
