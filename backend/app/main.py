"""The FastAPI application: long-lived objects are built in the lifespan and reached via deps."""

from __future__ import annotations

import asyncio
import logging
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from backend.api import code, datasets, docs, lostfound, lrfind, meta, model, pages, runs, sweeps, ws
from backend.api.errors import conflict, http_error, not_found, validation_error, worker_error
from backend.api.points import RunPoints
from backend.api.responses import document_unreadable_bodies
from backend.app.failures import internal_error
from backend.config import Settings
from backend.core.data import Dataset
from backend.runs.datasets import DatasetRegistry
from backend.runs.registry import RunNotFoundError, RunRegistry
from backend.runtime.handle import WorkerError
from backend.runtime.runtime import LocalRuntime, Runtime
from backend.store.store import Store
from backend.training.protocol import ConflictError
from backend.training.spec import RunSpec

log = logging.getLogger(__name__)


def make_runtime(settings: Settings) -> Runtime:
    if settings.ray_address:
        from backend.runtime.ray import RayRuntime  # noqa: PLC0415 (ray is optional)

        runtime: Runtime = RayRuntime(settings.ray_address)
        return runtime
    return LocalRuntime()


def create_app(settings: Settings | None = None, dataset: Dataset | None = None) -> FastAPI:
    """`dataset` lets a caller that already loaded (and checked) the data pass it in."""
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[Mapping[str, Callable[[], Awaitable[None]]]]:
        # The readers of worker pipes and the event loop share the GIL; handing it over every
        # 1 ms instead of 5 keeps the loop's bursts of websocket sends from delaying them.
        sys.setswitchinterval(0.001)
        data = dataset or Dataset.from_file(settings.data)
        runtime = make_runtime(settings)
        warm = asyncio.create_task(asyncio.to_thread(runtime.warm_up))  # the forkserver imports torch
        store = Store(settings.home, history=not settings.bench_no_store)
        await asyncio.to_thread(store.open)
        datasets = DatasetRegistry(store, data)
        await asyncio.to_thread(datasets.open)
        cpus = runtime.cpus()
        registry = RunRegistry(
            store,
            datasets,
            runtime,
            max_running=settings.max_running or cpus,
            threads=settings.torch_threads,
            nice=settings.worker_nice,
            max_sweeps=settings.max_sweeps,
        )
        app.state.settings = settings
        app.state.registry = registry
        app.state.points = RunPoints(registry)
        # With no run at all, the page is ready with one click: a default run, paused at step 0.
        await registry.open(default=RunSpec())
        log.info(
            "serving %s (%d words) on http://%s:%d; runs kept in %s; %d train at once (%s)",
            data.name, len(data.words), settings.host, settings.port, settings.home, registry.max_running, runtime.name,
        )  # fmt: skip
        try:
            # what the server calls the moment it is told to stop (boot.py), before its open
            # connections have finished: the runs are paused meanwhile, not after
            yield {"begin_shutdown": registry.stop_runs}
        finally:
            await registry.close()
            warm.cancel()
            runtime.close()

    app = FastAPI(
        title="makemore live",
        summary="Watch the makemore MLP learn names, and steer it while it learns.",
        lifespan=lifespan,
        docs_url=None,  # served by backend/api/docs.py, offline and under the CSP
        redoc_url=None,
    )
    app.add_middleware(pages.gzipped)
    app.add_exception_handler(RequestValidationError, validation_error)
    app.add_exception_handler(StarletteHTTPException, http_error)
    app.add_exception_handler(RunNotFoundError, not_found)
    app.add_exception_handler(ConflictError, conflict)
    app.add_exception_handler(WorkerError, worker_error)
    app.add_exception_handler(Exception, internal_error)  # 500: an error id, the traceback in the log
    app.include_router(meta.router())
    app.include_router(runs.router)
    app.include_router(code.router)
    app.include_router(model.router)
    app.include_router(lrfind.router)
    app.include_router(sweeps.router)
    app.include_router(datasets.router)
    app.include_router(lostfound.router)
    app.include_router(ws.router)
    pages.add_page(app)
    docs.add_docs(app)
    document_unreadable_bodies(app)
    return app
