"""The registry of runs: every run is a record in the store; a run that trains (or was just asked
something) has a worker; a run that trains or has viewers is live here, with its channel.

It lives on the event loop (built in the app's lifespan). It decides where each run stands:
which train (at most `max_running` at once; the others wait `queued`, first come first served),
which hold a worker (a paused run keeps its worker a short while, then lets it go), what the store
records (every event a worker sends, and its checkpoints), and what the viewers see. The server's
memory holds the live runs only: a run from last week costs nothing until someone opens it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import secrets
import sqlite3
import time
import weakref
from collections import OrderedDict, deque
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field, replace
from typing import Any, cast

from backend.core.embeddings import embedding_map
from backend.core.lrfind import LrFindSpec
from backend.runtime.handle import WorkerError, WorkerGoneError, WorkerHandle
from backend.runtime.reads import Answer, Reader
from backend.runtime.runtime import Runtime
from backend.runtime.wire import CancelSweep, CheckpointData, Exited, Read, Ready, WorkerInit, WorkerMessage
from backend.server import sweeps
from backend.server.channel import Channel, Subscriber
from backend.server.datasets import DatasetRegistry
from backend.server.export import HistoryData
from backend.server.history import LossHistory
from backend.server.messages import (
    divergence_public,
    embeddings_message,
    eval_row,
    event_message,
    finite,
    hparams_public,
    lrfind_message,
)
from backend.server.openmp import run_in_own_thread
from backend.server.overview import KEPT as OVERVIEW_KEPT
from backend.server.overview import Overview, summary
from backend.server.starts import StartPool, first_evaluation
from backend.store.files import CorruptCheckpointError
from backend.store.records import CheckpointRecord, Eval, RunRecord, SweepRecord
from backend.store.store import Store
from backend.training.checkpoint import decode
from backend.training.protocol import (
    Cause,
    ConflictError,
    EmbeddingsChanged,
    EvalResult,
    HParams,
    HParamsChanged,
    LrFindDone,
    LrFindProgress,
    LrFindStarted,
    NoiseEstimate,
    SetThreads,
    Status,
    StatusChanged,
    Steps,
    Update,
    check_update,
)
from backend.training.spec import RunSpec, schedule_of

log = logging.getLogger(__name__)

IDLE_WORKERS = 4  # at most this many workers wait without training; the oldest go first
HELD_NOTE = "; its checkpoint is not yet written"  # a stopped run's detail while the store holds it
SHUTDOWN_SECONDS = 3.0  # at shutdown, workers get this long to checkpoint and go
RUN_DELETED = 4410  # websocket close code: the run was deleted
CACHED_MODELS = 4  # runs without a worker whose weights stay loaded for reads
# past the steps stored one by one, a run's bucketed history (~260 KB) is saved with a checkpoint
# at most this often while it trains, and with the checkpoint it stops at: a dying worker's run
# loses at most this long of its chart (a gap)
HISTORY_SAVE_SECONDS = 10.0
# records read at once on the event loop: no fewer than the compare view's runs (api/pages.MAX_COMPARED)
RECORDS_ON_LOOP = 20


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


class RunNotFoundError(KeyError):
    pass


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
        self.max_running = max_running
        self.threads = threads  # torch threads all training workers together may use (None: the runtime's)
        self.max_sweeps = max_sweeps  # learning-rate sweeps at once
        self.nice = nice  # added to each worker's niceness
        self._live: dict[str, LiveRun] = {}
        self._went_live = 0  # runs made live so far: a run's stored history changes only while it is live
        self._loading: dict[str, asyncio.Future[LiveRun]] = {}
        self._queue: deque[str] = deque()
        self._followers: set[Subscriber] = set()  # viewers of /ws/runs/current
        self._newest: str | None = None
        # reads from checkpoints: run id -> (its record's step, model, reader, the step of the weights)
        self._models: OrderedDict[str, tuple[int, Any, Reader, int]] = OrderedDict()
        self._default: asyncio.Task[RunRecord] | None = None
        self._closing = False  # shutdown has begun: no run starts any more
        self._stopping: asyncio.Future[None] | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self.overview = Overview()
        self._starts = StartPool(runtime.cpus())  # workers starting at once, at most
        self._evaluating = asyncio.Lock()  # new runs' step-0 evaluations here: one at a time

    # ---- start-up and shutdown -----------------------------------------------------------------------
    async def open(self, default: RunSpec | None) -> None:
        """Recover from a crash (runs that were training are `interrupted`), find the newest run,
        and, when there is none at all, create `default` (in the background)."""
        loop = asyncio.get_running_loop()
        self.store.on_checkpoint = lambda *a: loop.call_soon_threadsafe(self._checkpoint_stored, *a)
        changed = await asyncio.to_thread(self.store.recover)
        for r in changed:
            log.info("run %s: %s", r.id, r.detail)
        self._newest = await asyncio.to_thread(self.store.newest_run_id)
        newest = await asyncio.to_thread(self.store.runs, None, OVERVIEW_KEPT, 0)
        self.overview.load([summary(self.public(r), None) for r in newest])
        if self._newest is None and default is not None:
            self._default = asyncio.create_task(self.create(default, start=False))

    async def stop_runs(self) -> None:
        """Shutdown's first half, begun as soon as the server is told to stop (SIGTERM, Ctrl-C),
        while it still lets its open connections finish: nothing starts from now on, every worker
        checkpoints and goes (a running run is `paused`, saying why), queued runs are paused.
        Bounded by SHUTDOWN_SECONDS; the same work however often it is asked for."""
        if self._stopping is None:
            self._stopping = asyncio.ensure_future(self._stop_runs())
        await asyncio.shield(self._stopping)

    async def close(self) -> None:
        """Stop the runs (if that has not begun yet), then commit and close the store."""
        await self.stop_runs()
        for live in self._live.values():
            self.store.put_run(live.record)
        await asyncio.to_thread(self.store.close)

    async def _stop_runs(self) -> None:
        self._closing = True
        self.overview.close()
        if self._default is not None:
            self._default.cancel()
        for rid in list(self._queue):
            live = self._live.get(rid)
            if live is not None:
                self._set_status(
                    live, Status.PAUSED, "it was waiting in the queue when the server stopped", Cause.SERVER_STOPPED
                )
        self._queue.clear()
        workers = [live.worker for live in self._live.values() if live.worker is not None]
        for w in workers:
            w.shutdown("paused: the server shut down")
        deadline = time.monotonic() + SHUTDOWN_SECONDS
        while any(w.exited is None for w in workers) and time.monotonic() < deadline:
            await asyncio.sleep(0.02)  # poll: each Exited arrives through the loop
        for w in workers:
            if w.exited is None:
                log.warning("a worker did not stop in time; killing it")
                w.kill()

    # ---- finding runs --------------------------------------------------------------------------------
    async def resolve(self, run_id: str) -> str:
        """ "current" is the newest run (waited for while the first one is being created)."""
        if run_id != "current":
            return run_id
        if self._newest is None and self._default is not None:
            with contextlib.suppress(Exception):
                await asyncio.shield(self._default)
        if self._newest is None:
            raise RunNotFoundError("no runs yet")
        return self._newest

    async def record(self, run_id: str) -> RunRecord:
        rid = await self.resolve(run_id)
        if (live := self._live.get(rid)) is not None:
            return live.record
        record = await asyncio.to_thread(self.store.run, rid)
        if record is None:
            raise RunNotFoundError(f"no run with id {run_id!r}")
        return record

    def records(self, run_ids: list[str]) -> dict[str, RunRecord]:
        """The records of the runs stored under these ids (not "current"), the others left out:
        the live ones' from memory, the rest read here, on the event loop, for a few runs only (the
        compare view's 20: a row each by its key, ~5 ms of CPU while two runs train). A thread hop
        held the view's first answer 0.1-0.45 s, waiting for a core and the GIL."""
        if len(run_ids) > RECORDS_ON_LOOP:
            raise ValueError(f"at most {RECORDS_ON_LOOP} records at once, not {len(run_ids)}")
        found = {rid: live.record for rid in run_ids if (live := self._live.get(rid)) is not None}
        for rid in run_ids:
            if rid not in found and (record := self.store.run(rid)) is not None:
                found[rid] = record
        return found

    def settled(self, rid: str) -> int | None:
        """None while the run is live here (it may train, be steered, be cut back to a
        checkpoint: its stored history may change); else a token that stays the same until any
        run goes live. What was read of a run's history under one token holds while it lasts."""
        return None if rid in self._live or rid in self._loading else self._went_live

    async def live(self, run_id: str) -> LiveRun:
        """The run, live here (its channel built from the store if it was not)."""
        rid = await self.resolve(run_id)
        if (live := self._live.get(rid)) is not None:
            return live
        if rid in self._loading:
            return await asyncio.shield(self._loading[rid])
        loading: asyncio.Future[LiveRun] = asyncio.get_running_loop().create_future()
        self._loading[rid] = loading
        try:
            live = await self._load(rid)
            self._live[rid] = live
            self._went_live += 1
            loading.set_result(live)
            return live
        except BaseException as e:
            loading.set_exception(e)
            loading.exception()  # retrieved: nobody else may be waiting
            raise
        finally:
            del self._loading[rid]

    async def _load(self, rid: str) -> LiveRun:
        record = await asyncio.to_thread(self.store.run, rid)
        if record is None:
            raise RunNotFoundError(f"no run with id {rid!r}")
        live = LiveRun(record, Channel(rid))
        live.channel = await asyncio.to_thread(self._stored_channel, record)
        live.channel.describe = lambda: self.public(live)
        return live

    def _stored_channel(self, record: RunRecord) -> Channel:
        """A channel as the run left it: its history, evaluations, changes, last sweep and the
        embedding map of its latest weights. Blocking (store reads)."""
        self.store.flush()  # writes still queued for this run
        ch = Channel(record.id)
        ch.history = self._step_history(record)
        h = self.store.history(record.id)
        ch.evals = [eval_row(*e) for e in h.evals]
        ch.timeline.changes = h.changes
        if h.lrfind is not None:
            ch.lrfind = {k: v for k, v in h.lrfind.items() if k not in ("lr", "loss", "smoothed")}
        found = self.store.load_checkpoint(record.id)
        if found is not None:
            ck = decode(found[1])
            m = embedding_map(ck.state.model.C)
            ch.embeddings = embeddings_message(found[0], ck.vocab, m.x, m.y, m.method)
        return ch

    def _step_history(self, record: RunRecord) -> LossHistory:
        """The run's steps, bucketed as a channel keeps them: its stored steps, or past them its
        saved buckets (_saved_buckets); without those (saved by a version that did not, or
        damaged), the stored steps and a gap up to its step. Blocking (store reads)."""
        past = record.step > self.store.max_stored_steps  # the stored steps cannot reach its step
        # then the saved buckets are the history: reading and folding 2,000,000 stored steps
        # first, to drop them, took ~0.1 s of CPU
        saved = self._saved_buckets(record) if past else None
        if saved is not None:
            return saved
        history = LossHistory()
        for chunk in self.store.steps(record.id, upto=record.step):
            history.extend(chunk.first, chunk.losses, chunk.lrs, chunk.time_end)  # arrays: no list round trip
        if history.n_steps < record.step:  # short of its step: the saved buckets (unless just read)
            saved = None if past else self._saved_buckets(record)
            if saved is not None:
                return saved
            log.warning("run %s: no saved history past step %d; its chart has a gap", record.id, history.n_steps)
            history.skip_to(record.step, record.train_seconds)
        return history

    def _release_if_unused(self, live: LiveRun) -> None:
        """A run with no worker, no viewers and no place in the queue leaves memory."""
        rid = live.record.id
        unused = live.worker is None and not live.channel.subscribers and rid not in self._queue
        if unused and not live.lock.locked() and self._live.get(rid) is live:
            del self._live[rid]

    async def runs(
        self, status: Status | None, limit: int, offset: int, sweep_id: str | None = None
    ) -> list[RunRecord]:
        """Stored runs, newest first; a live run as it stands now."""

        def read() -> list[RunRecord]:
            self.store.flush()  # the statuses and steps still queued
            return self.store.runs(status, limit, offset, sweep_id)

        rows = await asyncio.to_thread(read)
        return [self._live[r.id].record if r.id in self._live else r for r in rows]

    # ---- what the API shows ---------------------------------------------------------------------------------------
    def public(self, live_or_record: LiveRun | RunRecord) -> dict[str, Any]:
        """RunPublic as a dict."""
        if isinstance(live_or_record, LiveRun):
            r, worker = live_or_record.record, live_or_record.worker
        else:
            r = live_or_record
            live = self._live.get(r.id)
            worker = live.worker if live is not None else None
        spec, ds = r.spec, self.datasets.record(r.spec.dataset)
        return {
            "id": r.id,
            "name": r.name,
            "status": r.status.value,
            "detail": r.detail,
            "cause": r.cause.value if r.cause is not None else None,
            "divergence": divergence_public(r.divergence),
            "step": r.step,
            "config": {
                "block_size": spec.block_size,
                "n_embd": spec.n_embd,
                "n_hidden": spec.n_hidden,
                "seed": spec.seed,
                "max_steps": r.max_steps,
                "init": spec.init,
                "optimizer": spec.optimizer,
                "momentum": spec.momentum if spec.optimizer == "momentum" else None,
                "dataset": spec.dataset,
            },
            "hparams": hparams_public(r.hparams),
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
            "test": r.test,
            "train_seconds": round(r.train_seconds, 3),
            "created_at": r.created_at,
            "updated_at": r.updated_at,
            "parent": None if r.parent_id is None else {"id": r.parent_id, "step": r.parent_step},
            "sweep": r.sweep_id,
            "worker": worker.where if worker is not None and worker.exited is None else None,
            "queue_position": self._queue.index(r.id) + 1 if r.id in self._queue else None,
        }

    # ---- creating ------------------------------------------------------------------------------------
    async def create(
        self,
        spec: RunSpec,
        start: bool,
        name: str | None = None,
        parent: tuple[str, int] | None = None,
        sweep_id: str | None = None,
        checkpoint: tuple[int, bytes] | None = None,
        hparams: HParams | None = None,
        max_steps: int | None = None,
    ) -> RunRecord:
        """A new run (or a branch: `parent` and the `checkpoint` it starts from). It trains at once
        if `start` (queued while every slot is taken); otherwise it waits without a worker (a new
        run gets its step-0 evaluation here, in the background). KeyError: no such dataset."""
        ds = self.datasets.record(spec.dataset)
        if ds is None:
            raise KeyError(spec.dataset)
        spec = spec.model_copy(update={"dataset": ds.id})
        now = time.time()
        record = RunRecord(
            id=secrets.token_hex(6),
            name=name or spec.default_name(),
            spec=spec,
            status=Status.PAUSED,
            detail="",
            step=checkpoint[0] if checkpoint is not None else 0,
            hparams=hparams or HParams(spec.lr, spec.batch_size, spec.eval_every, schedule_of(spec.schedule)),
            max_steps=max_steps or spec.max_steps,
            created_at=now,
            updated_at=now,
            parent_id=parent[0] if parent else None,
            parent_step=parent[1] if parent else None,
            sweep_id=sweep_id,
        )
        live = LiveRun(record, Channel(record.id))
        live.channel.describe = self._describe(live)
        live.checkpoint = checkpoint
        try:
            await asyncio.to_thread(self.store.put_run, record, True)
        except sqlite3.IntegrityError:  # the run's one reference: its dataset, deleted since the lookup above
            raise ConflictError(f"dataset {spec.dataset!r} was deleted while the run was being created") from None
        if parent is not None and checkpoint is not None:
            await asyncio.to_thread(self.store.copy_history, parent[0], record.id, checkpoint[0])
            self.store.put_checkpoint(record.id, checkpoint[0], checkpoint[1], None, None)
            live.channel = await asyncio.to_thread(self._stored_channel, record)
            live.channel.describe = self._describe(live)
            state = decode(checkpoint[1]).state
            live.record.train_seconds = state.train_seconds
            if (record.hparams, record.max_steps) != (state.hparams, state.max_steps):
                # the branch's own settings, in its timeline where it leaves its parent's
                change = HParamsChanged(checkpoint[0], record.hparams, record.max_steps)
                self._record_change(live, event_message(change))
        self._live[record.id] = live
        self._went_live += 1
        self._newest = record.id
        self._show(live, new=True)
        for sub in self._followers:
            sub.switch(live.channel)
        log.info("run %s created (%s)", record.id, spec.model_dump_json())
        if start:
            async with live.lock:
                await self._run(live)
        elif checkpoint is None:
            self._spawn_task(self._first_evaluation(live))
        else:  # a branch that waits: its history and checkpoint are stored; nothing to compute
            self._release_if_unused(live)
        return record

    async def _first_evaluation(self, live: LiveRun) -> None:
        """A new run's step-0 evaluation and checkpoint, as its worker would send them (see
        starts.py), unless it got a worker meanwhile (it evaluates itself) or was deleted."""
        r = live.record

        def wanted() -> bool:  # still here, new, and without a worker
            return not self._closing and self._live.get(r.id) is live and live.worker is None and not live.checkpoint

        async with self._evaluating, live.lock:
            if not wanted():
                return
            dataset = await self.datasets.dataset(r.spec.dataset)
            try:
                said = await run_in_own_thread(first_evaluation, r.spec, dataset, r.hparams, r.max_steps, self.nice)
            except Exception as e:
                log.exception("run %s: its step-0 evaluation failed", r.id)
                self._set_status(live, Status.PAUSED, f"its step-0 evaluation failed: {e}", Cause.ERROR)
                return
            if not wanted():  # the server is closing
                return
            for msg in said:
                self._message(live, msg)
        # like a worker that has been let go: the run leaves memory unless someone uses it. Soon
        # rather than now: a task that waited for the lock takes it first, and keeps the run here
        asyncio.get_running_loop().call_soon(self._release_if_unused, live)

    def _describe(self, live: LiveRun) -> Callable[[], dict[str, Any]]:
        """The run's RunPublic, for its channel, which refers to the run weakly: a run that
        leaves memory is freed at once, not at Python's next full collection (fifty runs of a
        burst, each channel ~260 KB, waited for it)."""
        ref, record = weakref.ref(live), live.record
        return lambda: self.public(ref() or record)

    def _spawn_task(self, work: Coroutine[Any, Any, None]) -> None:
        """Background work of the registry's own, kept referenced until it ends."""
        task = asyncio.create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _show(self, live: LiveRun, new: bool = False) -> None:
        """Tell the overview (the runs list, compare views) how the run stands now."""
        self.overview.update(summary(self.public(live), live.loss), new=new)

    # ---- training slots ------------------------------------------------------------------------------
    def _training(self) -> int:
        return sum(1 for live in self._live.values() if live.training)

    async def _run(self, live: LiveRun) -> None:
        """Make the run train now, or queue it. The caller holds live.lock."""
        if self._closing:
            raise ConflictError("the server is shutting down: the run stays as it is")
        if live.training:
            return
        if self._training() >= self.max_running:
            if live.record.id not in self._queue:
                self._queue.append(live.record.id)
            self._set_status(live, Status.QUEUED, f"waiting for a free slot ({self.max_running} train at once)")
            return
        live.training = True
        self._rebalance_threads()
        if self._alive(live.worker):
            assert live.worker is not None
            try:
                await live.worker.ask(Update(status=Status.RUNNING))
                return
            except WorkerGoneError:
                pass  # it died meanwhile: a new one follows
            except WorkerError as e:
                live.training = False
                raise ConflictError(str(e)) from None
        await self._spawn(live, running=True)

    @staticmethod
    def _alive(worker: WorkerHandle | None) -> bool:
        return worker is not None and worker.exited is None and not worker.shutting_down

    def _fill_slots(self) -> None:
        """Start queued runs while slots are free (first come, first served)."""
        if self._closing:
            return
        while self._queue and self._training() < self.max_running:
            live = self._live.get(self._queue.popleft())
            if live is None or live.record.status is not Status.QUEUED:
                continue
            live.training = True
            self._spawn_task(self._start_queued(live))
        self._show_queue()

    def _show_queue(self) -> None:
        for rid in self._queue:  # their places changed
            if (queued := self._live.get(rid)) is not None:
                self._show(queued)

    async def _start_queued(self, live: LiveRun) -> None:
        async with live.lock:
            live.training = False
            try:
                await self._run(live)
            except Exception as e:
                log.exception("run %s could not start", live.record.id)
                self._set_status(live, Status.PAUSED, f"could not start: {e}", Cause.ERROR)

    def _share(self) -> int:
        """Torch threads for each training worker's big batches: the cores shared among the runs
        that train, never more in all than there are (oversubscribed OpenMP threads cost 5x)."""
        training = max(1, self._training())
        return max(1, self.threads // training) if self.threads else self.runtime.share(training)

    def _rebalance_threads(self) -> None:
        share = self._share()
        for live in self._live.values():
            if live.worker is not None and live.training:
                live.worker.tell(SetThreads(share))

    def _threads_for(self, live: LiveRun) -> int:
        return self._share() if live.training else 1

    # ---- workers -------------------------------------------------------------------------------------
    async def _spawn(self, live: LiveRun, running: bool) -> None:
        """Start a worker for the run, from its latest checkpoint. The caller holds live.lock."""
        r = live.record
        self._cancel_idle(live)
        try:
            dataset = await self.datasets.dataset(r.spec.dataset)
            checkpoint = live.checkpoint
            if checkpoint is None and (r.step > 0 or r.parent_id is not None or r.last_eval is not None):
                checkpoint = await asyncio.to_thread(self.store.load_checkpoint, r.id)
                if (checkpoint[0] if checkpoint is not None else 0) != r.step:
                    # its checkpoint at its step was damaged (or lost) since it stopped: training on
                    # from an older one over the history to its step would break that history
                    if self.store.health.failed:  # or it is held in memory, not lost: no cut
                        why = self.store.health.state().get("reason", "the disk refuses writes")
                        raise ConflictError(f"its checkpoint at step {r.step:,} is not written yet ({why})")
                    live.training = False
                    await self._restore(live)
                    raise ConflictError(f"{live.record.detail}; resume it again to train on from there")
        except (KeyError, ConflictError) as e:
            live.training = False  # it never started
            self._fill_slots()
            if isinstance(e, KeyError):
                raise ConflictError(f"its dataset {r.spec.dataset} is not stored any more") from None
            raise
        init = WorkerInit(
            run_id=r.id,
            spec=r.spec,
            dataset_name=dataset.name,
            words=dataset.words,
            checkpoint=checkpoint[1] if checkpoint is not None else None,
            hparams=r.hparams,
            max_steps=r.max_steps,
            threads=self._threads_for(live),
            running=running,
            nice=self.nice,
        )
        slot = await self._starts.slot()  # a burst of starts takes turns (starts.py)

        def deliver(msg: WorkerMessage) -> None:
            slot.seen(msg)
            self._received(live, worker, msg)

        worker = self.runtime.worker(deliver)
        live.worker = worker
        if running:
            self._set_status(live, Status.RUNNING, "starting")
        try:
            await worker.start(init)
        except BaseException as e:
            slot.release()
            if not isinstance(e, Exception):
                raise
            live.worker, live.training = None, False
            log.exception("run %s: the worker did not start", r.id)
            self._set_status(live, Status.PAUSED, f"could not start a worker: {e}", Cause.ERROR)
            self._fill_slots()
            raise
        if not running:  # it evaluates where it stands, checkpoints, and waits: idle from now on
            self._idle(live)

    def _received(self, live: LiveRun, worker: WorkerHandle, msg: WorkerMessage) -> None:
        """Everything a worker sends, on the loop, in order."""
        if live.worker is not worker:
            return  # an old worker's last words
        self._message(live, msg)

    def _message(self, live: LiveRun, msg: WorkerMessage) -> None:
        r, ch = live.record, live.channel
        match msg:
            case Steps():
                self._steps(live, msg)
            case EvalResult():
                self._evaluated(live, msg)
            case NoiseEstimate():
                if r.last_eval is not None and r.last_eval["step"] == msg.step:
                    r.last_eval["b_noise"] = finite(msg.b_noise, 1)
                self.store.set_noise(r.id, msg.step, msg.b_noise)
                ch.publish(msg)
            case HParamsChanged():
                r.hparams, r.max_steps = msg.hparams, msg.max_steps
                self._record_change(live, event_message(msg))
                ch.publish(msg)
                self._show(live)
            case StatusChanged():
                self._status_changed(live, msg)
            case LrFindStarted():
                live.sweeping = True
                ch.publish(msg)
            case LrFindDone():
                live.sweeping = False
                result = lrfind_message(msg.result)
                self.store.add_lrfind(r.id, {k: v for k, v in result.items() if k != "type"})
                ch.publish(msg)
            case CheckpointData():
                live.checkpoint = (msg.step, msg.data)
                if ch.history.n_steps > self.store.max_stored_steps:  # the buckets are all there is of steps past it
                    self._save_history(live)
                e = r.last_eval if r.last_eval is not None and r.last_eval["step"] == msg.step else None
                self.store.put_checkpoint(
                    r.id, msg.step, msg.data, e["train_loss"] if e else None, e["dev_loss"] if e else None
                )
                r.updated_at = time.time()
                self.store.put_run(r)
            case Ready():
                log.info("run %s trains in %s", r.id, msg.where)
            case Exited():
                self._worker_exited(live, msg)
            case EmbeddingsChanged() | LrFindProgress():
                ch.publish(msg)

    def _save_history(self, live: LiveRun) -> None:
        """The run's buckets, queued before its checkpoint (committed with it or sooner): when it
        stops, or HISTORY_SAVE_SECONDS after the last time while it trains."""
        now = time.monotonic()
        if live.record.status is not Status.RUNNING or now - live.history_saved >= HISTORY_SAVE_SECONDS:
            self.store.put_history_blob(live.record.id, live.channel.history.to_bytes())
            live.history_saved = now

    def _steps(self, live: LiveRun, msg: Steps) -> None:
        r = live.record
        r.step = msg.first + len(msg.losses)
        r.train_seconds = msg.time
        finite_losses = [x for x in msg.losses if math.isfinite(x)]
        live.loss = round(sum(finite_losses) / len(finite_losses), 4) if finite_losses else None
        self.store.add_steps(r.id, msg.first, msg.losses, msg.lrs, msg.batch_size, msg.time)
        live.channel.publish(msg)
        self._show(live)

    def _evaluated(self, live: LiveRun, msg: EvalResult) -> None:
        r = live.record
        r.last_eval = {
            "step": msg.step,
            "train_loss": finite(msg.train_loss, 6),
            "dev_loss": finite(msg.dev_loss, 6),
            "b_noise": None,
        }
        dev = r.last_eval["dev_loss"]
        if dev is not None and (r.best_dev is None or dev < r.best_dev):
            r.best_dev = dev
        self.store.add_eval(r.id, msg.step, msg.train_loss, msg.dev_loss)
        live.channel.publish(msg)
        self._show(live)

    def _record_change(self, live: LiveRun, msg: dict[str, Any]) -> None:
        change = {k: v for k, v in msg.items() if k != "type"}
        kind = live.channel.timeline.add(change)
        if kind != "same":
            self.store.add_change(live.record.id, live.channel.changes[-1], replace_last=kind == "merged")

    def _status_changed(self, live: LiveRun, msg: StatusChanged) -> None:
        r = live.record
        if self._closing and msg.cause is Cause.STOPPED:  # its worker was stopped because the server stops
            msg = replace(msg, cause=Cause.SERVER_STOPPED)
        r.status, r.detail, r.step = msg.status, msg.detail, msg.step
        r.cause, r.divergence = msg.cause, msg.divergence
        r.updated_at = time.time()
        self.store.put_run(r)
        live.channel.publish(msg)
        self._show(live)
        if msg.status is Status.RUNNING:
            live.training = True
            self._cancel_idle(live)
            return
        if live.sweeping:  # a learning-rate sweep pauses the run; it keeps its slot
            return
        was_training, live.training = live.training, False
        if was_training:
            self._fill_slots()
            self._rebalance_threads()
        self._idle(live)

    def _set_status(self, live: LiveRun, status: Status, detail: str, cause: Cause | None = None) -> None:
        """A status the server decides (queued, and the like), published as a worker's would be."""
        r = live.record
        if cause is not r.cause or status is not r.status:
            r.cause, r.divergence = cause, None
        r.status, r.detail, r.updated_at = status, detail, time.time()
        self.store.put_run(r)
        live.channel.publish(StatusChanged(status, r.step, detail, cause, r.divergence))
        self._show(live)

    def _checkpoint_stored(self, rid: str, step: int, written: bool) -> None:
        """The store holds a checkpoint it could not write (the disk full), or wrote it at last:
        a run stopped at it says so, or no longer."""
        live = self._live.get(rid)
        if self._closing or live is None or live.record.status is Status.RUNNING or live.record.step != step:
            return
        base = live.record.detail.split(HELD_NOTE)[0]
        reason = self.store.health.state().get("reason", "the disk refuses it")
        note = f" at step {step:,}{HELD_NOTE} ({reason}): it is kept in memory and written when space returns"
        detail = base.removesuffix(f" at step {step:,}") + ("" if written else note)
        self._set_status(live, live.record.status, detail, live.record.cause)

    # ---- idle workers --------------------------------------------------------------------------------
    def _idle(self, live: LiveRun) -> None:
        """Its worker trains no more: let it go after a while (and at once past IDLE_WORKERS)."""
        if live.worker is None:
            return
        live.idle_since = time.monotonic()
        self._cancel_idle(live)
        live.idle_timer = asyncio.get_running_loop().call_later(self.runtime.idle_seconds, self._let_go, live)
        idle = sorted(
            (x for x in self._live.values() if x.worker is not None and not x.training and x.idle_since is not None),
            key=lambda x: x.idle_since or 0.0,
        )
        for old in idle[: max(0, len(idle) - IDLE_WORKERS)]:
            self._let_go(old)

    def _cancel_idle(self, live: LiveRun) -> None:
        live.idle_since = None
        if live.idle_timer is not None:
            live.idle_timer.cancel()
            live.idle_timer = None

    def _let_go(self, live: LiveRun) -> None:
        self._cancel_idle(live)
        if live.worker is None or live.training or live.sweeping:
            return
        if live.lock.locked():  # someone is about to use it: ask again a little later
            live.idle_since = time.monotonic()
            live.idle_timer = asyncio.get_running_loop().call_later(1.0, self._let_go, live)
            return
        live.worker.shutdown("paused")

    def _worker_exited(self, live: LiveRun, msg: Exited) -> None:
        live.worker, live.sweeping = None, False
        was_training, live.training = live.training, False
        if self._closing:
            return
        r = live.record
        at = live.checkpoint[0] if live.checkpoint is not None else None
        if msg.clean or (not was_training and r.status is not Status.RUNNING and at == r.step):
            log.info("run %s: its worker exited", r.id)
        else:
            log.warning("run %s: its worker died (%s)", r.id, msg.reason)
            self._spawn_task(self._interrupted(live, msg.reason))
        if was_training:
            self._fill_slots()
            self._rebalance_threads()
        self._release_if_unused(live)

    async def _interrupted(self, live: LiveRun, reason: str) -> None:
        """Its worker died: the run stands at its last checkpoint, `interrupted`, its history cut."""
        async with live.lock:
            detail = f"interrupted at step {{step:,}}: its worker stopped ({reason}); resume it from there"
            await self._restore(live, Status.INTERRUPTED, detail, Cause.WORKER_DIED)

    async def _restore(
        self, live: LiveRun, status: Status | None = None, detail: str | None = None, cause: Cause | None = None
    ) -> None:
        """The run cut back to its newest sound checkpoint (Store.cut_to_checkpoint; by default it
        keeps its status and the store says what was lost), its viewers switched to its history as
        stored. The caller holds live.lock."""
        record = await asyncio.to_thread(self.store.cut_to_checkpoint, live.record.id, status, detail, cause)
        if record is None:
            return
        live.record = record
        live.checkpoint = None
        channel = await asyncio.to_thread(self._stored_channel, record)
        channel.describe = lambda: self.public(live)
        for sub in list(live.channel.subscribers):
            sub.switch(channel)
            sub.resync("interrupted")
        live.channel = channel
        channel.publish(StatusChanged(record.status, record.step, record.detail, record.cause, record.divergence))
        self._show(live)

    # ---- steering ------------------------------------------------------------------------------------
    async def update(self, run_id: str, update: Update, name: str | None = None) -> RunRecord:
        """Change a run: its hyperparameters (applied by its worker between two steps, or to its
        record when it has none), pause or resume it, rename it. Answers once applied. Raises
        ConflictError (409) when its state does not allow the change."""
        try:
            live = await self.live(run_id)
        except ValueError as e:  # its stored steps overlap: its history cannot be built to steer it
            raise ConflictError(f"its stored history cannot be read ({e}); the run cannot be changed") from None
        async with live.lock:
            r = live.record
            check_update(r.status, r.step, r.max_steps, update)
            if name is not None:
                r.name = name
                r.updated_at = time.time()
                self.store.put_run(r)
                self._show(live)
            hp = replace(update, status=None)
            if hp.changes_hparams():
                await self._change(live, hp)
            if update.status is Status.RUNNING:
                await self._run(live)
            elif update.status is Status.PAUSED:
                await self._pause(live)
            return live.record

    async def _change(self, live: LiveRun, hp: Update) -> None:
        if self._alive(live.worker):
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
        r.hparams = HParams(
            hp.lr if hp.lr is not None else r.hparams.lr,
            hp.batch_size if hp.batch_size is not None else r.hparams.batch_size,
            hp.eval_every if hp.eval_every is not None else r.hparams.eval_every,
            hp.schedule if hp.schedule is not None else r.hparams.schedule,
        )
        if hp.max_steps is not None:
            r.max_steps = hp.max_steps
        r.updated_at = time.time()
        self.store.put_run(r)
        event = HParamsChanged(r.step, r.hparams, r.max_steps)
        self._record_change(live, event_message(event))
        live.channel.publish(event)

    async def _pause(self, live: LiveRun) -> None:
        r = live.record
        if r.status is Status.QUEUED:
            with contextlib.suppress(ValueError):
                self._queue.remove(r.id)
            self._set_status(live, Status.PAUSED, "paused by a user", Cause.USER)
            self._show_queue()
        elif live.worker is not None and live.worker.exited is None and r.status is Status.RUNNING:
            with contextlib.suppress(WorkerError):
                await live.worker.ask(Update(status=Status.PAUSED))

    async def read(self, run_id: str, read: Read) -> Answer:
        """A read of the run's model: by its worker if it has one, else from its latest checkpoint."""
        live = self._live.get(await self.resolve(run_id))
        if live is not None and self._alive(live.worker):
            assert live.worker is not None
            with contextlib.suppress(WorkerGoneError):
                answer: Answer = await live.worker.ask(read)
                return answer
        record = await self.record(run_id)
        model, reader, step = await self.stored_model(record)
        return await asyncio.to_thread(reader.answer, read, model, step)

    async def stored_model(self, record: RunRecord) -> tuple[Any, Reader, int]:
        """The run's latest weights from its checkpoint (or its initial ones when it has none yet),
        with a reader and the step of those weights (the checkpoint's, which an answer names: it
        is not the record's when that checkpoint was damaged); a few are kept loaded."""
        cached = self._models.get(record.id)
        if cached is not None and cached[0] == record.step:
            self._models.move_to_end(record.id)
            return cached[1], cached[2], cached[3]
        dataset = await self.datasets.dataset(record.spec.dataset)
        live = self._live.get(record.id)
        found = live.checkpoint if live is not None and live.checkpoint is not None else None
        if found is None:
            found = await asyncio.to_thread(self.store.load_checkpoint, record.id)
        if found is not None:
            model = (await asyncio.to_thread(decode, found[1])).state.model
        else:
            model = await asyncio.to_thread(record.spec.init_model, dataset.vocab.size)
        reader = cached[2] if cached is not None else Reader(record.spec, dataset)
        step = found[0] if found is not None else 0
        self._models[record.id] = (record.step, model, reader, step)
        while len(self._models) > CACHED_MODELS:
            self._models.popitem(last=False)
        return model, reader, step

    async def set_test(self, run_id: str, test: dict[str, Any]) -> None:
        live = self._live.get(await self.resolve(run_id))
        record = live.record if live is not None else await self.record(run_id)
        record.test = test
        self.store.put_run(record)

    # ---- branching and deleting ----------------------------------------------------------------------
    async def branch(self, run_id: str, step: int | None, update: Update, name: str | None, start: bool) -> RunRecord:
        """A new run that starts from one of this run's checkpoints (the latest by default), with
        its history up to there, and the given changes. KeyError: no checkpoint at that step."""
        parent = await self.record(run_id)
        live = self._live.get(parent.id)
        if step is None and live is not None and live.checkpoint is not None:
            found: tuple[int, bytes] | None = live.checkpoint
        else:
            await asyncio.to_thread(self.store.flush)
            try:
                found = await asyncio.to_thread(self.store.load_checkpoint, parent.id, step)
            except CorruptCheckpointError:
                raise ConflictError(f"its checkpoint at step {step:,} is damaged; branch from another") from None
        if found is None:
            raise KeyError(step)
        state = (await asyncio.to_thread(decode, found[1])).state
        hp = state.hparams
        hparams = HParams(
            update.lr if update.lr is not None else hp.lr,
            update.batch_size if update.batch_size is not None else hp.batch_size,
            update.eval_every if update.eval_every is not None else hp.eval_every,
            update.schedule if update.schedule is not None else hp.schedule,
        )
        max_steps = update.max_steps if update.max_steps is not None else max(state.max_steps, found[0] + 1)
        if start:
            check_update(Status.PAUSED, found[0], max_steps, Update(status=Status.RUNNING))
        spec = parent.spec.model_copy(update={"lr": hparams.lr, "batch_size": hparams.batch_size})
        return await self.create(
            spec,
            start,
            name=name or f"{parent.name} ⑂ {found[0]:,}",
            parent=(parent.id, found[0]),
            checkpoint=found,
            hparams=hparams,
            max_steps=max_steps,
        )

    async def delete(self, run_id: str) -> None:
        rid = await self.resolve(run_id)
        live = self._live.get(rid)
        if live is None and await asyncio.to_thread(self.store.run, rid) is None:
            raise RunNotFoundError(f"no run with id {run_id!r}")
        if live is not None:
            async with live.lock:
                with contextlib.suppress(ValueError):
                    self._queue.remove(rid)
                if live.worker is not None:
                    live.worker.kill()
                    live.worker = None
                was_training, live.training = live.training, False
                live.channel.close(RUN_DELETED, "the run was deleted")
                self._live.pop(rid, None)
                if was_training:
                    self._fill_slots()
        self._models.pop(rid, None)
        await asyncio.to_thread(self.store.delete_run, rid)
        self.overview.remove(rid)
        if self._newest == rid:
            self._newest = await asyncio.to_thread(self.store.newest_run_id)

    # ---- viewers -------------------------------------------------------------------------------------
    async def subscribe(self, run_id: str) -> Subscriber:
        follow = run_id == "current"
        live = await self.live(run_id)
        sub = Subscriber(live.channel, follow)
        if follow:
            self._followers.add(sub)
        return sub

    def unsubscribe(self, sub: Subscriber) -> None:
        self._followers.discard(sub)
        sub.close()
        for live in list(self._live.values()):
            if live.channel is sub.channel:
                self._release_if_unused(live)

    # ---- stored history ------------------------------------------------------------------------------
    async def checkpoints(self, run_id: str) -> list[CheckpointRecord]:
        await asyncio.to_thread(self.store.flush)
        return await asyncio.to_thread(self.store.checkpoints, run_id)

    def live_history(self, run_id: str) -> HistoryData | None:
        """What the channel of a run live here holds of its history (its buckets, evaluations and
        changes; no stored steps), or None: as it stands now, to be read before the next await."""
        live = self._live.get(run_id)
        if live is None:
            return None
        ch = live.channel
        # its [step, train loss, dev loss, b_noise] lists, in place: the fields of an Eval, in order
        # (copying 4,000 of them into tuples at each open of the compare view held the loop ~10 ms)
        return HistoryData([], cast(list[Eval], ch.evals), ch.changes, ch.history)

    async def history_data(self, record: RunRecord) -> HistoryData:
        """Everything stored of a run's history, read at once (the export streams it)."""
        return (await self.histories([record]))[0]

    async def histories(self, records: list[RunRecord], buckets: bool = False) -> list[HistoryData]:
        """history_data of several runs, read in one go (one thread hop, one flush); with
        `buckets`, those of runs past the steps stored one by one too (what overlays draw there;
        the history files hold the stored steps only)."""
        cap = self.store.max_stored_steps if buckets else math.inf
        live = {  # the buckets of live runs past the stored steps, as they stand now (here, on the loop)
            r.id: x.channel.history.copy() for r in records if r.step > cap and (x := self._live.get(r.id)) is not None
        }

        def read() -> list[HistoryData]:
            self.store.flush()
            out = []
            for r in records:
                h = self.store.history(r.id)
                past = live.get(r.id) or (self._saved_buckets(r) if r.step > cap else None)
                out.append(HistoryData(list(self.store.steps(r.id)), h.evals, h.changes, past))
            return out

        return await asyncio.to_thread(read)

    def _saved_buckets(self, record: RunRecord) -> LossHistory | None:
        """The bucketed history saved with a run that is not live, cut to its step (or, saved
        before it, with a gap up to it); None if none was saved. Blocking (a store read)."""
        blob = self.store.history_blob(record.id)
        if blob is None:
            return None
        try:
            saved = LossHistory.from_bytes(blob)
        except ValueError as e:
            log.warning("run %s: its saved history is damaged (%s)", record.id, e)
            return None
        if saved.n_steps >= record.step:
            saved.cut(record.step, record.train_seconds)
        else:  # saved before its last checkpoint (a worker that died): a gap up to it
            saved.skip_to(record.step, record.train_seconds)
        return saved

    # ---- learning-rate sweeps ------------------------------------------------------------------------
    async def start_sweep(self, run_id: str, spec: LrFindSpec) -> None:
        """Start a sweep in the run's worker (one started for it if it has none); returns once it
        is asked. ConflictError if one is already under way, or the server runs max_sweeps."""
        live = await self.live(run_id)
        if live.sweep is not None and not live.sweep.done():
            raise ConflictError("a learning-rate sweep is already under way")
        busy = sum(1 for x in self._live.values() if x.sweep is not None and not x.sweep.done())
        if busy >= self.max_sweeps:
            raise ConflictError(f"{busy} learning-rate sweeps are under way; at most {self.max_sweeps} at once")
        async with live.lock:
            if not self._alive(live.worker):
                await self._spawn(live, running=False)
            assert live.worker is not None
            self._cancel_idle(live)
            live.sweep = asyncio.ensure_future(live.worker.request(spec))
        live.sweep.add_done_callback(lambda task: self._swept(live, task))

    def _swept(self, live: LiveRun, task: asyncio.Future[Any]) -> None:
        if not task.cancelled() and (e := task.exception()) is not None and not isinstance(e, WorkerError):
            log.error("a learning-rate sweep failed", exc_info=e)
        if not live.training:
            self._idle(live)

    async def cancel_sweep(self, run_id: str) -> None:
        live = await self.live(run_id)
        if live.sweep is None or live.sweep.done() or live.worker is None:
            raise ConflictError("no learning-rate sweep is under way")
        live.worker.tell(CancelSweep())

    async def last_sweep(self, run_id: str) -> dict[str, Any] | None:
        record = await self.record(run_id)
        await asyncio.to_thread(self.store.flush)
        return (await asyncio.to_thread(self.store.history, record.id)).lrfind

    # ---- sweeps -------------------------------------------------------------------------------------------
    async def create_sweep(
        self, base: RunSpec, grid: dict[str, list[Any]], name: str | None, request: dict[str, Any]
    ) -> tuple[SweepRecord, list[RunRecord]]:
        """Its runs, created in order and started as slots free (queued first come, first served).
        ValueError: too many runs; KeyError: no such dataset."""
        planned = sweeps.expand(base, grid)
        if self.datasets.record(base.dataset) is None:
            raise KeyError(base.dataset)
        record = SweepRecord(
            secrets.token_hex(6), name or sweeps.default_name(grid), request, list(grid), False, time.time()
        )
        await asyncio.to_thread(self.store.put_sweep, record)
        runs = [await self.create(spec, True, name=sweeps.label(v), sweep_id=record.id) for v, spec in planned]
        return record, runs

    async def sweep(self, sweep_id: str) -> tuple[SweepRecord, list[RunRecord]]:
        record = await asyncio.to_thread(self.store.sweep, sweep_id)
        if record is None:
            raise RunNotFoundError(f"no sweep with id {sweep_id!r}")
        runs = await self.runs(None, sweeps.MAX_RUNS, 0, sweep_id=sweep_id)
        return record, sorted(runs, key=lambda r: (r.created_at, r.id))

    async def sweep_list(self, limit: int, offset: int) -> list[tuple[SweepRecord, list[RunRecord]]]:
        records = await asyncio.to_thread(self.store.sweeps, limit, offset)
        return [await self.sweep(s.id) for s in records]

    async def stop_sweep(self, sweep_id: str) -> None:
        """Pause its runs and take the waiting ones out of the queue; they stay stored."""
        record, runs = await self.sweep(sweep_id)
        for r in runs:
            if r.status in (Status.RUNNING, Status.QUEUED):
                with contextlib.suppress(ConflictError, RunNotFoundError):
                    await self.update(r.id, Update(status=Status.PAUSED))
        await asyncio.to_thread(self.store.put_sweep, replace(record, stopped=True))
