"""Reading a model: names it makes up, what it predicts next, its loss on the test split."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from backend.core.data import Dataset, Split, Vocab
from backend.core.evaluate import CountedExamples, exact_losses
from backend.core.model import MLP
from backend.core.sample import sample_ids


@dataclass(frozen=True)
class Samples:
    names: list[str]
    split: list[Split | None]  # the split each name is a word of; None: not in the dataset at all

    @property
    def new(self) -> list[bool]:
        """Made up: not a word of the dataset, in any split (a dev-set name is real, if unseen)."""
        return [s is None for s in self.split]

    @property
    def new_share(self) -> float:
        return sum(self.new) / len(self.new) if self.new else 0.0


def sample_names(model: MLP, dataset: Dataset, n: int, temperature: float, seed: int) -> Samples:
    ids = sample_ids(model, n, temperature, seed, max_len=dataset.sample_max_len)
    names = [dataset.vocab.decode(x) for x in ids]
    return Samples(names, [dataset.split_of.get(name) for name in names])


class UnknownCharacterError(ValueError):
    pass


def context_window(vocab: Vocab, context: str, block_size: int) -> list[int]:
    """The last block_size characters of `context`, padded on the left with '.' as in training."""
    stoi = vocab.stoi()
    bad = sorted({c for c in context if c not in stoi})
    if bad:
        has = "".join(vocab.chars[1:])
        raise UnknownCharacterError(
            f"not in this dataset's vocabulary: {' '.join(map(repr, bad))} (its characters: {has})"
        )
    ids = [stoi[c] for c in context][-block_size:] if block_size else []
    return [0] * (block_size - len(ids)) + ids


def fold_case(vocab: Vocab, context: str) -> str:
    """The context in lower case ("Emma" as "emma") when the dataset has no upper-case letters
    (the built-in names are all lower case): a capital the model never saw would otherwise be an
    unknown character."""
    if any(c.isupper() for c in vocab.chars):
        return context
    return "".join(c.lower() if len(c.lower()) == 1 else c for c in context)  # one character each


@dataclass(frozen=True)
class NextChars:
    read_as: str  # the context the model read: folded to lower case if the dataset has no capitals
    window: str  # the last block_size characters of it, padded with '.'
    probs: list[float]  # of each character of the vocabulary coming next


def next_probs(model: MLP, vocab: Vocab, context: str) -> NextChars:
    """The probability of each next character after `context` (case folded, see fold_case)."""
    read_as = fold_case(vocab, context)
    window = context_window(vocab, read_as, model.shape.block_size)
    logits = model.forward(torch.tensor([window]))  # (1, vocab)
    probs = F.softmax(logits, dim=1)[0].tolist()
    return NextChars(read_as, vocab.decode(window), probs)


def test_loss(model: MLP, counted_test: CountedExamples) -> float:
    return exact_losses(model, counted_test)[0]
