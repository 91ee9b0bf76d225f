"""Answering reads of a model (wire.Read): by a run's worker between two steps, or by the server
from the run's latest checkpoint when it has no worker. The same code either way."""

from __future__ import annotations

import time
from dataclasses import dataclass

from backend.core.data import Dataset, build_examples
from backend.core.evaluate import CountedExamples
from backend.core.model import MLP
from backend.core.readout import Samples, next_probs, sample_names, test_loss
from backend.runtime.wire import NextRead, Read, SampleRead, TestRead, WeightsRead
from backend.training.checkpoint import weights_file
from backend.training.spec import RunSpec


@dataclass(frozen=True)
class SampleAnswer:
    samples: Samples
    step: int


@dataclass(frozen=True)
class NextAnswer:
    read_as: str
    window: str
    probs: list[float]
    step: int


@dataclass(frozen=True)
class TestAnswer:
    test_loss: float
    test_examples: int
    ms: float
    step: int


@dataclass(frozen=True)
class WeightsAnswer:
    data: bytes  # a safetensors file
    step: int


Answer = SampleAnswer | NextAnswer | TestAnswer | WeightsAnswer


class Reader:
    """Reads of one run's model; keeps the counted test split once built (most runs never ask)."""

    def __init__(self, spec: RunSpec, dataset: Dataset) -> None:
        self.spec, self.dataset = spec, dataset
        self._test: CountedExamples | None = None

    def test_set(self) -> CountedExamples:
        if self._test is None:
            # the test split alone: the server reads many runs' checkpoints, and needs no training examples
            test = build_examples(self.dataset.parts[2], self.dataset.vocab, self.spec.block_size)
            self._test = CountedExamples.from_splits([test], self.dataset.vocab.size)
        return self._test

    def answer(self, read: Read, model: MLP, step: int) -> Answer:
        """Raises UnknownCharacterError (a ValueError) for a context the vocabulary lacks."""
        match read:
            case SampleRead():
                return SampleAnswer(sample_names(model, self.dataset, read.n, read.temperature, read.seed), step)
            case NextRead():
                n = next_probs(model, self.dataset.vocab, read.context)
                return NextAnswer(n.read_as, n.window, n.probs, step)
            case TestRead():
                t0 = time.perf_counter()
                counted = self.test_set()
                loss = test_loss(model, counted)
                return TestAnswer(loss, counted.splits[0].n, (time.perf_counter() - t0) * 1000, step)
            case WeightsRead():
                return WeightsAnswer(weights_file(self.spec, self.dataset.vocab.chars, model, step), step)
        raise TypeError(f"not a read: {read!r}")
