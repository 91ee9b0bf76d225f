"""Runs come and go: a new run (it trains at once, or waits and gets its step-0 evaluation here),
a branch from one of a run's checkpoints, and a run deleted."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import sqlite3
import time

from backend.runs.events import Events
from backend.runs.reads import Reads
from backend.runs.scheduler import Scheduler
from backend.runs.starts import first_evaluation
from backend.runs.stored import stored_channel
from backend.runs.table import LiveRun, RunNotFoundError, Table
from backend.runtime.openmp import run_in_own_thread
from backend.store.files import CorruptCheckpointError
from backend.store.records import RunRecord
from backend.streaming.channel import Channel
from backend.streaming.messages import event_message
from backend.training.checkpoint import decode
from backend.training.protocol import (
    Cause,
    ConflictError,
    HParamsChanged,
    Status,
    Update,
    check_update,
)
from backend.training.spec import HParams, RunSpec

log = logging.getLogger(__name__)

RUN_DELETED = 4410  # websocket close code: the run was deleted


class Creator:
    def __init__(self, table: Table, scheduler: Scheduler, events: Events, reads: Reads) -> None:
        self.table = table
        self.scheduler = scheduler
        self.events = events
        self.reads = reads
        self._evaluating = asyncio.Lock()  # new runs' step-0 evaluations here: one at a time

    async def create(
        self,
        spec: RunSpec,
        start: bool,
        name: str | None = None,
        parent: tuple[str, int] | None = None,
        sweep_id: str | None = None,
        checkpoint: tuple[int, bytes] | None = None,
        hparams: HParams | None = None,
        by_hand: bool = True,
    ) -> RunRecord:
        """A new run (or a branch: `parent` and the `checkpoint` it starts from). It trains at once
        if `start` (queued while every slot is taken); otherwise it waits without a worker (a new
        run gets its step-0 evaluation here, in the background). A run made by hand (not a sweep's,
        not the default one at start-up) becomes `current`. KeyError: no such dataset."""
        table, store = self.table, self.table.store
        ds = table.datasets.record(spec.dataset)
        if ds is None:
            raise KeyError(spec.dataset)
        spec = spec.model_copy(update={"dataset": ds.id})
        now = time.time()
        record = RunRecord(
            id=secrets.token_hex(6),
            name=name or spec.default_name(None if ds.id == table.datasets.builtin_id else ds.name),
            spec=spec,
            status=Status.PAUSED,
            detail="",
            step=checkpoint[0] if checkpoint is not None else 0,
            hparams=hparams or spec.hparams(),
            created_at=now,
            updated_at=now,
            parent_id=parent[0] if parent else None,
            parent_step=parent[1] if parent else None,
            sweep_id=sweep_id,
        )
        live = LiveRun(record, Channel(record.id))
        live.channel.describe = table.describe(live)
        live.checkpoint = checkpoint
        try:
            await asyncio.to_thread(store.put_run, record, True)
        except sqlite3.IntegrityError:  # the run's one reference: its dataset, deleted since the lookup above
            raise ConflictError(f"dataset {spec.dataset!r} was deleted while the run was being created") from None
        if parent is not None and checkpoint is not None:
            await asyncio.to_thread(store.copy_history, parent[0], record.id, checkpoint[0])
            store.put_checkpoint(record.id, checkpoint[0], checkpoint[1], None, None)
            live.channel = await asyncio.to_thread(stored_channel, store, record)
            live.channel.describe = table.describe(live)
            state = decode(checkpoint[1]).state
            live.record.train_seconds = state.train_seconds
            if record.hparams != state.hparams:
                # the branch's own settings, in its timeline where it leaves its parent's
                change = HParamsChanged(checkpoint[0], record.hparams)
                table.record_change(live, event_message(change))
        table.runs[record.id] = live
        table.went_live += 1
        table.show(live, new=True)
        if by_hand and sweep_id is None:
            table.make_current(live)
        log.info("run %s created (%s)", record.id, spec.model_dump_json())
        if start:
            async with live.lock:
                await self.scheduler.run(live)
        elif checkpoint is None:
            table.spawn_task(self._first_evaluation(live))
        else:  # a branch that waits: its history and checkpoint are stored; nothing to compute
            table.release_if_unused(live)
        return record

    async def _first_evaluation(self, live: LiveRun) -> None:
        """A new run's step-0 evaluation and checkpoint, as its worker would send them (see
        starts.py), unless it got a worker meanwhile (it evaluates itself) or was deleted."""
        r, table = live.record, self.table

        def wanted() -> bool:  # still here, new, and without a worker
            return not table.closing and table.runs.get(r.id) is live and live.worker is None and not live.checkpoint

        async with self._evaluating, live.lock:
            if not wanted():
                return
            dataset = await table.datasets.dataset(r.spec.dataset)
            try:
                said = await run_in_own_thread(first_evaluation, r.spec, dataset, r.hparams, self.scheduler.nice)
            except Exception as e:
                log.exception("run %s: its step-0 evaluation failed", r.id)
                table.set_status(live, Status.PAUSED, f"its step-0 evaluation failed: {e}", Cause.ERROR)
                return
            if not wanted():  # the server is closing
                return
            for msg in said:
                self.events.message(live, msg)
        # like a worker that has been let go: the run leaves memory unless someone uses it. Soon
        # rather than now: a task that waited for the lock takes it first, and keeps the run here
        asyncio.get_running_loop().call_soon(table.release_if_unused, live)

    async def branch(self, run_id: str, step: int | None, update: Update, name: str | None, start: bool) -> RunRecord:
        """A new run that starts from one of this run's checkpoints (the latest by default), with
        its history up to there, and the given changes. KeyError: no checkpoint at that step."""
        store = self.table.store
        parent = await self.table.record(run_id)
        live = self.table.runs.get(parent.id)
        if step is None and live is not None and live.checkpoint is not None:
            found: tuple[int, bytes] | None = live.checkpoint
        else:
            await asyncio.to_thread(store.flush)
            try:
                found = await asyncio.to_thread(store.load_checkpoint, parent.id, step)
            except CorruptCheckpointError:
                raise ConflictError(f"its checkpoint at step {step:,} is damaged; branch from another") from None
        if found is None:
            raise KeyError(step)
        state = (await asyncio.to_thread(decode, found[1])).state
        hparams = state.hparams.merged(update)
        if update.max_steps is None:  # a parent that finished at this step: its branch can take one more
            hparams = hparams.model_copy(update={"max_steps": max(hparams.max_steps, found[0] + 1)})
        if start:
            check_update(Status.PAUSED, found[0], hparams.max_steps, Update(status=Status.RUNNING))
        spec = parent.spec.model_copy(update={"lr": hparams.lr, "batch_size": hparams.batch_size})
        return await self.create(
            spec,
            start,
            name=name or f"from {parent.name} @ step {found[0]:,}",
            parent=(parent.id, found[0]),
            checkpoint=found,
            hparams=hparams,
        )

    async def delete(self, run_id: str) -> None:
        table, store = self.table, self.table.store
        rid = await table.resolve(run_id)
        live = table.runs.get(rid)
        if live is None and await asyncio.to_thread(store.run, rid) is None:
            raise RunNotFoundError(f"no run with id {run_id!r}")
        if live is not None:
            async with live.lock:
                with contextlib.suppress(ValueError):
                    table.queue.remove(rid)
                if live.worker is not None:
                    live.worker.kill()
                    live.worker = None
                was_training, live.training = live.training, False
                live.channel.close(RUN_DELETED, "the run was deleted")
                table.runs.pop(rid, None)
                if was_training:
                    self.scheduler.fill_slots()
        self.reads.models.pop(rid, None)
        await asyncio.to_thread(store.delete_run, rid)
        table.overview.remove(rid)
        if table.current == rid:
            table.current = None  # resolve finds the next one
