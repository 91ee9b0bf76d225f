"""Target 2: the full train + dev evaluation, exact and cheap, against the lecture's way
(every example through the network: `F.cross_entropy(model(Xtr), Ytr)` with torch.tanh)."""

from __future__ import annotations

import time

import torch
import torch.nn.functional as F

from backend.config import DEFAULT_DATA
from backend.core.data import Dataset, Examples
from backend.core.evaluate import CountedExamples, exact_losses
from backend.core.model import MLP, ModelShape
from bench.stats import Figure


def lecture_loss(m: MLP, ex: Examples) -> float:
    emb = m.C[ex.X]
    h = torch.tanh(emb.view(emb.shape[0], -1) @ m.W1 + m.b1)
    logits = h @ m.W2 + m.b2
    return float(F.cross_entropy(logits, ex.Y))


def compare(block_size: int, pairs: int, threads: int = 1) -> dict[str, object]:
    before = torch.get_num_threads()
    torch.set_num_threads(threads)  # the server evaluates in its trainer thread, with one thread
    try:
        return _compare(block_size, pairs)
    finally:
        torch.set_num_threads(before)


def _compare(block_size: int, pairs: int) -> dict[str, object]:
    ds = Dataset.from_file(DEFAULT_DATA)
    splits = ds.splits(block_size)
    model = MLP.lecture_init(ModelShape(ds.vocab.size, block_size))
    for p in model.parameters():  # trained-looking weights: the timing does not care, exactness might
        p.mul_(0.3)
    t0 = time.perf_counter()
    counted = CountedExamples.from_splits([splits.train, splits.dev], ds.vocab.size)
    prep_ms = (time.perf_counter() - t0) * 1000
    naive_ms, exact_ms, rel = [], [], []
    for _ in range(pairs):
        t0 = time.perf_counter()
        naive = [lecture_loss(model, ex) for ex in (splits.train, splits.dev)]
        naive_ms.append((time.perf_counter() - t0) * 1000)
        t0 = time.perf_counter()
        exact = exact_losses(model, counted)
        exact_ms.append((time.perf_counter() - t0) * 1000)
        rel.append(max(abs(a - b) / abs(b) for a, b in zip(exact, naive, strict=True)))
    a, b = Figure(naive_ms), Figure(exact_ms)
    speedup = Figure([x / y for x, y in zip(naive_ms, exact_ms, strict=True)])
    contexts = counted.contexts.shape[0]
    print(
        f"  block_size {block_size}: naive {a.fmt(1, ' ms')} | exact {b.fmt(1, ' ms')} | {speedup.fmt(1)}x faster"
        f" | max rel. diff {max(rel):.1e} | {contexts:,} distinct contexts"
        f" for {len(splits.train):,} + {len(splits.dev):,} examples (built once in {prep_ms:.0f} ms)"
    )
    return {
        "naive_ms": a.as_dict(),
        "exact_ms": b.as_dict(),
        "speedup": speedup.as_dict(),
        "max_relative_difference": max(rel),
        "distinct_contexts": contexts,
        "examples": [len(splits.train), len(splits.dev)],
        "prepare_ms": prep_ms,
    }
