import torch

from backend.core.model import MLP, ModelShape
from backend.core.sample import sample_ids


def test_same_seed_same_names_and_no_end_token() -> None:
    m = MLP.lecture_init(ModelShape(27))
    a = sample_ids(m, 50, 1.0, seed=7, max_len=40)
    b = sample_ids(m, 50, 1.0, seed=7, max_len=40)
    c = sample_ids(m, 50, 1.0, seed=8, max_len=40)
    assert a == b
    assert a != c
    assert len(a) == 50
    assert all(0 not in ids and len(ids) <= 40 for ids in a)


def test_low_temperature_is_greedy() -> None:
    m = MLP.lecture_init(ModelShape(27))
    names = sample_ids(m, 20, 1e-4, seed=1, max_len=30)
    assert all(n == names[0] for n in names)  # argmax at every step: one name


def test_max_len_cuts_endless_names() -> None:
    m = MLP.lecture_init(ModelShape(27))
    with torch.no_grad():
        m.b2[0] = -1e4  # the end token never comes out
    assert all(len(ids) == 12 for ids in sample_ids(m, 5, 1.0, seed=0, max_len=12))
