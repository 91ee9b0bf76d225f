"""The gradient noise scale, B_noise = tr(Sigma) / |G|^2 (McCandlish et al. 2018, "An Empirical
Model of Large-Batch Training", appendix A.1): batches much larger than B_noise buy little per
example; much smaller ones waste steps on noise.

With the gradient of a batch of B examples drawn with replacement, E|G_B|^2 = |G|^2 + tr(Sigma)/B.
From two batch sizes B_small < B_big, the unbiased estimators are

    |G|^2     ~ (B_big |G_big|^2 - B_small |G_small|^2) / (B_big - B_small)
    tr(Sigma) ~ (|G_small|^2 - |G_big|^2) / (1/B_small - 1/B_big)

We take B_big = the whole training split, whose gradient is exact (computed once per distinct
context, in the evaluation's own pass: see evaluate.py), and average |G_small|^2 over several
small batches, a few at a time, with `between()` after each group but the last (as evaluate.py
does between chunks).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import Tensor

from backend.core.model import MLP, tanh


def noise_scale(b_small: float, g2_small: float, b_big: float, g2_big: float) -> tuple[float, float, float]:
    """(B_noise, tr(Sigma), |G|^2) from mean squared gradient norms at two batch sizes."""
    g2 = (b_big * g2_big - b_small * g2_small) / (b_big - b_small)
    trace = (g2_small - g2_big) / (1 / b_small - 1 / b_big)
    b_noise = trace / g2 if g2 > 0 else math.inf
    return b_noise, trace, g2


def batch_sq_norms(model: MLP, X: Tensor, Y: Tensor, idx: Tensor) -> Tensor:
    """|g_k|^2 of the mean-loss gradient of each of K minibatches, all at once: idx is (K, B)."""
    K, B = idx.shape
    s = model.shape
    Xb, Yb = X[idx], Y[idx]  # (K, B, T), (K, B)
    emb = model.C[Xb].view(K, B, s.n_in)  # (K, B, n_in)
    h = tanh(torch.baddbmm(model.b1, emb, model.W1.expand(K, -1, -1)))  # (K, B, H)
    logits = torch.baddbmm(model.b2, h, model.W2.expand(K, -1, -1))  # (K, B, V)
    d = torch.softmax(logits, dim=2)
    d.scatter_add_(2, Yb.unsqueeze(2), torch.full((K, B, 1), -1.0))
    d /= B  # d(mean loss)/d(logits)
    dz = torch.bmm(d, model.W2.t().expand(K, -1, -1)) * (1 - h * h)  # (K, B, H)
    demb = torch.bmm(dz, model.W1.t().expand(K, -1, -1))  # (K, B, n_in)
    gW2 = torch.bmm(h.transpose(1, 2), d)  # (K, H, V)
    gW1 = torch.bmm(emb.transpose(1, 2), dz)  # (K, n_in, H)
    gC = torch.zeros(K * s.vocab_size, s.n_embd)
    rows = (Xb + torch.arange(K).view(K, 1, 1) * s.vocab_size).reshape(-1)  # draw k's rows of C
    gC.index_add_(0, rows, demb.reshape(-1, s.n_embd))
    return (
        gW2.square().sum((1, 2))
        + d.sum(1).square().sum(1)
        + gW1.square().sum((1, 2))
        + dz.sum(1).square().sum(1)
        + gC.view(K, -1).square().sum(1)
    )


def estimate(
    model: MLP,
    X: Tensor,
    Y: Tensor,
    full_g2: float,
    b_small: int,
    draws: int,
    gen: torch.Generator,
    per_piece: int | None = None,
    between: Callable[[], None] | None = None,
) -> float:
    """B_noise from `draws` batches of `b_small` examples and the exact full-split |G|^2; the
    batches go `per_piece` at a time (default: all at once). The generator gives the same draws
    however they are grouped."""
    idx = torch.randint(0, X.shape[0], (draws, b_small), generator=gen)  # (draws, b_small)
    per_piece = per_piece or draws
    norms = []
    for lo in range(0, draws, per_piece):
        if lo > 0 and between is not None:
            between()
        norms.append(batch_sq_norms(model, X, Y, idx[lo : lo + per_piece]))
    g2_small = float(torch.cat(norms).mean())
    return noise_scale(b_small, g2_small, X.shape[0], full_g2)[0]
