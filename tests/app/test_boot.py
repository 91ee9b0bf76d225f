"""Boot: the server answers while the application (torch) loads, then hands everything to it."""

from __future__ import annotations

import gc
import subprocess
import sys
import threading
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from backend.app.boot import Boot
from harness.server import ROOT

DEADLINE = 30.0  # seconds; generous, for a loaded machine


def slow_app(release: threading.Event, events: list[str]) -> FastAPI:
    """An application that takes until `release` to load, and records its lifespan."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        events.append("startup")
        yield
        events.append("shutdown")

    app = FastAPI(lifespan=lifespan)

    @app.get("/api/thing")
    async def thing() -> dict[str, list[str]]:
        return {"events": list(events)}

    def load() -> FastAPI:
        assert release.wait(DEADLINE)
        events.append("loaded")
        return app

    return load  # type: ignore[return-value]


def test_health_and_page_answer_while_the_application_loads_then_it_takes_over() -> None:
    release, events = threading.Event(), []
    with TestClient(Boot(slow_app(release, events))) as client, ThreadPoolExecutor(1) as pool:
        assert client.get("/api/health").json() == {"status": "ok"}
        page = client.get("/")
        assert page.status_code == 200 and "<html" in page.text.lower()
        assert client.get("/static/js/main.js").status_code == 200
        assert events == []  # all of that without the application
        waiting = pool.submit(client.get, "/api/thing")  # waits for the application...
        release.set()
        answer = waiting.result(DEADLINE)
        assert answer.status_code == 200
        assert answer.json() == {"events": ["loaded", "startup"]}  # ...and its lifespan
        assert client.get("/api/thing").status_code == 200
        assert client.get("/api/nothing").status_code == 404  # the application's own 404
    assert events == ["loaded", "startup", "shutdown"]


def test_start_up_objects_are_frozen_once_the_application_has_started(monkeypatch: pytest.MonkeyPatch) -> None:
    """Once the application's lifespan has started (and before its first request is answered),
    the objects of start-up leave the garbage collector's walks (gc.freeze): once."""
    release, events = threading.Event(), []
    monkeypatch.setattr(gc, "freeze", lambda: events.append("frozen"))
    with TestClient(Boot(slow_app(release, events))) as client:
        release.set()
        assert client.get("/api/thing").json() == {"events": ["loaded", "startup", "frozen"]}
        client.get("/api/thing")
    assert events == ["loaded", "startup", "frozen", "shutdown"]


def test_a_failed_load_gives_503_and_health_says_so() -> None:
    def load() -> FastAPI:
        raise RuntimeError("no torch here")

    with TestClient(Boot(load)) as client:
        answer = client.get("/api/runs")  # waits for the load, which fails
        assert answer.status_code == 503 and "error_id" in answer.json()  # the reason: in the log
        assert client.get("/api/health").status_code == 503


def test_what_the_server_imports_before_it_listens_leaves_out_torch_and_fastapi() -> None:
    """`python -m backend` listens once its own module is imported; torch (seconds) and FastAPI
    (a third of the rest) load after that, on Boot's thread, so /api/health answers sooner."""
    code = "import sys, backend.__main__; print(sorted(m for m in ('torch', 'fastapi') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
