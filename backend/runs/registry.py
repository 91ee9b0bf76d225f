"""The registry of runs: the one face the routes, the app's lifespan and the tests call. Every
run is a record in the store; a run that trains (or was just asked something) has a worker; a
run that trains or has viewers is live here, with its channel.

It lives on the event loop (built in the app's lifespan) and decides where each run stands:
which train (at most `max_running` at once; the others wait `queued`, first come first served),
which hold a worker (a paused run keeps its worker a short while, then lets it go), what the store
records (every event a worker sends, and its checkpoints), and what the viewers see. The server's
memory holds the live runs only: a run from last week costs nothing until someone opens it.

Each concern has a room of its own, and they share the table of live runs (table.py):
  scheduler.py  training slots, the queue, worker starts, idle workers, shutdown
  events.py     what a worker sends -> the record, the store, the channel
  steering.py   change, pause, resume, rename
  create.py     create, branch (and a new run's step-0 evaluation), delete
  reads.py      reads of a run's model; histories.py  reads of its history
  lrfind.py     a run's learning-rate sweeps; sweeps.py  sweeps of many runs
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from backend.core.lrfind import LrFindSpec
from backend.runs.create import Creator
from backend.runs.datasets import DatasetRegistry
from backend.runs.events import Events
from backend.runs.histories import Histories
from backend.runs.lrfind import LrSweeps
from backend.runs.reads import Reads
from backend.runs.scheduler import Scheduler
from backend.runs.steering import Steering
from backend.runs.sweeps import Sweeps
from backend.runs.table import LiveRun, RunNotFoundError, Table
from backend.runtime.handle import WorkerHandle
from backend.runtime.reads import Answer, Reader
from backend.runtime.runtime import Runtime
from backend.runtime.wire import Read, WorkerMessage
from backend.store.records import CheckpointRecord, RunRecord, SweepRecord
from backend.store.store import Store
from backend.streaming.channel import Subscriber
from backend.streaming.export import HistoryData
from backend.streaming.overview import KEPT as OVERVIEW_KEPT
from backend.streaming.overview import Overview, summary
from backend.training.protocol import Status, Update
from backend.training.spec import HParams, RunSpec

__all__ = ["LiveRun", "RunNotFoundError", "RunRegistry"]

log = logging.getLogger(__name__)


class RunRegistry:
    def __init__(
        self,
        store: Store,
        datasets: DatasetRegistry,
        runtime: Runtime,
        max_running: int,
        threads: int | None = None,
        max_sweeps: int = 2,
        nice: int = 0,
    ) -> None:
        self.store = store
        self.datasets = datasets
        self.runtime = runtime
        self.table = Table(store, datasets, runtime)
        self.scheduler = Scheduler(self.table, self._received, max_running, threads, nice)
        self.events = Events(self.table, self.scheduler)
        self.steering = Steering(self.table, self.scheduler)
        self.reads = Reads(self.table)
        self.history = Histories(self.table)
        self.lrfind = LrSweeps(self.table, self.scheduler, max_sweeps)
        self.creator = Creator(self.table, self.scheduler, self.events, self.reads)
        self.sweeps = Sweeps(self.table, self.creator, self.steering)
        self._stopping: asyncio.Future[None] | None = None

    @property
    def max_running(self) -> int:
        return self.scheduler.max_running

    @property
    def overview(self) -> Overview:
        return self.table.overview

    def _received(self, live: LiveRun, worker: WorkerHandle, msg: WorkerMessage) -> None:
        self.events.received(live, worker, msg)

    # ---- start-up and shutdown -----------------------------------------------------------------------
    async def open(self, default: RunSpec | None) -> None:
        """Recover from a crash (runs that were training are `interrupted`), find the newest run,
        and, when there is none at all, create `default` (in the background)."""
        loop = asyncio.get_running_loop()
        self.store.on_checkpoint = lambda *a: loop.call_soon_threadsafe(self.events.checkpoint_stored, *a)
        changed = await asyncio.to_thread(self.store.recover)
        for r in changed:
            log.info("run %s: %s", r.id, r.detail)
        newest = await asyncio.to_thread(self.store.runs, None, OVERVIEW_KEPT, 0)
        self.overview.load([summary(self.public(r), None) for r in newest])
        if await asyncio.to_thread(self.store.newest_run_id) is None and default is not None:
            self.table.default = asyncio.create_task(self.creator.create(default, False, by_hand=False))

    async def stop_runs(self) -> None:
        """Shutdown's first half, begun as soon as the server is told to stop (SIGTERM, Ctrl-C),
        while it still lets its open connections finish: nothing starts from now on, every worker
        checkpoints and goes (a running run is `paused`, saying why), queued runs are paused.
        Bounded by SHUTDOWN_SECONDS; the same work however often it is asked for."""
        if self._stopping is None:
            self._stopping = asyncio.ensure_future(self.scheduler.stop())
        await asyncio.shield(self._stopping)

    async def close(self) -> None:
        """Stop the runs (if that has not begun yet), then commit and close the store."""
        await self.stop_runs()
        for live in self.table.runs.values():
            self.store.put_run(live.record)
        await asyncio.to_thread(self.store.close)

    # ---- finding runs (table.py) ---------------------------------------------------------------------
    async def resolve(self, run_id: str) -> str:
        return await self.table.resolve(run_id)

    async def record(self, run_id: str) -> RunRecord:
        return await self.table.record(run_id)

    def records(self, run_ids: list[str]) -> dict[str, RunRecord]:
        return self.table.records(run_ids)

    def settled(self, rid: str) -> int | None:
        return self.table.settled(rid)

    async def live(self, run_id: str) -> LiveRun:
        return await self.table.live(run_id)

    async def runs(
        self, status: Status | None, limit: int, offset: int, sweep_id: str | None = None
    ) -> list[RunRecord]:
        return await self.table.listed(status, limit, offset, sweep_id)

    def public(self, live_or_record: LiveRun | RunRecord) -> dict[str, Any]:
        return self.table.public(live_or_record)

    # ---- creating, steering, deleting (create.py, steering.py) --------------------------------------
    async def create(
        self,
        spec: RunSpec,
        start: bool,
        name: str | None = None,
        parent: tuple[str, int] | None = None,
        sweep_id: str | None = None,
        checkpoint: tuple[int, bytes] | None = None,
        hparams: HParams | None = None,
    ) -> RunRecord:
        return await self.creator.create(spec, start, name, parent, sweep_id, checkpoint, hparams)

    async def branch(self, run_id: str, step: int | None, update: Update, name: str | None, start: bool) -> RunRecord:
        return await self.creator.branch(run_id, step, update, name, start)

    async def update(self, run_id: str, update: Update, name: str | None = None) -> RunRecord:
        return await self.steering.update(run_id, update, name)

    async def delete(self, run_id: str) -> None:
        await self.creator.delete(run_id)

    # ---- viewers -------------------------------------------------------------------------------------
    async def subscribe(self, run_id: str) -> Subscriber:
        follow = run_id == "current"
        live = await self.table.live(run_id)
        sub = Subscriber(live.channel, follow)
        if follow:
            self.table.followers.add(sub)
        return sub

    def unsubscribe(self, sub: Subscriber) -> None:
        self.table.followers.discard(sub)
        sub.close()
        for live in list(self.table.runs.values()):
            if live.channel is sub.channel:
                self.table.release_if_unused(live)

    # ---- reads of the model and of the history (reads.py, histories.py) -----------------------------
    async def read(self, run_id: str, read: Read) -> Answer:
        return await self.reads.read(run_id, read)

    async def stored_model(self, record: RunRecord) -> tuple[Any, Reader, int]:
        return await self.reads.stored_model(record)

    async def set_test(self, run_id: str, test: dict[str, Any]) -> None:
        await self.reads.set_test(run_id, test)

    async def checkpoints(self, run_id: str) -> list[CheckpointRecord]:
        return await self.history.checkpoints(run_id)

    def live_history(self, run_id: str) -> HistoryData | None:
        return self.history.live_history(run_id)

    async def history_data(self, record: RunRecord) -> HistoryData:
        return await self.history.history_data(record)

    async def histories(self, records: list[RunRecord], buckets: bool = False) -> list[HistoryData]:
        return await self.history.histories(records, buckets)

    # ---- learning-rate sweeps of a run (lrfind.py) ---------------------------------------------------
    async def start_sweep(self, run_id: str, spec: LrFindSpec) -> None:
        await self.lrfind.start_sweep(run_id, spec)

    async def cancel_sweep(self, run_id: str) -> None:
        await self.lrfind.cancel_sweep(run_id)

    async def last_sweep(self, run_id: str) -> dict[str, Any] | None:
        return await self.lrfind.last_sweep(run_id)

    # ---- sweeps of many runs (sweeps.py) -------------------------------------------------------------
    async def create_sweep(
        self, base: RunSpec, grid: dict[str, list[Any]], name: str | None, request: dict[str, Any]
    ) -> tuple[SweepRecord, list[RunRecord]]:
        return await self.sweeps.create_sweep(base, grid, name, request)

    async def sweep(self, sweep_id: str) -> tuple[SweepRecord, list[RunRecord]]:
        return await self.sweeps.sweep(sweep_id)

    async def sweep_list(self, limit: int, offset: int) -> list[tuple[SweepRecord, list[RunRecord]]]:
        return await self.sweeps.sweep_list(limit, offset)

    async def stop_sweep(self, sweep_id: str) -> None:
        await self.sweeps.stop_sweep(sweep_id)
