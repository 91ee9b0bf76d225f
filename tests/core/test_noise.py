import math

import pytest
import torch
import torch.nn.functional as F

from backend.core.data import Dataset
from backend.core.evaluate import CountedExamples, evaluate
from backend.core.model import MLP, ModelShape
from backend.core.noise import batch_sq_norms, estimate, noise_scale
from tests.core.test_model import lecture_forward


def test_estimator_on_a_problem_with_known_noise() -> None:
    """Per-example gradients g_i = G + e_i over a finite population, with E[e] = 0 exactly and
    tr(Sigma) known: the noise scale is tr(Sigma) / |G|^2 by construction."""
    torch.manual_seed(0)
    N, d = 20_000, 50
    G = torch.full((d,), 0.1, dtype=torch.float64)  # |G|^2 = 0.5
    noise = torch.randn(N, d, dtype=torch.float64) * 0.4
    noise -= noise.mean(0)
    per_example = G + noise  # (N, d)
    trace = float(noise.square().sum(1).mean())  # tr(Sigma) of the population, ~ d * 0.16 = 8
    true_b_noise = trace / float(G.square().sum())  # ~16
    estimates = []
    for b_small, b_big in ((4, 256), (16, 1024), (32, N)):
        small = [per_example[torch.randint(0, N, (b_small,))].mean(0).square().sum() for _ in range(400)]
        big = [per_example[torch.randint(0, N, (b_big,))].mean(0).square().sum() for _ in range(40)]
        est, tr, g2 = noise_scale(b_small, float(torch.stack(small).mean()), b_big, float(torch.stack(big).mean()))
        estimates.append(est)
        assert g2 == pytest.approx(0.5, rel=0.15)
        assert tr == pytest.approx(trace, rel=0.15)
        assert est == pytest.approx(true_b_noise, rel=0.2)
    assert 10 < true_b_noise < 25


def test_noise_scale_edge_cases() -> None:
    assert noise_scale(32, 1.0, 1000, 1.0)[0] == 0.0  # no noise: the norm does not depend on the batch
    b_noise, _, g2 = noise_scale(32, 1.0, 1000, 0.001)  # the estimate of |G|^2 came out negative
    assert g2 < 0 and math.isinf(b_noise)


def test_batched_norms_equal_one_by_one(small_dataset: Dataset) -> None:
    ex = small_dataset.splits(3).train
    m = MLP.lecture_init(ModelShape(27, 3, 10, 40))
    for p in m.parameters():
        p.mul_(0.2)
    idx = torch.randint(0, len(ex), (6, 32), generator=torch.Generator().manual_seed(1))
    batched = batch_sq_norms(m, ex.X, ex.Y, idx)
    for k in range(6):
        ref = [p.clone().requires_grad_() for p in m.parameters()]
        F.cross_entropy(lecture_forward(ref, ex.X[idx[k]]), ex.Y[idx[k]]).backward()
        expected = sum(float(p.grad.square().sum()) for p in ref if p.grad is not None)
        assert float(batched[k]) == pytest.approx(expected, rel=1e-4)


def test_full_gradient_from_the_evaluation_pass(small_dataset: Dataset) -> None:
    splits = small_dataset.splits(3)
    m = MLP.lecture_init(ModelShape(27, 3, 10, 40))
    for p in m.parameters():
        p.mul_(0.2)
    ev = evaluate(m, CountedExamples.from_splits([splits.train, splits.dev], 27), gradient=True)
    ref = [p.clone().requires_grad_() for p in m.parameters()]
    F.cross_entropy(lecture_forward(ref, splits.train.X), splits.train.Y).backward()
    expected = sum(float(p.grad.double().square().sum()) for p in ref if p.grad is not None)
    assert ev.grad_sq_norm == pytest.approx(expected, rel=1e-4)


def test_estimate_in_pieces_is_the_estimate_at_once(small_dataset: Dataset) -> None:
    """The small batches a few at a time (the trainer takes commands between the pieces): the same
    draws from the generator, the same estimate."""
    ex = small_dataset.splits(3).train
    m = MLP.lecture_init(ModelShape(27, 3, 10, 40))
    g2 = evaluate(m, CountedExamples.from_splits([ex], 27), gradient=True).grad_sq_norm
    assert g2 is not None
    at_once = estimate(m, ex.X, ex.Y, g2, 32, 16, torch.Generator().manual_seed(5))
    calls: list[int] = []
    gen = torch.Generator().manual_seed(5)
    pieces = estimate(m, ex.X, ex.Y, g2, 32, 16, gen, per_piece=3, between=lambda: calls.append(1))
    assert len(calls) == 5  # 16 batches, 3 at a time: 6 pieces
    assert pieces == pytest.approx(at_once, rel=1e-5) and math.isfinite(at_once) and at_once > 0
    assert torch.equal(gen.get_state(), _after_draws(16, 32, len(ex), 5))


def _after_draws(draws: int, batch: int, n: int, seed: int) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    torch.randint(0, n, (draws, batch), generator=gen)
    return gen.get_state()
