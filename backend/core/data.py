"""The character vocabulary and the lecture's (context -> next character) examples.

Each word (see words.py) plus the end token `.` gives one example per character; the context
is the previous `block_size` characters, padded with `.`.
Words are shuffled with a fixed seed and split 80/10/10 into train/dev/test, as in the lecture.
"""

from __future__ import annotations

import functools
import random
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import torch
from torch import Tensor

from backend.core.words import BOUNDARY, DEFAULT_LIMITS, Limits, read_words

SPLIT_SEED = 42  # the lecture's random.seed(42)
KEPT_SPLITS = 2  # block sizes whose examples a Dataset keeps (see Dataset.splits)
Split = Literal["train", "dev", "test"]
SPLITS: tuple[Split, Split, Split] = ("train", "dev", "test")


@dataclass(frozen=True)
class Vocab:
    chars: tuple[str, ...]  # chars[0] is the boundary token

    @classmethod
    def from_words(cls, words: list[str]) -> Vocab:
        return cls((BOUNDARY, *sorted(set("".join(words)))))

    @property
    def size(self) -> int:
        return len(self.chars)

    def stoi(self) -> dict[str, int]:
        return {c: i for i, c in enumerate(self.chars)}

    def decode(self, ids: list[int]) -> str:
        return "".join(self.chars[i] for i in ids)


@dataclass(frozen=True)
class Examples:
    X: Tensor  # (N, block_size) int64 contexts
    Y: Tensor  # (N,) int64 next characters

    def __len__(self) -> int:
        return self.X.shape[0]


@dataclass(frozen=True)
class Splits:
    train: Examples
    dev: Examples
    test: Examples


def build_examples(words: list[str], vocab: Vocab, block_size: int) -> Examples:
    """The lecture's loop, vectorised: for each word, every prefix window -> next character."""
    stoi = vocab.stoi()
    # Lay the words out as [. . . e m m a .][. . . o l i v i a .]... (block_size dots before each)
    pad = [0] * block_size
    flat: list[int] = []
    lengths: list[int] = []  # examples per word: its characters plus the end token
    for w in words:
        flat += pad
        flat += [stoi[c] for c in w]
        flat.append(0)
        lengths.append(len(w) + 1)
    seq = torch.tensor(flat, dtype=torch.long)
    n_per_word = torch.tensor(lengths, dtype=torch.long)
    segment_starts = torch.cumsum(n_per_word + block_size, 0) - (n_per_word + block_size)
    # The t-th example of a word starts its context window at segment_start + t.
    first_example = torch.cumsum(n_per_word, 0) - n_per_word
    word_of_example = torch.repeat_interleave(torch.arange(len(words)), n_per_word)
    t = torch.arange(int(n_per_word.sum())) - first_example[word_of_example]
    starts = segment_starts[word_of_example] + t  # (N,)
    X = seq[starts[:, None] + torch.arange(block_size)]  # (N, block_size)
    Y = seq[starts + block_size]  # (N,)
    return Examples(X.contiguous(), Y.contiguous())


def split_words(words: list[str], seed: int = SPLIT_SEED) -> tuple[list[str], list[str], list[str]]:
    shuffled = list(words)
    random.Random(seed).shuffle(shuffled)
    n1, n2 = int(0.8 * len(shuffled)), int(0.9 * len(shuffled))
    return shuffled[:n1], shuffled[n1:n2], shuffled[n2:]


@dataclass
class Dataset:
    """A word list with its vocabulary and split; examples are built per block_size, on demand."""

    name: str
    words: list[str]
    vocab: Vocab = field(init=False)
    parts: tuple[list[str], list[str], list[str]] = field(init=False)
    _splits: dict[int, Splits] = field(init=False, default_factory=dict, repr=False)
    _lock: threading.Lock = field(init=False, default_factory=threading.Lock, repr=False)

    def __post_init__(self) -> None:
        self.vocab = Vocab.from_words(self.words)
        self.parts = split_words(self.words)

    @functools.cached_property
    def train_words(self) -> frozenset[str]:
        """The training split's words."""
        return frozenset(self.parts[0])

    @functools.cached_property
    def split_of(self) -> dict[str, Split]:
        """Each word's split ("train", "dev" or "test"; the first if a list repeats a word). A
        sampled name not here is new: not in the dataset at all."""
        where: dict[str, Split] = {}
        for name, part in zip(SPLITS, self.parts, strict=True):
            for w in part:
                where.setdefault(w, name)
        return where

    @property
    def sample_max_len(self) -> int:
        """Where sampling cuts off a name that never ends: twice the longest word."""
        return max(32, 2 * max(map(len, self.words)))

    @classmethod
    def from_file(cls, path: Path, limits: Limits = DEFAULT_LIMITS) -> Dataset:
        return cls(path.name, read_words(path, limits))

    def splits(self, block_size: int) -> Splits:
        """The examples of each split for this block size. Only the latest KEPT_SPLITS block
        sizes stay cached: a 5 MB list's examples at block 16 take ~0.6 GB, and a run (a worker)
        only ever needs its own."""
        with self._lock:
            if block_size not in self._splits:
                train, dev, test = (build_examples(part, self.vocab, block_size) for part in self.parts)
                self._splits[block_size] = Splits(train, dev, test)
                while len(self._splits) > KEPT_SPLITS:
                    del self._splits[next(iter(self._splits))]  # the oldest (dicts keep insertion order)
            return self._splits[block_size]
