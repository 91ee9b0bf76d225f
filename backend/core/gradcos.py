"""How well a minibatch gradient points along the full one (issue 23).

G is the exact gradient of the whole training split's mean loss (`full_gradient`: one pass over
its distinct contexts, each pair weighted by its count, as evaluate.py computes the loss).
For batch sizes B, `cosines` draws minibatches as training does (rows uniform, with
replacement) and measures cos(g_B, G). With g_B = G + noise of covariance Sigma / B,

    cos^2(g_B, G) ~ B / (B + B_noise),   B_noise = tr(Sigma) / |G|^2

(McCandlish et al. 2018's simple noise scale; noise.py estimates it), so `predicted_cos` puts the
estimate next to the measurement.

Draws come from a generator the caller gives, never the training one; `draw_generator(seed,
step)` makes one from the run's seed and the step alone, so that a resumed run draws the same
batches at the same step without its state in a checkpoint.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from typing import Any

import torch
from torch import Tensor

from backend.core.data import Examples
from backend.core.diagnostics import num
from backend.core.evaluate import CountedExamples
from backend.core.model import MLP, tanh

BATCH_SIZES = (1, 4, 16, 64, 256, 1024)
DRAWS = 16
MIN_DRAWS = 4
MAX_ROWS = 4096  # rows per batch size at most, over its draws (but MIN_DRAWS draws at least)
# Rows of all the draws that one batched pass takes at most: bounds its memory, and keeps its
# intermediates in cache (measured: 16,384 rows took ~1.6x as long in all as 2,048 at a time).
ROWS = 2048
DRAW_SALT = 0xBB67AE8584CAA73B


def draw_generator(seed: int, step: int) -> torch.Generator:
    """A generator for the draws at `step` of the run seeded `seed`: its own stream, stateless."""
    return torch.Generator().manual_seed((seed * 1_000_003 + step + DRAW_SALT) % 2**63)


def flat(grads: Iterable[Tensor]) -> Tensor:
    """Gradients (C, W1, b1, W2, b2) as one vector, in that order."""
    return torch.cat([g.reshape(-1) for g in grads])


def full_gradient(
    model: MLP, data: CountedExamples, split: int = 0, between: Callable[[], None] | None = None
) -> list[Tensor]:
    """The exact gradient (C, W1, b1, W2, b2) of split `split`'s mean loss: per distinct context,
    d/dlogits = n(x) softmax(x) - counts(x, .), over n (evaluate.py's pass, this split only).
    `between()` runs after every chunk but the last, as in evaluate()."""
    s = data.splits[split]
    grads = [torch.zeros_like(p) for p in model.parameters()]
    start = 0
    for c, end in enumerate(s.chunk_ends):
        if c > 0 and between is not None:
            between()
        if end == start:
            continue
        lo = c * data.chunk
        X = data.contexts[lo : lo + data.chunk]  # (k, block_size)
        ctx, nxt, count = s.context[start:end] - lo, s.next[start:end], s.count[start:end].float()
        with torch.no_grad():
            h, logits = model.hidden_and_logits(X)
            n_ctx = torch.zeros(X.shape[0]).index_add_(0, ctx, count)  # examples per context
            dlogits = torch.softmax(logits, dim=1) * n_ctx[:, None]
            dlogits.index_put_((ctx, nxt), -count, accumulate=True)
            dlogits /= s.n
            for g, part in zip(grads, model.gradients(X, h, dlogits), strict=True):
                g.add_(part)
        start = end
    return grads


def batch_gradients(model: MLP, X: Tensor, Y: Tensor, idx: Tensor) -> Tensor:
    """The mean-loss gradients of K minibatches at once, flat (`flat`'s order): idx is (K, B)."""
    K, B = idx.shape
    s = model.shape
    with torch.no_grad():
        # The weights are the same for every draw: the products with them run over all K * B rows
        # as one matrix product; only the per-draw sums that make the weights' gradients are bmm.
        Xr, Yr = X[idx.reshape(-1)], Y[idx.reshape(-1)]  # (K*B, T), (K*B,)
        emb = model.C[Xr].view(K * B, s.n_in)
        h = tanh(torch.addmm(model.b1, emb, model.W1))  # (K*B, H)
        d = torch.softmax(torch.addmm(model.b2, h, model.W2), dim=1)  # (K*B, V)
        d.scatter_add_(1, Yr.unsqueeze(1), torch.full((K * B, 1), -1.0))
        d /= B  # d(mean loss)/d(logits)
        dz = torch.ops.aten.tanh_backward(d @ model.W2.t(), h)  # (K*B, H): dh * (1 - h^2)
        demb = dz @ model.W1.t()  # (K*B, n_in)
        gC = torch.zeros(K * s.vocab_size, s.n_embd)
        draw = torch.arange(K).repeat_interleave(B * s.block_size) * s.vocab_size
        gC.index_add_(0, Xr.reshape(-1) + draw, demb.view(-1, s.n_embd))  # draw k's rows of C
        emb3, h3, dz3, d3 = emb.view(K, B, -1), h.view(K, B, -1), dz.view(K, B, -1), d.view(K, B, -1)
        return torch.cat(
            [
                gC.view(K, -1),
                torch.bmm(emb3.transpose(1, 2), dz3).view(K, -1),  # W1
                dz3.sum(1),  # b1
                torch.bmm(h3.transpose(1, 2), d3).view(K, -1),  # W2
                d3.sum(1),  # b2
            ],
            dim=1,
        )


def cosines(
    model: MLP,
    data: Examples,
    full_grad: list[Tensor] | Tensor,
    gen: torch.Generator,
    batch_sizes: Iterable[int] = BATCH_SIZES,
    current: int | None = None,
    draws: int = DRAWS,
    max_rows: int = MAX_ROWS,
) -> dict[str, Any]:
    """cos(g_B, G) over minibatches of the training rows `data` for each batch size (and the
    run's `current` one): mean, std (Bessel's), min and max per size, sizes in increasing order.
    Each size gets `draws` batches, fewer where they would pass `max_rows` rows, but at least
    MIN_DRAWS: the big batches' cosines vary least (std ~0.05 at 1,024 on the lecture's model,
    ~0.13 at 16) and cost most. Draws are made size by size, smallest first. None where G is 0."""
    sizes = sorted({*batch_sizes, *([current] if current else [])})
    G = (full_grad if isinstance(full_grad, Tensor) else flat(full_grad)).double()
    G_norm = float(G.norm())
    out: dict[str, Any] = {"batch_sizes": sizes, "draws": [], "mean": [], "std": [], "min": [], "max": []}
    for B in sizes:
        n = min(draws, max(MIN_DRAWS, max_rows // B))
        idx = torch.randint(0, len(data), (n, B), generator=gen)
        per = max(1, ROWS // B)  # draws per batched pass
        cos = torch.cat(
            [
                _cos(batch_gradients(model, data.X, data.Y, idx[k : k + per]).double(), G, G_norm)
                for k in range(0, n, per)
            ]
        )
        out["draws"].append(n)
        out["mean"].append(num(float(cos.mean())))
        out["std"].append(num(float(cos.std())) if n > 1 else None)
        out["min"].append(num(float(cos.min())))
        out["max"].append(num(float(cos.max())))
    return out


def _cos(g: Tensor, G: Tensor, G_norm: float) -> Tensor:
    if G_norm == 0:
        return torch.full((g.shape[0],), math.nan, dtype=torch.float64)
    return torch.mv(g, G).div_(g.norm(dim=1) * G_norm)


def predicted_cos(B: float, b_noise: float) -> float | None:
    """sqrt(B / (B + B_noise)): the cosine the noise scale predicts at batch B. An estimate at or
    below 0 (noise too small to measure) predicts 1, an infinite one 0; NaN predicts nothing."""
    if math.isnan(b_noise):
        return None
    if b_noise <= 0:
        return 1.0
    return math.sqrt(B / (B + b_noise)) if math.isfinite(b_noise) else 0.0
