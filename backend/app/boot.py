"""Answering while PyTorch loads.

`import torch` alone takes 2.5-3.5 s of CPU on a small machine, more than everything else the
server does before it can answer. So `python -m backend` serves `Boot` at once: it answers
/api/health and serves the page and plotly.js itself (none of that needs torch), while a worker
thread builds the real application (`load`, which imports torch; the thread ends with it,
see runtime/openmp.py). When that is done, Boot runs the
real application's lifespan and hands every request to it; a request for anything else that
arrives before then (the page's first API call, its websocket) waits for it.

Only ASGI plumbing lives here; no module imported by this one imports torch, nor FastAPI (its
import is a third of what the server imports before it can listen: Starlette serves the front).
"""

from __future__ import annotations

import asyncio
import gc
import logging
from collections.abc import Callable
from typing import Any

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from backend.api import meta, pages
from backend.app.failures import failure, logged, new_error_id
from backend.runtime.openmp import run_in_own_thread

log = logging.getLogger(__name__)


def front_app() -> Starlette:
    """What the server can serve before torch is loaded: its health, the page and its files."""
    return Starlette(
        routes=[*meta.front_routes, *pages.page_routes()],
        middleware=[Middleware(pages.gzipped)],
    )


def freeze_startup_objects() -> None:
    """Leave what start-up made (~210,000 objects the collector tracks: the modules of torch,
    numpy, FastAPI, pydantic, and their classes and functions) out of every later collection.

    They live as long as the process, yet each full collection walked them all: the first burst
    of allocations after start-up (the 12,001 evaluations of an hours-long run, opened) triggered
    one, and that open took 0.19-0.26 s instead of 0.08 s. `gc.freeze` moves them to a generation
    the collector never visits; it does not collect first (a start-up's cyclic garbage is small,
    and a full collection would hold the event loop ~0.1 s just when the first requests come).
    """
    gc.freeze()
    log.info("start-up objects left out of garbage collection: %d", gc.get_freeze_count())


class _Lifespan:
    """Drives an ASGI application's lifespan from inside ours: startup now, shutdown later."""

    def __init__(self, app: ASGIApp) -> None:
        self._app = app
        self._inbox: asyncio.Queue[Message] = asyncio.Queue()
        loop = asyncio.get_running_loop()
        self._started: asyncio.Future[None] = loop.create_future()
        self._stopped: asyncio.Future[None] = loop.create_future()
        # after a failed startup nothing awaits it: its error counts as seen (asyncio would log
        # "Future exception was never retrieved", a second traceback at exit)
        self._stopped.add_done_callback(lambda f: f.cancelled() or f.exception())
        self._task: asyncio.Task[None] | None = None
        self.state: dict[str, Any] = {}  # what the application's lifespan yielded

    async def _send(self, message: Message) -> None:
        kind, text = message["type"], message.get("message", "")
        fut = self._started if kind.startswith("lifespan.startup") else self._stopped
        if not fut.done():
            fut.set_result(None) if kind.endswith(".complete") else fut.set_exception(RuntimeError(text))

    async def startup(self) -> None:
        scope = {"type": "lifespan", "asgi": {"version": "3.0", "spec_version": "2.0"}, "state": self.state}
        self._task = asyncio.create_task(self._run(scope))
        self._task.add_done_callback(self._ended)
        await self._inbox.put({"type": "lifespan.startup"})
        await self._started

    async def _run(self, scope: Scope) -> None:
        await self._app(scope, self._inbox.get, self._send)

    def _ended(self, task: asyncio.Task[None]) -> None:
        error = None if task.cancelled() else task.exception()
        for fut in (self._started, self._stopped):
            if not fut.done():  # the app returned (or raised) without answering
                fut.set_exception(error or RuntimeError("the application's lifespan ended early"))

    async def shutdown(self) -> None:
        await self._inbox.put({"type": "lifespan.shutdown"})
        await self._stopped


class Boot:
    """The ASGI application `python -m backend` serves; see the module's docstring.

    If the application fails to load or start, `on_failure` is called (`python -m backend` stops
    the server: a supervisor sees a process that exits, not one that answers 503 for ever), and
    until then every request but the page's gets 503 with the failure's id, never its traceback.
    """

    def __init__(self, load: Callable[[], ASGIApp], on_failure: Callable[[], None] | None = None) -> None:
        self._load = load
        self._on_failure = on_failure
        self._front = front_app()
        self._app: ASGIApp | None = None
        self.error_id: str | None = None  # the failure's, once the application failed to start
        self._ready: asyncio.Event | None = None
        self._lifespan: _Lifespan | None = None
        self._stopping: asyncio.Future[Any] | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._serve_lifespan(receive, send)
            return
        if self._app is None and self.error_id is None:
            if self._front_serves(scope):
                await self._front(scope, receive, send)
                return
            assert self._ready is not None, "the lifespan starts before any request"
            await self._ready.wait()
        if self._app is None:
            await self._unavailable(scope, receive, send)
            return
        try:
            await self._app(scope, receive, send)
        except Exception as e:
            if not logged(e):
                raise

    def begin_shutdown(self) -> None:
        """The server was told to stop (from its signal handler, on the loop's thread): start the
        application's `begin_shutdown` (app.py: the runs are paused) now, while the open
        connections still get their seconds to finish; its lifespan's shutdown waits for it."""
        begin = self._lifespan.state.get("begin_shutdown") if self._lifespan is not None else None
        if begin is not None and self._stopping is None:
            self._stopping = asyncio.ensure_future(begin())

    def _front_serves(self, scope: Scope) -> bool:
        return any(route.matches(scope)[0] is Match.FULL for route in self._front.router.routes)

    async def _serve_lifespan(self, receive: Receive, send: Send) -> None:
        await receive()  # lifespan.startup
        self._ready = asyncio.Event()
        loading = asyncio.create_task(self._start())
        await send({"type": "lifespan.startup.complete"})  # listen now; the application follows
        await receive()  # lifespan.shutdown
        await loading  # a thread importing torch cannot be interrupted; it takes seconds at most
        if self._lifespan is not None:
            try:
                await self._lifespan.shutdown()
            except Exception:
                log.exception("the application's shutdown failed")
        await send({"type": "lifespan.shutdown.complete"})

    async def _start(self) -> None:
        assert self._ready is not None
        try:
            app = await run_in_own_thread(self._load)
            lifespan = _Lifespan(app)
            await lifespan.startup()
        except Exception:
            self.error_id = new_error_id()
            # a lifespan's failure carries the traceback as its message: it goes to the log only
            log.exception("the application failed to start (error %s)", self.error_id)
            if self._on_failure is not None:
                self._on_failure()
        else:
            self._lifespan, self._app = lifespan, app
            freeze_startup_objects()
        finally:
            self._ready.set()

    async def _unavailable(self, scope: Scope, receive: Receive, send: Send) -> None:
        assert self.error_id is not None
        if scope["type"] == "websocket":
            reason = f"the server failed to start (error {self.error_id})"
            await send({"type": "websocket.close", "code": 1011, "reason": reason})
        elif scope["type"] == "http":
            await failure("the server failed to start", self.error_id, 503)(scope, receive, send)
