"""Where runs train: at most `max_running` at once, the others queued first come first served;
the torch threads shared among those that train; workers started (a burst takes turns,
starts.py) and let go when idle; and, at shutdown, every worker stopped.

What a worker sends goes to `received` (events.py), given at construction.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

from backend.runs.starts import StartPool
from backend.runs.table import LiveRun, Table, alive
from backend.runtime.handle import WorkerError, WorkerGoneError, WorkerHandle
from backend.runtime.wire import WorkerInit, WorkerMessage
from backend.training.protocol import Cause, ConflictError, SetThreads, Status, Update

log = logging.getLogger(__name__)

IDLE_WORKERS = 4  # at most this many workers wait without training; the oldest go first
SHUTDOWN_SECONDS = 3.0  # at shutdown, workers get this long to checkpoint and go

Received = Callable[[LiveRun, WorkerHandle, WorkerMessage], None]


class Scheduler:
    def __init__(
        self, table: Table, received: Received, max_running: int, threads: int | None = None, nice: int = 0
    ) -> None:
        self.table = table
        self.received = received
        self.max_running = max_running
        self.threads = threads  # torch threads all training workers together may use (None: the runtime's)
        self.nice = nice  # added to each worker's niceness
        self.starts = StartPool(table.runtime.cpus())  # workers starting at once, at most

    # ---- training slots ------------------------------------------------------------------------------
    def training(self) -> int:
        return sum(1 for live in self.table.runs.values() if live.training)

    async def run(self, live: LiveRun) -> None:
        """Make the run train now, or queue it. The caller holds live.lock."""
        if self.table.closing:
            raise ConflictError("the server is shutting down: the run stays as it is")
        if live.training:
            return
        if self.training() >= self.max_running:
            if live.record.id not in self.table.queue:
                self.table.queue.append(live.record.id)
            self.table.set_status(live, Status.QUEUED, f"waiting for a free slot ({self.max_running} train at once)")
            return
        live.training = True
        self.rebalance_threads()
        if alive(live.worker):
            assert live.worker is not None
            try:
                await live.worker.ask(Update(status=Status.RUNNING))
                return
            except WorkerGoneError:
                pass  # it died meanwhile: a new one follows
            except WorkerError as e:
                live.training = False
                raise ConflictError(str(e)) from None
        await self.spawn(live, running=True)

    def fill_slots(self) -> None:
        """Start queued runs while slots are free (first come, first served)."""
        if self.table.closing:
            return
        while self.table.queue and self.training() < self.max_running:
            live = self.table.runs.get(self.table.queue.popleft())
            if live is None or live.record.status is not Status.QUEUED:
                continue
            live.training = True
            self.table.spawn_task(self._start_queued(live))
        self.table.show_queue()

    async def _start_queued(self, live: LiveRun) -> None:
        async with live.lock:
            live.training = False
            try:
                await self.run(live)
            except Exception as e:
                log.exception("run %s could not start", live.record.id)
                self.table.set_status(live, Status.PAUSED, f"could not start: {e}", Cause.ERROR)

    def share(self) -> int:
        """Torch threads for each training worker's big batches: the cores shared among the runs
        that train, never more in all than there are (oversubscribed OpenMP threads cost 5x)."""
        training = max(1, self.training())
        return max(1, self.threads // training) if self.threads else self.table.runtime.share(training)

    def rebalance_threads(self) -> None:
        share = self.share()
        for live in self.table.runs.values():
            if live.worker is not None and live.training:
                live.worker.tell(SetThreads(share))

    def threads_for(self, live: LiveRun) -> int:
        return self.share() if live.training else 1

    # ---- workers -------------------------------------------------------------------------------------
    async def spawn(self, live: LiveRun, running: bool) -> None:
        """Start a worker for the run, from its latest checkpoint. The caller holds live.lock."""
        r, store = live.record, self.table.store
        self.cancel_idle(live)
        try:
            dataset = await self.table.datasets.dataset(r.spec.dataset)
            checkpoint = live.checkpoint
            if checkpoint is None and (r.step > 0 or r.parent_id is not None or r.last_eval is not None):
                checkpoint = await asyncio.to_thread(store.load_checkpoint, r.id)
                if (checkpoint[0] if checkpoint is not None else 0) != r.step:
                    # its checkpoint at its step was damaged (or lost) since it stopped: training on
                    # from an older one over the history to its step would break that history
                    if store.health.failed:  # or it is held in memory, not lost: no cut
                        why = store.health.state().get("reason", "the disk refuses writes")
                        raise ConflictError(f"its checkpoint at step {r.step:,} is not written yet ({why})")
                    live.training = False
                    await self.table.restore(live)
                    raise ConflictError(f"{live.record.detail}; resume it again to train on from there")
        except (KeyError, ConflictError) as e:
            live.training = False  # it never started
            self.fill_slots()
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
            threads=self.threads_for(live),
            running=running,
            nice=self.nice,
        )
        slot = await self.starts.slot()  # a burst of starts takes turns (starts.py)

        def deliver(msg: WorkerMessage) -> None:
            slot.seen(msg)
            self.received(live, worker, msg)

        worker = self.table.runtime.worker(deliver)
        live.worker = worker
        if running:
            self.table.set_status(live, Status.RUNNING, "starting")
        try:
            await worker.start(init)
        except BaseException as e:
            slot.release()
            if not isinstance(e, Exception):
                raise
            live.worker, live.training = None, False
            log.exception("run %s: the worker did not start", r.id)
            self.table.set_status(live, Status.PAUSED, f"could not start a worker: {e}", Cause.ERROR)
            self.fill_slots()
            raise
        if not running:  # it evaluates where it stands, checkpoints, and waits: idle from now on
            self.idle(live)

    # ---- idle workers --------------------------------------------------------------------------------
    def idle(self, live: LiveRun) -> None:
        """Its worker trains no more: let it go after a while (and at once past IDLE_WORKERS)."""
        if live.worker is None:
            return
        live.idle_since = time.monotonic()
        self.cancel_idle(live)
        live.idle_timer = asyncio.get_running_loop().call_later(self.table.runtime.idle_seconds, self._let_go, live)
        idle = sorted(
            (
                x
                for x in self.table.runs.values()
                if x.worker is not None and not x.training and x.idle_since is not None
            ),
            key=lambda x: x.idle_since or 0.0,
        )
        for old in idle[: max(0, len(idle) - IDLE_WORKERS)]:
            self._let_go(old)

    def cancel_idle(self, live: LiveRun) -> None:
        live.idle_since = None
        if live.idle_timer is not None:
            live.idle_timer.cancel()
            live.idle_timer = None

    def _let_go(self, live: LiveRun) -> None:
        self.cancel_idle(live)
        if live.worker is None or live.training or live.sweeping:
            return
        if live.lock.locked():  # someone is about to use it: ask again a little later
            live.idle_since = time.monotonic()
            live.idle_timer = asyncio.get_running_loop().call_later(1.0, self._let_go, live)
            return
        live.worker.shutdown("paused")

    # ---- shutdown ------------------------------------------------------------------------------------
    async def stop(self) -> None:
        """Nothing starts from now on; every worker checkpoints and goes (killed past
        SHUTDOWN_SECONDS); queued runs are paused, saying why."""
        table = self.table
        table.closing = True
        table.overview.close()
        if table.default is not None:
            table.default.cancel()
        for rid in list(table.queue):
            live = table.runs.get(rid)
            if live is not None:
                table.set_status(
                    live, Status.PAUSED, "it was waiting in the queue when the server stopped", Cause.SERVER_STOPPED
                )
        table.queue.clear()
        workers = [live.worker for live in table.runs.values() if live.worker is not None]
        for w in workers:
            w.shutdown("paused: the server shut down")
        deadline = time.monotonic() + SHUTDOWN_SECONDS
        while any(w.exited is None for w in workers) and time.monotonic() < deadline:
            await asyncio.sleep(0.02)  # poll: each Exited arrives through the loop
        for w in workers:
            if w.exited is None:
                log.warning("a worker did not stop in time; killing it")
                w.kill()
