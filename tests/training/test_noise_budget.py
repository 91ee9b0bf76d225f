"""Which evaluations bring a noise-scale estimate (backend/training/noise_budget.py), from given
CPU times: deterministic."""

from __future__ import annotations

import pytest

from backend.training.noise_budget import CEILING, EVERY, SHARE, NoiseBudget


def test_first_and_last_evaluations_have_one() -> None:
    b = NoiseBudget()
    assert b.due(0.0, last=False)
    b.estimated(cost=10.0, now=1.0)  # expensive
    assert not b.due(1.1, last=False)
    assert b.due(1.1, last=True)


def test_within_the_share_any_evaluation_may_have_one() -> None:
    b = NoiseBudget()
    b.estimated(cost=0.01, now=1.0)
    assert not b.due(1.0 + 0.99 * 0.01 / SHARE, last=False)
    assert b.due(1.0 + 1.01 * 0.01 / SHARE, last=False)


def test_every_third_evaluation_while_under_the_ceiling() -> None:
    b = NoiseBudget()
    b.estimated(cost=0.1, now=0.0)
    spent = 1.01 * 0.1 / CEILING  # enough for the ceiling, not for the share
    for _ in range(EVERY - 1):
        assert not b.due(spent, last=False)
        b.went_without(0.05)
    assert b.due(spent, last=False)
    assert not b.due(0.99 * 0.1 / CEILING, last=False)  # over the ceiling: it waits


def test_extra_is_what_the_gradient_added_to_the_pass() -> None:
    b = NoiseBudget()
    assert b.extra(0.3) == 0.3  # no plain evaluation timed yet: all of it
    b.went_without(0.1)
    assert b.extra(0.3) == pytest.approx(0.2)
    assert b.extra(0.05) == 0.0


def simulate(evaluations: int, train_cpu: float, eval_cpu: float, cost: float) -> list[bool]:
    """`evaluations` evaluations, `train_cpu` CPU seconds of training before each, a plain pass of
    `eval_cpu` and an estimate adding `cost`: which have an estimate."""
    b, now, had = NoiseBudget(), 0.0, []
    for i in range(evaluations):
        now += train_cpu
        due = b.due(now, last=i == evaluations - 1)
        had.append(due)
        if due:
            now += eval_cpu + cost
            b.estimated(b.extra(eval_cpu + cost - 0.5 * cost) + 0.5 * cost, now)
        else:
            now += eval_cpu
            b.went_without(eval_cpu)
    return had


@pytest.mark.parametrize(
    ("train_cpu", "eval_cpu", "cost"),
    [
        (0.33, 0.005, 0.015),  # the lecture's run, idle machine: the share alone gives one every time
        (0.33, 0.005, 0.1),  # an estimate worth 300 steps: every third, by the rule
        (1.0, 0.02, 0.1),  # Adam's slower steps
    ],
)
def test_at_least_one_in_every_three_evaluations(train_cpu: float, eval_cpu: float, cost: float) -> None:
    had = simulate(30, train_cpu, eval_cpu, cost)
    assert all(any(had[i : i + EVERY]) for i in range(len(had) - EVERY + 1)), had


def test_a_big_model_has_them_regularly_under_the_ceiling() -> None:
    """Block 16, n_hidden 1,024, evaluating every 1,000 steps: the estimate's exact gradient over
    ~55k distinct contexts is worth ~half the training between two evaluations. Every third would
    take 30% of the time: every fourth, within the ceiling."""
    train_cpu, eval_cpu, cost = 20.0, 5.0, 12.0
    had = simulate(40, train_cpu, eval_cpu, cost)
    assert all(any(had[i : i + EVERY + 1]) for i in range(len(had) - EVERY)), had
    total = 40 * (train_cpu + eval_cpu) + sum(had) * cost
    assert sum(had) * cost <= CEILING * total


def test_evaluations_every_step_keep_the_estimates_under_the_ceiling() -> None:
    """Evaluations a step apart cannot each afford an estimate worth three of them."""
    train_cpu, eval_cpu, cost = 0.0003, 0.004, 0.012
    had = simulate(300, train_cpu, eval_cpu, cost)
    total = 300 * (train_cpu + eval_cpu) + sum(had) * cost
    assert sum(had) * cost <= CEILING * total
    assert 3 <= sum(had) <= 40
