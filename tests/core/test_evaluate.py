import pytest
import torch

from backend.core.data import Dataset
from backend.core.evaluate import (
    CHUNK,
    CHUNK_MACS,
    MIN_CHUNK,
    CountedExamples,
    _distinct_rows,
    chunk_rows,
    evaluate,
    exact_losses,
    naive_loss,
)
from backend.core.model import MLP, ModelShape


@pytest.mark.parametrize("block_size", [1, 3, 8, 16])
def test_exact_loss_equals_naive(default_dataset: Dataset, block_size: int) -> None:
    splits = default_dataset.splits(block_size)
    m = MLP.lecture_init(ModelShape(27, block_size, 10, 64))
    for p in m.parameters():
        p.mul_(0.3)
    counted = CountedExamples.from_splits([splits.train, splits.dev], 27)
    assert counted.contexts.shape[0] < len(splits.train)
    for ex, pairs, loss in zip((splits.train, splits.dev), counted.splits, exact_losses(m, counted), strict=True):
        assert pairs.count.sum() == len(ex) == pairs.n
        assert loss == pytest.approx(naive_loss(m, ex), rel=1e-5)


def test_exact_loss_across_chunks(monkeypatch: pytest.MonkeyPatch, small_dataset: Dataset) -> None:
    import backend.core.evaluate as ev

    monkeypatch.setattr(ev, "CHUNK", 100)  # many chunks, some pairs at the edges
    ex = small_dataset.splits(3).train
    m = MLP.lecture_init(ModelShape(27))
    dev = small_dataset.splits(3).dev
    counted = ev.CountedExamples.from_splits([ex, dev], 27)
    assert len(counted.splits[0].chunk_ends) > 5
    train_loss, dev_loss = exact_losses(m, counted)
    assert train_loss == pytest.approx(naive_loss(m, ex), rel=1e-5)
    assert dev_loss == pytest.approx(naive_loss(m, dev), rel=1e-5)


def test_distinct_rows_fallback_agrees() -> None:
    X = torch.randint(0, 5, (1000, 4))
    rows, inverse = _distinct_rows(X, base=5)
    assert torch.equal(rows[inverse], X)
    ref_rows, _ = torch.unique(X, dim=0, return_inverse=True)
    assert torch.equal(rows, ref_rows)
    big_rows, big_inverse = _distinct_rows(X, base=2**40)  # key would overflow: falls back
    assert torch.equal(big_rows[big_inverse], X)


def test_between_comes_after_every_chunk_but_the_last(small_dataset: Dataset) -> None:
    """The trainer applies commands in `between`: one chunk's work apart, the numbers the same."""
    splits = small_dataset.splits(3)
    m = MLP.lecture_init(ModelShape(27, 3, 10, 40))
    whole = evaluate(m, CountedExamples.from_splits([splits.train, splits.dev], 27), gradient=True)
    chunked = CountedExamples.from_splits([splits.train, splits.dev], 27, chunk=100)
    chunks = len(chunked.splits[0].chunk_ends)
    assert chunks == -(-chunked.contexts.shape[0] // 100) > 10
    calls: list[int] = []
    ev = evaluate(m, chunked, gradient=True, between=lambda: calls.append(1))
    assert len(calls) == chunks - 1
    assert ev.losses == pytest.approx(whole.losses, rel=1e-6)
    assert ev.grad_sq_norm == pytest.approx(whole.grad_sq_norm, rel=1e-5)


def test_chunks_are_sized_to_the_model() -> None:
    """A bounded amount of work per chunk: the lecture's whole block-3 split (~6k contexts) in one
    chunk, a block-16, n_hidden-1,024 model in chunks of ~124 contexts."""
    lecture, big = ModelShape(27), ModelShape(27, 16, 64, 1024)
    assert chunk_rows(lecture) > 10_000
    assert chunk_rows(big) == CHUNK_MACS // (16 * 64 * 1024 + 1024 * 27)
    for shape in (lecture, big, ModelShape(27, 16, 64, 8), ModelShape(64, 16, 64, 1024)):
        rows = chunk_rows(shape)
        per_row = shape.n_in * shape.n_hidden + shape.n_hidden * shape.vocab_size
        assert MIN_CHUNK <= rows <= CHUNK and (rows * per_row <= CHUNK_MACS or rows == MIN_CHUNK)
