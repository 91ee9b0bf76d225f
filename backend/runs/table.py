"""The table of live runs, and what every room of the registry shares through it.

Every run is a record in the store; a run that trains, waits in the queue or has viewers is live
here, with its channel. The table finds runs ("current": see `resolve`), makes them live (their
channel rebuilt from the store), lets them go when nothing uses them, and says how each stands:
its public view, the overview's summary, a status the server decides. The rooms beside it
(scheduler, events, steering, reads, histories, lrfind, sweeps, create) each hold the table.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
import weakref
from collections import deque
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

from backend.runs.datasets import DatasetRegistry
from backend.runs.stored import stored_channel, with_overfit
from backend.runtime.handle import WorkerHandle
from backend.runtime.runtime import Runtime
from backend.store.records import RunRecord
from backend.store.store import Store
from backend.streaming.channel import Channel, Subscriber
from backend.streaming.messages import divergence_public
from backend.streaming.overview import Overview, summary
from backend.training.protocol import Cause, Status, StatusChanged

# records read at once on the event loop: no fewer than the compare view's runs (api/pages.MAX_COMPARED)
RECORDS_ON_LOOP = 20


@dataclass(frozen=True)
class Held:
    """A stopped run's checkpoint that the store keeps in memory, its disk refusing it; and the
    run's detail from before it said so, which it has again once the checkpoint is written."""

    step: int
    detail: str


@dataclass
class LiveRun:
    record: RunRecord
    channel: Channel
    worker: WorkerHandle | None = None
    training: bool = False  # holds a training slot: its worker trains, or is starting to
    checkpoint: tuple[int, bytes] | None = None  # the latest checkpoint its worker sent
    sweeping: bool = False
    idle_since: float | None = None
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    idle_timer: asyncio.TimerHandle | None = None
    sweep: asyncio.Future[Any] | None = None  # a learning-rate sweep asked of its worker
    loss: float | None = None  # the mean minibatch loss of its last steps message
    history_saved: float = -math.inf  # when its bucketed history was last saved (monotonic)
    held: Held | None = None  # its checkpoint at the step it stopped at, not yet written


class RunNotFoundError(KeyError):
    pass


def alive(worker: WorkerHandle | None) -> bool:
    return worker is not None and worker.exited is None and not worker.shutting_down


class Table:
    def __init__(self, store: Store, datasets: DatasetRegistry, runtime: Runtime) -> None:
        self.store = store
        self.datasets = datasets
        self.runtime = runtime
        self.runs: dict[str, LiveRun] = {}
        self.went_live = 0  # runs made live so far: a run's stored history changes only while it is live
        self.loading: dict[str, asyncio.Future[LiveRun]] = {}
        self.queue: deque[str] = deque()  # runs waiting for a training slot (scheduler.py)
        self.followers: set[Subscriber] = set()  # viewers of /ws/runs/current
        # the run a user last created, branched or resumed by hand (never a sweep's); None: see resolve
        self.current: str | None = None
        self.default: asyncio.Task[RunRecord] | None = None  # the first run, being created
        self.closing = False  # shutdown has begun: no run starts any more
        self.tasks: set[asyncio.Task[None]] = set()
        self.overview = Overview()

    # ---- finding runs --------------------------------------------------------------------------------
    async def resolve(self, run_id: str) -> str:
        """ "current" is the run a user last created, branched or resumed by hand; failing that
        (at start-up, or once it is deleted) the newest run outside sweeps, else the newest of all
        (waited for while the first one is being created)."""
        if run_id != "current":
            return run_id
        if self.current is None and self.default is not None:
            with contextlib.suppress(Exception):
                await asyncio.shield(self.default)
        if self.current is None:
            found = await asyncio.to_thread(self.newest_by_hand)
            self.current = self.current or found  # a run made current meanwhile stays so
        if self.current is None:
            raise RunNotFoundError("no runs yet")
        return self.current

    def newest_by_hand(self) -> str | None:
        """The newest run outside sweeps, else the newest run (blocking: store reads, a page of
        runs at a time: sweeps' runs come in dozens, not thousands)."""
        offset = 0
        while page := self.store.runs(None, 200, offset):
            if (found := next((r.id for r in page if r.sweep_id is None), None)) is not None:
                return found
            offset += len(page)
        return self.store.newest_run_id()

    def make_current(self, live: LiveRun) -> None:
        """A user chose this run (created, branched or resumed it): `current` and the viewers of
        /ws/runs/current follow it."""
        if self.current == live.record.id:
            return
        self.current = live.record.id
        for sub in self.followers:
            sub.switch(live.channel)

    async def record(self, run_id: str) -> RunRecord:
        rid = await self.resolve(run_id)
        if (live := self.runs.get(rid)) is not None:
            return live.record
        record = await asyncio.to_thread(self.store.run, rid)
        if record is None:
            raise RunNotFoundError(f"no run with id {run_id!r}")
        return await asyncio.to_thread(with_overfit, self.store, record)

    def records(self, run_ids: list[str]) -> dict[str, RunRecord]:
        """The records of the runs stored under these ids (not "current"), the others left out:
        the live ones' from memory, the rest read here, on the event loop, for a few runs only (the
        compare view's 20: a row each by its key, ~5 ms of CPU while two runs train). A thread hop
        held the view's first answer 0.1-0.45 s, waiting for a core and the GIL."""
        if len(run_ids) > RECORDS_ON_LOOP:
            raise ValueError(f"at most {RECORDS_ON_LOOP} records at once, not {len(run_ids)}")
        found = {rid: live.record for rid in run_ids if (live := self.runs.get(rid)) is not None}
        for rid in run_ids:
            if rid not in found and (record := self.store.run(rid)) is not None:
                found[rid] = with_overfit(self.store, record)
        return found

    def settled(self, rid: str) -> int | None:
        """None while the run is live here (it may train, be steered, be cut back to a
        checkpoint: its stored history may change); else a token that stays the same until any
        run goes live. What was read of a run's history under one token holds while it lasts."""
        return None if rid in self.runs or rid in self.loading else self.went_live

    async def listed(
        self, status: Status | None, limit: int, offset: int, sweep_id: str | None = None
    ) -> list[RunRecord]:
        """Stored runs, newest first; a live run as it stands now."""

        def read() -> list[RunRecord]:
            self.store.flush()  # the statuses and steps still queued
            rows = self.store.runs(status, limit, offset, sweep_id)
            return [r if r.id in self.runs else with_overfit(self.store, r) for r in rows]

        rows = await asyncio.to_thread(read)
        return [self.runs[r.id].record if r.id in self.runs else r for r in rows]

    # ---- live runs -----------------------------------------------------------------------------------
    async def live(self, run_id: str) -> LiveRun:
        """The run, live here (its channel built from the store if it was not)."""
        rid = await self.resolve(run_id)
        if (live := self.runs.get(rid)) is not None:
            return live
        if rid in self.loading:
            return await asyncio.shield(self.loading[rid])
        loading: asyncio.Future[LiveRun] = asyncio.get_running_loop().create_future()
        self.loading[rid] = loading
        try:
            live = await self._load(rid)
            self.runs[rid] = live
            self.went_live += 1
            loading.set_result(live)
            return live
        except BaseException as e:
            loading.set_exception(e)
            loading.exception()  # retrieved: nobody else may be waiting
            raise
        finally:
            del self.loading[rid]

    async def _load(self, rid: str) -> LiveRun:
        record = await asyncio.to_thread(self.store.run, rid)
        if record is None:
            raise RunNotFoundError(f"no run with id {rid!r}")
        live = LiveRun(record, Channel(rid))
        live.channel = await asyncio.to_thread(stored_channel, self.store, record)
        live.channel.describe = self.describe(live)
        return live

    def release_if_unused(self, live: LiveRun) -> None:
        """A run with no worker, no viewers and no place in the queue leaves memory."""
        rid = live.record.id
        unused = live.worker is None and not live.channel.subscribers and rid not in self.queue
        if unused and not live.lock.locked() and self.runs.get(rid) is live:
            del self.runs[rid]

    async def restore(
        self, live: LiveRun, status: Status | None = None, detail: str | None = None, cause: Cause | None = None
    ) -> None:
        """The run cut back to its newest sound checkpoint (Store.cut_to_checkpoint; by default it
        keeps its status and the store says what was lost), its viewers switched to its history as
        stored. The caller holds live.lock."""
        record = await asyncio.to_thread(self.store.cut_to_checkpoint, live.record.id, status, detail, cause)
        if record is None:
            return
        live.record, live.checkpoint, live.held = record, None, None
        channel = await asyncio.to_thread(stored_channel, self.store, record)
        channel.describe = self.describe(live)
        for sub in list(live.channel.subscribers):
            sub.switch(channel)
            sub.resync("interrupted")
        live.channel = channel
        channel.publish(StatusChanged(record.status, record.step, record.detail, record.cause, record.divergence))
        self.show(live)

    def spawn_task(self, work: Coroutine[Any, Any, None]) -> None:
        """Background work of the registry's own, kept referenced until it ends."""
        task = asyncio.create_task(work)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    # ---- what the API shows ------------------------------------------------------------------------------------
    def public(self, live_or_record: LiveRun | RunRecord) -> dict[str, Any]:
        """RunPublic as a dict."""
        if isinstance(live_or_record, LiveRun):
            live: LiveRun | None = live_or_record
            r, worker = live_or_record.record, live_or_record.worker
        else:
            r = live_or_record
            live = self.runs.get(r.id)
            worker = live.worker if live is not None else None
        spec, ds = r.spec, self.datasets.record(r.spec.dataset)
        return {
            "id": r.id,
            "name": r.name,
            "status": r.status.value,
            "detail": r.detail,
            "checkpoint_held": live.held is not None if live is not None else False,
            "cause": r.cause.value if r.cause is not None else None,
            "divergence": divergence_public(r.divergence),
            "step": r.step,
            "config": spec.config().model_dump(mode="json"),
            "hparams": r.hparams.model_dump(mode="json"),
            "dataset": None
            if ds is None
            else {
                "name": ds.name,
                "words": ds.words,
                "vocab_size": ds.vocab_size,
                "train_examples": ds.train_examples,
                "dev_examples": ds.dev_examples,
                "test_examples": ds.test_examples,
            },
            "params": spec.shape(ds.vocab_size if ds is not None else 27).n_params,
            "last_eval": r.last_eval,
            "best_dev_loss": r.best_dev,
            "overfit": r.overfit,
            "test": r.test,
            "train_seconds": round(r.train_seconds, 3),
            "created_at": r.created_at,
            "updated_at": r.updated_at,
            "parent": None if r.parent_id is None else {"id": r.parent_id, "step": r.parent_step},
            "sweep": r.sweep_id,
            "worker": worker.where if worker is not None and worker.exited is None else None,
            "queue_position": self.queue.index(r.id) + 1 if r.id in self.queue else None,
        }

    def describe(self, live: LiveRun) -> Callable[[], dict[str, Any]]:
        """The run's RunPublic, for its channel, which refers to the run weakly: a run that
        leaves memory is freed at once, not at Python's next full collection (fifty runs of a
        burst, each channel ~260 KB, waited for it)."""
        ref, record = weakref.ref(live), live.record
        return lambda: self.public(ref() or record)

    def show(self, live: LiveRun, new: bool = False) -> None:
        """Tell the overview (the runs list, compare views) how the run stands now."""
        self.overview.update(summary(self.public(live), live.loss), new=new)

    def show_queue(self) -> None:
        for rid in self.queue:  # their places changed
            if (queued := self.runs.get(rid)) is not None:
                self.show(queued)

    def set_status(
        self, live: LiveRun, status: Status, detail: str, cause: Cause | None = None, held: Held | None = None
    ) -> None:
        """A status the server decides (queued, and the like), published as a worker's would be;
        `held`: its checkpoint is not yet written (the detail says so to people)."""
        r = live.record
        if cause is not r.cause or status is not r.status:
            r.cause, r.divergence = cause, None
        r.status, r.detail, r.updated_at = status, detail, time.time()
        live.held = held
        self.store.put_run(r)
        live.channel.publish(StatusChanged(status, r.step, detail, cause, r.divergence, held is not None))
        self.show(live)

    def record_change(self, live: LiveRun, msg: dict[str, Any]) -> None:
        """A change of settings, in the run's timeline and the store (merged with the last when close)."""
        change = {k: v for k, v in msg.items() if k != "type"}
        kind = live.channel.timeline.add(change)
        if kind != "same":
            self.store.add_change(live.record.id, live.channel.changes[-1], replace_last=kind == "merged")
