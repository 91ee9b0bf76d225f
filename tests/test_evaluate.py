import pytest
import torch

from backend.data import Dataset
from backend.evaluate import CountedExamples, _distinct_rows, exact_loss, naive_loss
from backend.model import MLP, ModelShape


@pytest.mark.parametrize("block_size", [1, 3, 8, 16])
def test_exact_loss_equals_naive(default_dataset: Dataset, block_size: int) -> None:
    splits = default_dataset.splits(block_size)
    m = MLP.lecture_init(ModelShape(27, block_size, 10, 64))
    for p in m.parameters():
        p.mul_(0.3)
    for ex in (splits.train, splits.dev):
        counted = CountedExamples.from_examples(ex, 27)
        assert counted.pair_count.sum() == len(ex)
        assert counted.contexts.shape[0] < len(ex)
        assert exact_loss(m, counted) == pytest.approx(naive_loss(m, ex), rel=1e-5)


def test_exact_loss_across_chunks(monkeypatch: pytest.MonkeyPatch, small_dataset: Dataset) -> None:
    import backend.evaluate as ev

    monkeypatch.setattr(ev, "CHUNK", 100)  # many chunks, some pairs at the edges
    ex = small_dataset.splits(3).train
    m = MLP.lecture_init(ModelShape(27))
    counted = ev.CountedExamples.from_examples(ex, 27)
    assert len(counted.chunk_ends) > 5
    assert exact_loss(m, counted) == pytest.approx(naive_loss(m, ex), rel=1e-5)


def test_distinct_rows_fallback_agrees() -> None:
    X = torch.randint(0, 5, (1000, 4))
    rows, inverse = _distinct_rows(X, base=5)
    assert torch.equal(rows[inverse], X)
    ref_rows, _ = torch.unique(X, dim=0, return_inverse=True)
    assert torch.equal(rows, ref_rows)
    big_rows, big_inverse = _distinct_rows(X, base=2**40)  # key would overflow: falls back
    assert torch.equal(big_rows[big_inverse], X)
