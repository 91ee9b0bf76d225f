"""The embedding map: each character's embedding in two dimensions, as in the lecture's scatter.

With n_embd == 2 these are the embeddings themselves; otherwise their first two principal
components. A principal axis has no sign of its own, so each is flipped to agree with the
previous map's: the points move as the model learns instead of jumping to their mirror image.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor


@dataclass(frozen=True)
class EmbeddingMap:
    x: list[float]
    y: list[float]
    method: str  # "raw" or "pca"
    axes: Tensor | None  # (2, n_embd) principal axes, to orient the next map


def embedding_map(C: Tensor, previous: EmbeddingMap | None = None) -> EmbeddingMap:
    """C: (vocab_size, n_embd)."""
    if C.shape[1] == 2:
        return EmbeddingMap(C[:, 0].tolist(), C[:, 1].tolist(), "raw", None)
    centred = C - C.mean(0)  # (V, E)
    axes = torch.linalg.svd(centred, full_matrices=False).Vh[:2].clone()  # (2, E)
    if previous is not None and previous.axes is not None:
        flip = (axes * previous.axes).sum(1) < 0
        axes[flip] *= -1
    xy = centred @ axes.t()  # (V, 2)
    return EmbeddingMap(xy[:, 0].tolist(), xy[:, 1].tolist(), "pca", axes)
