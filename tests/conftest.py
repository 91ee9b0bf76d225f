"""Shared fixtures: small datasets, a trainer harness, and an app under FastAPI's TestClient."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest
from fastapi.testclient import TestClient

import backend.training.evaluating as evaluating_module
import backend.training.trainer as trainer_module
from backend.app.main import create_app
from backend.config import DEFAULT_DATA, Settings
from backend.core.data import Dataset
from backend.core.evaluate import Evaluation
from backend.core.model import MLP
from backend.training.protocol import Event
from backend.training.trainer import Trainer

ROOT = Path(__file__).resolve().parent.parent
LECTURE_NAMES = ROOT.parent / "shared" / "data" / "names.txt"  # makemore's names.txt, never committed

T = TypeVar("T")


def wait_for(predicate: Callable[[], T], timeout: float = 20.0, what: str = "condition") -> T:
    """Poll until predicate() is truthy, with a deadline (no fixed sleeps in tests)."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.005)


class Recorder:
    """An `emit` for a Trainer that keeps every event (thread-safe)."""

    def __init__(self) -> None:
        self.events: list[Event] = []
        self._lock = threading.Lock()

    def __call__(self, event: Event) -> None:
        with self._lock:
            self.events.append(event)

    def of(self, kind: type[T]) -> list[T]:
        with self._lock:
            return [e for e in self.events if isinstance(e, kind)]


Between = Callable[[], None]


def spy_on_evaluations(
    monkeypatch: pytest.MonkeyPatch, at_chunk: Callable[[Trainer, int], None], trainers: list[Trainer]
) -> list[str]:
    """Evaluations in chunks of 64 contexts (the small dataset's ~2,000: ~30 chunks), each boundary
    reported to `at_chunk(trainer, n)` before the trainer takes its commands; returns a log of
    "chunk" and "end" as they happen."""
    real = evaluating_module.evaluate
    log: list[str] = []
    monkeypatch.setattr(trainer_module, "chunk_rows", lambda shape: 64)

    def evaluate(model: MLP, data: Any, gradient: bool, between: Between | None = None) -> Evaluation:
        trainer = next(t for t in trainers if t.model is model)
        n = 0

        def spy() -> None:
            nonlocal n
            n += 1
            at_chunk(trainer, n)
            log.append("chunk")
            assert between is not None
            between()

        result = real(model, data, gradient, spy)
        log.append("end")
        return result

    monkeypatch.setattr(evaluating_module, "evaluate", evaluate)
    return log


@pytest.fixture(scope="session", autouse=True)
def _no_user_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """The default home (`$XDG_DATA_HOME/makemore-live`) in a temporary directory for the whole
    session: a test that forgets to give a home never writes into the user's, nor reads it."""
    before = os.environ.get("XDG_DATA_HOME")
    os.environ["XDG_DATA_HOME"] = str(tmp_path_factory.mktemp("xdg-data"))
    yield
    if before is None:
        del os.environ["XDG_DATA_HOME"]
    else:
        os.environ["XDG_DATA_HOME"] = before


@pytest.fixture(scope="session")
def default_dataset() -> Dataset:
    return Dataset.from_file(DEFAULT_DATA)


@pytest.fixture(scope="session")
def small_dataset(default_dataset: Dataset) -> Dataset:
    """2,000 of the built-in names: quick to build, same vocabulary."""
    return Dataset("small", default_dataset.words[:2000])


@pytest.fixture
def make_client(
    small_dataset: Dataset, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Callable[..., TestClient]]:
    """An app under TestClient; its store in a fresh temporary home unless `home` is given."""
    clients: list[TestClient] = []

    def make(dataset: Dataset | None = None, **settings: Any) -> TestClient:
        settings.setdefault("home", tmp_path_factory.mktemp("home"))
        app = create_app(Settings(**settings), dataset or small_dataset)
        client = TestClient(app)
        client.__enter__()
        clients.append(client)
        return client

    yield make
    for c in clients:
        c.__exit__(None, None, None)


@pytest.fixture
def client(make_client: Callable[..., TestClient]) -> TestClient:
    """An app whose default run has its worker and its step-0 evaluation (so that what a test
    sees next is what it caused)."""
    c = make_client()
    wait_for(lambda: c.get("/api/runs/current").json()["last_eval"], timeout=90, what="the step-0 evaluation")
    return c
