import torch

from backend.core.embeddings import embedding_map


def test_raw_when_two_dimensions() -> None:
    C = torch.randn(27, 2)
    m = embedding_map(C)
    assert m.method == "raw" and m.x == C[:, 0].tolist() and m.y == C[:, 1].tolist()


def test_pca_keeps_the_most_variance_and_a_steady_orientation() -> None:
    torch.manual_seed(0)
    C = torch.randn(27, 10) * torch.tensor([5.0, 3.0] + [0.1] * 8)  # most variance in 2 dims
    m = embedding_map(C)
    assert m.method == "pca" and len(m.x) == 27
    xy = torch.tensor([m.x, m.y]).t()
    centred = C - C.mean(0)
    assert float(xy.square().sum()) > 0.99 * float(centred[:, :2].square().sum())
    # the same embeddings mirrored (the SVD may return either sign) keep the previous orientation
    mirrored = embedding_map(-C, previous=m)
    again = embedding_map(C * 1.001, previous=m)
    assert torch.allclose(torch.tensor(again.x), torch.tensor(m.x) * 1.001, atol=1e-3)
    assert torch.allclose(torch.tensor(mirrored.x), -torch.tensor(m.x), atol=1e-4)  # the data moved, not the axes
