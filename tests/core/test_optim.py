"""The fused optimizers (backend/core/optim.py) against autograd + torch.optim, and their state."""

from collections.abc import Iterator

import pytest
import torch
import torch.nn.functional as F

from backend.core.data import Dataset, Examples
from backend.core.model import MLP, ModelShape
from backend.core.optim import Optimizer, OptimizerKind, OptimizerSpec
from tests.core.test_model import lecture_forward

CASES = [("momentum", 0.9, 0.05), ("momentum", 0.0, 0.1), ("adam", 0.9, 0.01)]
STATEFUL = [c for c in CASES if c[:2] != ("momentum", 0.0)]  # momentum 0 is plain SGD: no state


def torch_optim(kind: OptimizerKind, momentum: float, params: list[torch.Tensor]) -> torch.optim.Optimizer:
    """torch.optim's own, with its defaults (dampening 0, no Nesterov; Adam's betas and eps)."""
    if kind == "momentum":
        return torch.optim.SGD(params, lr=0.1, momentum=momentum)
    return torch.optim.Adam(params, lr=0.1)


def minibatches(ex: Examples, steps: int, lr: float) -> Iterator[tuple[torch.Tensor, float]]:
    """(rows, lr) per step, as the trainer makes them: the rate changes between steps (a step
    decay and, every seventh step, a user's nudge) and so does the batch size (32, then 7)."""
    g = torch.Generator().manual_seed(0)
    for i in range(steps):
        B = 32 if i < steps * 3 // 5 else 7
        rate = lr * (0.3 if i >= steps // 2 else 1.0) * (1.5 if i % 7 == 3 else 1.0)
        yield torch.randint(0, len(ex), (B,), generator=g), rate


@pytest.mark.parametrize(("kind", "momentum", "lr"), CASES)
def test_trajectory_matches_autograd_with_torch_optim(
    small_dataset: Dataset, kind: OptimizerKind, momentum: float, lr: float
) -> None:
    """200 steps side by side: every loss and, every 20 steps, every weight agree to rtol 1e-4.

    They cannot agree bit for bit: the fused step sums in another order, folds 1/B into the step
    size and computes tanh as 2 * sigmoid(2x) - 1, each ~1e-7 relative a step. From the scaled
    init that stays put: after 200 steps the losses differ by <= ~3e-7 relative and the weights
    by <= ~6e-7 absolute (weights are O(0.1-1)); atol covers the weights that pass near zero.
    (From the lecture's init, tanh saturates and momentum at lr 0.05 amplifies the same rounding
    into different trajectories within 200 steps, as it would two torch runs summing differently.)"""
    ex = small_dataset.splits(3).train
    ours = MLP.scaled_init(ModelShape(27))
    ref = [p.clone().requires_grad_() for p in ours.parameters()]
    opt = Optimizer(ours, OptimizerSpec(kind, momentum))
    ref_opt = torch_optim(kind, momentum, ref)
    for i, (idx, rate) in enumerate(minibatches(ex, 200, lr)):
        loss = opt(ex.X, ex.Y, idx, rate)
        for group in ref_opt.param_groups:
            group["lr"] = rate
        ref_opt.zero_grad()
        ref_loss = F.cross_entropy(lecture_forward(ref, ex.X[idx]), ex.Y[idx])
        ref_loss.backward()
        ref_opt.step()
        assert float(loss) == pytest.approx(float(ref_loss.detach()), rel=1e-4), i
        if i % 20 == 19:
            for mine, theirs in zip(ours.parameters(), ref, strict=True):
                torch.testing.assert_close(mine, theirs.detach(), rtol=1e-4, atol=1e-5, msg=f"step {i}")


def run(opt: Optimizer, ex: Examples, batches: list[tuple[torch.Tensor, float]]) -> list[float]:
    return [float(opt(ex.X, ex.Y, idx, rate)) for idx, rate in batches]


@pytest.mark.parametrize(("kind", "momentum", "lr"), STATEFUL)
def test_state_round_trip_continues_bit_for_bit(
    small_dataset: Dataset, kind: OptimizerKind, momentum: float, lr: float
) -> None:
    """A copy of the state taken mid-run, loaded into a fresh optimizer (on a copy of the weights
    at that step) or back into the original after it moved on, continues exactly as the original."""
    ex = small_dataset.splits(3).train
    batches = list(minibatches(ex, 80, lr))
    spec = OptimizerSpec(kind, momentum)
    model = MLP.scaled_init(ModelShape(27))
    opt = Optimizer(model, spec)
    run(opt, ex, batches[:30])
    saved, weights = opt.state(), model.clone()
    assert saved is not None
    frozen = {i: {k: v.clone() for k, v in s.items()} for i, s in saved["state"].items()}
    expected = run(opt, ex, batches[30:])
    final = model.clone()

    fresh_model = weights.clone()
    fresh = Optimizer(fresh_model, spec)
    fresh.load_state(saved)
    assert run(fresh, ex, batches[30:]) == expected
    for x, y in zip(fresh_model.parameters(), final.parameters(), strict=True):
        assert torch.equal(x, y)

    model.copy_(weights)  # rewind the original too
    opt.load_state(saved)
    assert run(opt, ex, batches[30:]) == expected
    for x, y in zip(model.parameters(), final.parameters(), strict=True):
        assert torch.equal(x, y)

    # the copy shared no tensor with the optimizers that loaded it and moved on; it is shaped
    # as torch.optim's state_dict over (C, W1, b1, W2, b2)
    assert set(saved["state"]) == set(range(5))
    for i, p in enumerate(model.parameters()):
        for name, value in saved["state"][i].items():
            assert torch.equal(value, frozen[i][name]), (i, name)
            if name != "step":
                assert value.shape == p.shape
    if kind == "adam":
        assert float(saved["state"][0]["step"]) == 30


@pytest.mark.parametrize(("kind", "momentum", "lr"), CASES)
def test_continues_from_a_torch_optim_state_dict(
    small_dataset: Dataset, kind: OptimizerKind, momentum: float, lr: float
) -> None:
    """Checkpoints written when momentum and Adam were torch.optim's hold its state_dict: loaded,
    they continue as torch.optim would have (to the tolerance of the trajectory test)."""
    ex = small_dataset.splits(3).train
    batches = list(minibatches(ex, 60, lr))
    ref = [p.clone().requires_grad_() for p in MLP.scaled_init(ModelShape(27)).parameters()]
    ref_opt = torch_optim(kind, momentum, ref)

    def ref_step(idx: torch.Tensor, rate: float) -> float:
        for group in ref_opt.param_groups:
            group["lr"] = rate
        ref_opt.zero_grad()
        loss = F.cross_entropy(lecture_forward(ref, ex.X[idx]), ex.Y[idx])
        loss.backward()
        ref_opt.step()
        return float(loss.detach())

    for idx, rate in batches[:30]:
        ref_step(idx, rate)
    shape = ModelShape(27)
    ours = MLP(shape, *(p.detach().clone() for p in ref))
    opt = Optimizer(ours, OptimizerSpec(kind, momentum))
    opt.load_state(ref_opt.state_dict())
    for idx, rate in batches[30:]:
        assert float(opt(ex.X, ex.Y, idx, rate)) == pytest.approx(ref_step(idx, rate), rel=1e-4)
    for mine, theirs in zip(ours.parameters(), ref, strict=True):
        torch.testing.assert_close(mine, theirs.detach(), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("spec", [OptimizerSpec("sgd"), OptimizerSpec("momentum", 0.0)])
def test_plain_sgd_has_no_state(small_dataset: Dataset, spec: OptimizerSpec) -> None:
    ex = small_dataset.splits(3).train
    opt = Optimizer(MLP.scaled_init(ModelShape(27)), spec)
    opt.load_state(None)
    opt(ex.X, ex.Y, torch.arange(32), 0.1)
    assert opt.state() is None
