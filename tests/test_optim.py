import pytest
import torch
import torch.nn.functional as F

from backend.core.data import Dataset
from backend.core.model import MLP, ModelShape
from backend.core.optim import Optimizer, OptimizerSpec
from tests.test_model import lecture_forward


@pytest.mark.parametrize(("kind", "lr"), [("momentum", 0.05), ("adam", 0.01)])
def test_matches_autograd_with_torch_optim(small_dataset: Dataset, kind: str, lr: float) -> None:
    ex = small_dataset.splits(3).train
    ours = MLP.scaled_init(ModelShape(27))
    ref = [p.clone().requires_grad_() for p in ours.parameters()]
    opt = Optimizer(ours, OptimizerSpec(kind))  # type: ignore[arg-type]
    ref_opt = torch.optim.SGD(ref, lr=lr, momentum=0.9) if kind == "momentum" else torch.optim.Adam(ref, lr=lr)
    g = torch.Generator().manual_seed(0)
    for _ in range(5):
        idx = torch.randint(0, len(ex), (32,), generator=g)
        loss = opt(ex.X, ex.Y, idx, lr)
        ref_opt.zero_grad()
        ref_loss = F.cross_entropy(lecture_forward(ref, ex.X[idx]), ex.Y[idx])
        ref_loss.backward()
        ref_opt.step()
        assert float(loss) == pytest.approx(float(ref_loss.detach()), rel=1e-5)
    for mine, theirs in zip(ours.parameters(), ref, strict=True):
        assert torch.allclose(mine, theirs.detach(), atol=1e-5)


def test_state_copies_do_not_share_tensors(small_dataset: Dataset) -> None:
    ex = small_dataset.splits(3).train
    m = MLP.scaled_init(ModelShape(27))
    opt = Optimizer(m, OptimizerSpec("adam"))
    idx = torch.randint(0, len(ex), (32,))
    opt(ex.X, ex.Y, idx, 0.01)
    saved = opt.state()
    assert saved is not None
    before = saved["state"][0]["exp_avg"].clone()
    opt.load_state(saved)
    opt(ex.X, ex.Y, idx, 0.01)  # moves the live state on
    assert torch.equal(saved["state"][0]["exp_avg"], before)  # the checkpoint did not move
    assert Optimizer(m, OptimizerSpec("sgd")).state() is None
