"""Exact full-split losses, cheaply.

The mean loss over a split is  -1/N * sum_i log p(y_i | x_i).  Many examples share a context
(with block_size 3 the 172k training examples have ~5.4k distinct contexts, and the dev split's
contexts are nearly all among them), so we run the network once per distinct context of all the
splits together, and weight each (context, next character) pair's log-probability by how often
it occurs in each split. The same numbers, ~50x less work (REFERENCE §2).

The contexts go through the network in chunks of a bounded amount of work (`chunk_rows`), and
`evaluate` calls `between()` after each chunk but the last: the trainer applies the commands that
came meanwhile there, so that on a big model (block 16, n_hidden 1,024: seconds per evaluation)
a change waits for one chunk, not for the whole pass. The weights must not change in `between`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor

from backend.core.data import Examples
from backend.core.model import MLP, ModelShape

CHUNK = 32_768  # contexts per forward pass at most, to bound the memory of large splits
CHUNK_MACS = 2**27  # multiply-adds of one chunk's forward pass: ~5-40 ms on one core here
MIN_CHUNK = 64


def chunk_rows(shape: ModelShape) -> int:
    """Contexts per chunk for this model: CHUNK_MACS of work (the lecture's model: 11,773
    contexts, its whole block-3 split in one chunk; block 16, n_embd 64, n_hidden 1,024: 124)."""
    per_row = shape.n_in * shape.n_hidden + shape.n_hidden * shape.vocab_size  # (n_in,) -> (H,) -> (V,)
    return max(MIN_CHUNK, min(CHUNK, CHUNK_MACS // per_row))


def _distinct_rows(X: Tensor, base: int) -> tuple[Tensor, Tensor]:
    """torch.unique(X, dim=0, return_inverse=True), via one int64 key per row when it fits
    (a 1-D sort is ~10x faster than unique over rows)."""
    T = X.shape[1]
    if T == 0 or base**T >= 2**62:
        rows, inverse = torch.unique(X, dim=0, return_inverse=True)
        return rows, inverse
    weights = base ** torch.arange(T - 1, -1, -1, dtype=torch.long)  # (T,)
    keys, inverse = torch.unique(X @ weights, return_inverse=True)  # (K,), (N,)
    rows = torch.empty((keys.shape[0], T), dtype=X.dtype)
    rows[inverse] = X  # rows with equal keys are equal
    return rows, inverse


@dataclass(frozen=True)
class PairCounts:
    """One split as its distinct (context, next character) pairs, sorted by context."""

    context: Tensor  # (P,) index into CountedExamples.contexts
    next: Tensor  # (P,) the next character
    count: Tensor  # (P,) float64: how many examples are that pair
    chunk_ends: tuple[int, ...]  # pairs[chunk_ends[c-1]:chunk_ends[c]] have their context in chunk c
    n: int  # examples in the split


@dataclass(frozen=True)
class CountedExamples:
    contexts: Tensor  # (K, block_size): the distinct contexts of all the splits
    splits: tuple[PairCounts, ...]
    chunk: int  # contexts per chunk

    @classmethod
    def from_splits(cls, splits: list[Examples], vocab_size: int, chunk: int | None = None) -> CountedExamples:
        """`chunk`: contexts per forward pass (default CHUNK; see `chunk_rows`)."""
        chunk = chunk or CHUNK
        X = torch.cat([ex.X for ex in splits])
        contexts, inverse = _distinct_rows(X, vocab_size)  # (K, T), (N,)
        bounds = torch.arange(chunk, contexts.shape[0] + chunk, chunk)
        counted, start = [], 0
        for ex in splits:
            ctx = inverse[start : start + len(ex)]
            start += len(ex)
            pairs, counts = torch.unique(ctx * vocab_size + ex.Y, return_counts=True)  # sorted by context
            context = pairs // vocab_size
            ends = tuple(torch.searchsorted(context, bounds).tolist())
            counted.append(PairCounts(context, pairs % vocab_size, counts.double(), ends, len(ex)))
        return cls(contexts, tuple(counted), chunk)


@dataclass(frozen=True)
class Evaluation:
    losses: list[float]  # mean cross-entropy of each split
    grad_sq_norm: float | None  # |G|^2 of the first split's mean-loss gradient, if asked for
    grads: list[Tensor] | None = None  # that gradient (C, W1, b1, W2, b2): gradcos.py reuses it


def exact_losses(model: MLP, data: CountedExamples) -> list[float]:
    """Mean cross-entropy over every example of each split (equal to the naive full forward)."""
    return evaluate(model, data, gradient=False).losses


def evaluate(
    model: MLP, data: CountedExamples, gradient: bool, between: Callable[[], None] | None = None
) -> Evaluation:
    """Each split's exact mean loss, -log p(y | x) = logsumexp(logits(x)) - logits(x)[y] summed
    over its pairs; and, from the same forward pass, the exact gradient of the first split's
    mean loss (for the noise scale): d/dlogits = n(x) softmax(x) - counts(x, .), over n.
    `between()` runs after every chunk but the last."""
    totals = [0.0] * len(data.splits)
    starts = [0] * len(data.splits)
    grads: list[Tensor] | None = None
    chunks = len(data.splits[0].chunk_ends) if data.splits else 0
    for c in range(chunks):
        if c > 0 and between is not None:
            between()
        lo = c * data.chunk
        X = data.contexts[lo : lo + data.chunk]  # (k, block_size)
        h, logits = model.hidden_and_logits(X)  # (k, H), (k, vocab)
        lse = torch.logsumexp(logits, dim=1)  # (k,)
        for s, split in enumerate(data.splits):
            a, b = starts[s], split.chunk_ends[c]
            ctx, nxt, count = split.context[a:b] - lo, split.next[a:b], split.count[a:b]  # (p,)
            nll = lse[ctx] - logits[ctx, nxt]  # (p,)
            totals[s] += float(torch.dot(nll.double(), count))
            if gradient and s == 0:
                count32 = count.float()
                n_ctx = torch.zeros(X.shape[0]).index_add_(0, ctx, count32)  # (k,) examples per context
                dlogits = torch.softmax(logits, dim=1) * n_ctx[:, None]  # (k, vocab)
                dlogits.index_put_((ctx, nxt), -count32, accumulate=True)
                dlogits /= split.n
                part = model.gradients(X, h, dlogits)
                if grads is None:
                    grads = part
                else:
                    for g, p in zip(grads, part, strict=True):
                        g.add_(p)
            starts[s] = b
    losses = [total / split.n for total, split in zip(totals, data.splits, strict=True)]
    g2 = None if grads is None else float(sum(float(g.double().square().sum()) for g in grads))
    return Evaluation(losses, g2, grads)


def naive_loss(model: MLP, ex: Examples) -> float:
    """Every example through the network, as the lecture does. For tests and benchmarks."""
    return float(torch.nn.functional.cross_entropy(model.forward(ex.X), ex.Y))
