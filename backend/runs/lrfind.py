"""A run's learning-rate sweeps (the finder): asked of its worker (one started for it if it has
none), at most `max_sweeps` at once in the server; the last result is stored with the run."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from backend.core.lrfind import LrFindSpec
from backend.runs.scheduler import Scheduler
from backend.runs.table import LiveRun, Table, alive
from backend.runtime.handle import WorkerError
from backend.runtime.wire import CancelSweep
from backend.training.protocol import ConflictError

log = logging.getLogger(__name__)


class LrSweeps:
    def __init__(self, table: Table, scheduler: Scheduler, max_sweeps: int = 2) -> None:
        self.table = table
        self.scheduler = scheduler
        self.max_sweeps = max_sweeps  # learning-rate sweeps at once

    async def start_sweep(self, run_id: str, spec: LrFindSpec) -> None:
        """Start a sweep in the run's worker (one started for it if it has none); returns once it
        is asked. ConflictError if one is already under way, or the server runs max_sweeps."""
        live = await self.table.live(run_id)
        if live.sweep is not None and not live.sweep.done():
            raise ConflictError("a learning-rate sweep is already under way")
        busy = sum(1 for x in self.table.runs.values() if x.sweep is not None and not x.sweep.done())
        if busy >= self.max_sweeps:
            raise ConflictError(f"{busy} learning-rate sweeps are under way; at most {self.max_sweeps} at once")
        async with live.lock:
            if not alive(live.worker):
                await self.scheduler.spawn(live, running=False)
            assert live.worker is not None
            self.scheduler.cancel_idle(live)
            live.sweep = asyncio.ensure_future(live.worker.request(spec))
        live.sweep.add_done_callback(lambda task: self._swept(live, task))

    def _swept(self, live: LiveRun, task: asyncio.Future[Any]) -> None:
        if not task.cancelled() and (e := task.exception()) is not None and not isinstance(e, WorkerError):
            log.error("a learning-rate sweep failed", exc_info=e)
        if not live.training:
            self.scheduler.idle(live)

    async def cancel_sweep(self, run_id: str) -> None:
        live = await self.table.live(run_id)
        if live.sweep is None or live.sweep.done() or live.worker is None:
            raise ConflictError("no learning-rate sweep is under way")
        live.worker.tell(CancelSweep())

    async def last_sweep(self, run_id: str) -> dict[str, Any] | None:
        record = await self.table.record(run_id)
        await asyncio.to_thread(self.table.store.flush)
        return (await asyncio.to_thread(self.table.store.history, record.id)).lrfind
