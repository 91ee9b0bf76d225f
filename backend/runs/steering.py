"""Steering a run: its hyperparameters (applied by its worker between two steps, or to its record
when it has none), pause and resume, its name."""

from __future__ import annotations

import contextlib
import time

from backend.runs.scheduler import Scheduler
from backend.runs.table import LiveRun, Table, alive
from backend.runtime.handle import WorkerError, WorkerGoneError
from backend.store.records import RunRecord
from backend.streaming.messages import event_message
from backend.training.protocol import (
    Cause,
    ConflictError,
    HParamsChanged,
    Status,
    Update,
    check_update,
)


class Steering:
    def __init__(self, table: Table, scheduler: Scheduler) -> None:
        self.table = table
        self.scheduler = scheduler

    async def update(self, run_id: str, update: Update, name: str | None = None) -> RunRecord:
        """Change a run: its hyperparameters (applied by its worker between two steps, or to its
        record when it has none), pause or resume it, rename it. Answers once applied. Raises
        ConflictError (409) when its state does not allow the change."""
        try:
            live = await self.table.live(run_id)
        except ValueError as e:  # its stored steps overlap: its history cannot be built to steer it
            raise ConflictError(f"its stored history cannot be read ({e}); the run cannot be changed") from None
        async with live.lock:
            r = live.record
            check_update(r.status, r.step, r.max_steps, update)
            if name is not None:
                r.name = name
                r.updated_at = time.time()
                self.table.store.put_run(r)
                self.table.show(live)
            hp = update.model_copy(update={"status": None})
            if hp.changes_hparams():
                await self._change(live, hp)
            if update.status is Status.RUNNING:
                # resumed by hand (sweeps' runs start in the scheduler): current from the request on,
                # so that a run created while this one starts is not overtaken when it has started
                self.table.make_current(live)
                await self.scheduler.run(live)
            elif update.status is Status.PAUSED:
                await self._pause(live)
            return live.record

    async def _change(self, live: LiveRun, hp: Update) -> None:
        if alive(live.worker):
            assert live.worker is not None
            try:
                await live.worker.ask(hp)
                return
            except WorkerGoneError:
                pass
            except WorkerError as e:
                raise ConflictError(str(e)) from None
        # no worker: the record takes it, and the next worker starts with it
        r = live.record
        r.hparams = r.hparams.merged(hp)
        r.updated_at = time.time()
        self.table.store.put_run(r)
        event = HParamsChanged(r.step, r.hparams)
        self.table.record_change(live, event_message(event))
        live.channel.publish(event)
        self.table.show(live)  # the runs list shows a run's rate now (a worker's change goes through events.py)

    async def _pause(self, live: LiveRun) -> None:
        r = live.record
        if r.status is Status.QUEUED:
            with contextlib.suppress(ValueError):
                self.table.queue.remove(r.id)
            self.table.set_status(live, Status.PAUSED, "paused by a user", Cause.USER)
            self.table.show_queue()
        elif live.worker is not None and live.worker.exited is None and r.status is Status.RUNNING:
            with contextlib.suppress(WorkerError):
                await live.worker.ask(Update(status=Status.PAUSED))
