import math

import pytest
import torch
import torch.nn.functional as F

from backend.core.data import Dataset
from backend.core.model import MLP, ModelShape, SGDStep, tanh


def lecture_forward(params: list[torch.Tensor], X: torch.Tensor) -> torch.Tensor:
    """The lecture's forward pass, verbatim."""
    C, W1, b1, W2, b2 = params
    emb = C[X]
    h = torch.tanh(emb.view(emb.shape[0], -1) @ W1 + b1)
    return h @ W2 + b2


def test_lecture_shape_and_init() -> None:
    shape = ModelShape(27)
    assert shape.n_params == 11_897
    m = MLP.lecture_init(shape)
    assert sum(p.numel() for p in m.parameters()) == 11_897
    g = torch.Generator().manual_seed(2147483647)
    C = torch.randn((27, 10), generator=g)
    W1 = torch.randn((30, 200), generator=g)
    assert torch.equal(m.C, C) and torch.equal(m.W1, W1)


def test_init_loss_equals_plain_pytorch(small_dataset: Dataset) -> None:
    ex = small_dataset.splits(3).train
    m = MLP.lecture_init(ModelShape(27))
    expected = F.cross_entropy(lecture_forward(m.parameters(), ex.X), ex.Y)
    ours = F.cross_entropy(m.forward(ex.X), ex.Y)
    assert float(expected) > 15  # the lecture's init: far above ln 27
    assert float(ours) == pytest.approx(float(expected), rel=1e-5)


def test_tanh_matches_torch() -> None:
    x = torch.linspace(-30, 30, 100_001)
    assert torch.allclose(tanh(x), torch.tanh(x), atol=3e-7, rtol=0)


@pytest.mark.parametrize(
    ("B", "block_size", "n_embd", "via_sigmoid"),
    [(32, 3, 10, True), (1, 3, 10, True), (7, 5, 4, True), (300, 1, 2, True), (32, 3, 10, False)],
)
def test_sgd_step_equals_autograd(
    small_dataset: Dataset, B: int, block_size: int, n_embd: int, via_sigmoid: bool
) -> None:
    ex = small_dataset.splits(block_size).train
    shape = ModelShape(27, block_size, n_embd, 50)
    ours = MLP.lecture_init(shape, seed=1)
    for p in ours.parameters():  # a trained-looking scale, away from tanh saturation
        p.mul_(0.2)
    ref = [p.clone().requires_grad_() for p in ours.parameters()]
    step = SGDStep(ours, tanh_via_sigmoid=via_sigmoid)
    g = torch.Generator().manual_seed(0)
    for i in range(3):  # several steps: the buffers are reused
        idx = torch.randint(0, len(ex), (B,), generator=g)
        loss = step(ex.X, ex.Y, idx, lr=0.1)
        ref_loss = F.cross_entropy(lecture_forward(ref, ex.X[idx]), ex.Y[idx])
        for p in ref:
            p.grad = None
        ref_loss.backward()
        with torch.no_grad():
            for p in ref:
                p.add_(p.grad, alpha=-0.1)
        assert float(loss) == pytest.approx(float(ref_loss.detach()), rel=1e-5), i
        for mine, theirs in zip(ours.parameters(), ref, strict=True):
            assert torch.allclose(mine, theirs, atol=1e-5), i


def test_batch_size_change_reallocates(small_dataset: Dataset) -> None:
    ex = small_dataset.splits(3).train
    m = MLP.lecture_init(ModelShape(27))
    step = SGDStep(m)
    for B in (32, 5, 32, 4096):
        loss = step(ex.X, ex.Y, torch.randint(0, len(ex), (B,)), 0.01)
        assert math.isfinite(float(loss))
        assert step.X.shape == (B, 3)


def test_copy_keeps_views_valid() -> None:
    m = MLP.lecture_init(ModelShape(27))
    step = SGDStep(m)
    other = MLP.lecture_init(ModelShape(27), seed=5)
    m.copy_(other)
    assert torch.equal(step._W1t, other.W1.t())
    assert torch.equal(m.clone().W2, other.W2)


def test_scaled_init_starts_near_uniform(default_dataset: Dataset) -> None:
    ex = default_dataset.splits(3).train
    m = MLP.scaled_init(ModelShape(27))
    idx = torch.randint(0, len(ex), (32,), generator=torch.Generator().manual_seed(0))
    first = float(SGDStep(m)(ex.X, ex.Y, idx, 0.1))
    assert abs(first - math.log(27)) < 0.2
    lecture = MLP.lecture_init(ModelShape(27))
    assert float(F.cross_entropy(lecture.forward(ex.X[idx]), ex.Y[idx])) > 15


def test_gradients_equal_autograd(small_dataset: Dataset) -> None:
    ex = small_dataset.splits(3).train
    m = MLP.lecture_init(ModelShape(27, 3, 10, 40))
    for p in m.parameters():
        p.mul_(0.2)
    X, Y = ex.X[:500], ex.Y[:500]
    h, logits = m.hidden_and_logits(X)
    dlogits = torch.softmax(logits, 1)
    dlogits[torch.arange(500), Y] -= 1
    dlogits /= 500
    ours = m.gradients(X, h, dlogits)
    ref = [p.clone().requires_grad_() for p in m.parameters()]
    F.cross_entropy(lecture_forward(ref, X), Y).backward()
    for mine, theirs in zip(ours, ref, strict=True):
        assert theirs.grad is not None
        assert torch.allclose(mine, theirs.grad, atol=1e-6)


def test_add_gradients_overwrites_buffers(small_dataset: Dataset) -> None:
    """An update hook gets the gradients of the mean loss in its own buffers, NaN held there
    before or not, and the parameters move only as the hook moves them."""
    ex = small_dataset.splits(3).train
    m = MLP.lecture_init(ModelShape(27, 3, 10, 40))
    for p in m.parameters():
        p.mul_(0.2)
    before = m.clone()
    buffers = [torch.full_like(t, float("nan")) for t in m.tensors()]
    step = SGDStep(m, update=lambda s, lr: s.add_gradients(buffers, 1.0, accumulate=False))
    idx = torch.arange(0, 600, 7)
    step(ex.X, ex.Y, idx, 0.1)
    ref = [p.clone().requires_grad_() for p in before.parameters()]
    F.cross_entropy(lecture_forward(ref, ex.X[idx]), ex.Y[idx]).backward()
    gC, gW1, gb1, gW2b = buffers
    for mine, theirs in zip([gC, gW1, gb1, gW2b[:-1], gW2b[-1]], ref, strict=True):
        assert theirs.grad is not None
        assert torch.allclose(mine, theirs.grad, atol=1e-6)
    for p, q in zip(m.parameters(), before.parameters(), strict=True):
        assert torch.equal(p, q)
