"""Sampling names from the model, as at the end of the lecture, n names at a time."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from backend.core.model import MLP


def sample_ids(model: MLP, n: int, temperature: float, seed: int, max_len: int) -> list[list[int]]:
    """n sequences of character ids (without the end token 0), all drawn in parallel.

    Each starts from the all-`.` context; we feed each drawn character back in until the end
    token comes out, or stop a sequence at max_len characters.
    """
    g = torch.Generator().manual_seed(seed)
    context = torch.zeros((n, model.shape.block_size), dtype=torch.long)  # (n, block_size)
    out = torch.zeros((n, max_len), dtype=torch.long)  # (n, max_len)
    alive = torch.ones(n, dtype=torch.bool)
    lengths = torch.full((n,), max_len, dtype=torch.long)
    for t in range(max_len):
        probs = F.softmax(model.forward(context) / temperature, dim=1)  # (n, vocab)
        ix = torch.multinomial(probs, 1, generator=g).squeeze(1)  # (n,)
        ended = alive & (ix == 0)
        lengths[ended] = t
        alive &= ~ended
        if not bool(alive.any()):
            break
        out[:, t] = ix
        context = torch.cat([context[:, 1:], ix[:, None]], dim=1)
    return [row[:length].tolist() for row, length in zip(out, lengths.tolist(), strict=True)]
