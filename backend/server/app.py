"""The FastAPI application: long-lived objects are built in the lifespan and reached via deps."""

from __future__ import annotations

import asyncio
import logging
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import torch
from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.gzip import GZipMiddleware

from backend.api import datasets, docs, meta, pages, runs, ws
from backend.api.errors import validation_error
from backend.core.data import Dataset
from backend.server.config import Settings
from backend.server.datasets import DatasetRegistry
from backend.server.registry import RunRegistry
from backend.server.schemas import RunCreate

log = logging.getLogger(__name__)


def create_app(settings: Settings | None = None, dataset: Dataset | None = None) -> FastAPI:
    """`dataset` lets a caller that already loaded (and checked) the data pass it in."""
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # The trainer thread and the event loop share the GIL. Handing it over every 1 ms instead
        # of 5 lets the loop's bursts of websocket sends interleave with the trainer's GIL-free
        # torch kernels: with 100 viewers the trainer keeps ~90% of its speed instead of ~85%.
        sys.setswitchinterval(0.001)
        data = dataset or Dataset.from_file(settings.data)
        max_threads = torch.get_num_threads()
        registry = RunRegistry(DatasetRegistry(data), asyncio.get_running_loop(), settings.keep_runs, max_threads)
        app.state.settings = settings
        app.state.registry = registry
        # The page is ready with one click: a default run, paused at step 0. It is built while the
        # server starts answering; a request for the current run waits for it.
        registry.start_default(RunCreate(start=False))
        log.info("serving %s (%d words) on http://%s:%d", data.name, len(data.words), settings.host, settings.port)
        try:
            yield
        finally:
            registry.close()

    app = FastAPI(
        title="makemore live",
        summary="Watch the makemore MLP learn names, and steer it while it learns.",
        lifespan=lifespan,
        docs_url=None,  # served by backend/api/docs.py, offline and under the CSP
        redoc_url=None,
    )
    app.add_middleware(GZipMiddleware, minimum_size=2048)
    app.add_exception_handler(RequestValidationError, validation_error)
    app.include_router(meta.router)
    app.include_router(runs.router)
    app.include_router(datasets.router)
    app.include_router(ws.router)
    pages.add_page(app)
    docs.add_docs(app)
    return app
