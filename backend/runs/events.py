"""What a worker sends, on the event loop, in order: each message folded into the run's record,
written to the store, and published on its channel (and the overview). A worker that exits
frees its slot; one that died leaves its run `interrupted` at its last checkpoint.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import replace

from backend.runs.overfit import overfit
from backend.runs.scheduler import Scheduler
from backend.runs.table import Held, LiveRun, Table
from backend.runtime.handle import WorkerHandle
from backend.runtime.wire import CheckpointData, Exited, Ready, WorkerMessage
from backend.streaming.messages import eval_row, event_message, finite, gradcos_message, lrfind_message
from backend.training.protocol import (
    Cause,
    Diagnostics,
    EmbeddingsChanged,
    EvalResult,
    GradDirection,
    HParamsChanged,
    LrFindDone,
    LrFindProgress,
    LrFindStarted,
    NoiseEstimate,
    Status,
    StatusChanged,
    Steps,
)

log = logging.getLogger(__name__)

# past the steps stored one by one, a run's bucketed history (~260 KB) is saved with a checkpoint
# at most this often while it trains, and with the checkpoint it stops at: a dying worker's run
# loses at most this long of its chart (a gap)
HISTORY_SAVE_SECONDS = 10.0


class Events:
    def __init__(self, table: Table, scheduler: Scheduler) -> None:
        self.table = table
        self.scheduler = scheduler
        self.store = table.store

    def received(self, live: LiveRun, worker: WorkerHandle, msg: WorkerMessage) -> None:
        """Everything a worker sends, on the loop, in order."""
        if live.worker is not worker:
            return  # an old worker's last words
        self.message(live, msg)

    def message(self, live: LiveRun, msg: WorkerMessage) -> None:
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
                r.hparams = msg.hparams
                self.table.record_change(live, event_message(msg))
                ch.publish(msg)
                self.table.show(live)
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
            case Diagnostics():
                self.store.diagnostics.add(r.id, msg.step, msg.point)
                ch.publish(msg)
            case GradDirection():
                self.store.diagnostics.add_gradcos(r.id, gradcos_message(msg))
                ch.publish(msg)
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
        self.table.show(live)

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
        # the overfitting notice, from every evaluation so far (this one included): the page only shows it
        r.overfit = overfit([*live.channel.evals, eval_row(msg.step, msg.train_loss, msg.dev_loss, None)])
        live.channel.send({**event_message(msg), "overfit": r.overfit}, msg)
        self.table.show(live)

    def _status_changed(self, live: LiveRun, msg: StatusChanged) -> None:
        r = live.record
        if self.table.closing and msg.cause is Cause.STOPPED:  # its worker was stopped because the server stops
            msg = replace(msg, cause=Cause.SERVER_STOPPED)
        r.status, r.detail, r.step = msg.status, msg.detail, msg.step
        r.cause, r.divergence, live.held = msg.cause, msg.divergence, None
        r.updated_at = time.time()
        self.store.put_run(r)
        live.channel.publish(msg)
        self.table.show(live)
        if msg.status is Status.RUNNING:
            live.training = True
            self.scheduler.cancel_idle(live)
            return
        if live.sweeping:  # a learning-rate sweep pauses the run; it keeps its slot
            return
        was_training, live.training = live.training, False
        if was_training:
            self.scheduler.fill_slots()
            self.scheduler.rebalance_threads()
        self.scheduler.idle(live)

    def checkpoint_stored(self, rid: str, step: int, written: bool) -> None:
        """The store holds a checkpoint it could not write (the disk full), or wrote it at last:
        a run stopped at it says so, or no longer."""
        live = self.table.runs.get(rid)
        if self.table.closing or live is None or live.record.status is Status.RUNNING or live.record.step != step:
            return
        r, held = live.record, live.held
        if written:
            if held is not None and held.step == step:
                self.table.set_status(live, r.status, held.detail, r.cause)
            return
        held = held if held is not None and held.step == step else Held(step, r.detail)
        reason = self.store.health.state().get("reason", "the disk refuses it")
        detail = (
            f"{held.detail}; its checkpoint at step {step:,} is not yet written ({reason}):"
            " it is kept in memory and written when space returns"
        )
        self.table.set_status(live, r.status, detail, r.cause, held)

    def _worker_exited(self, live: LiveRun, msg: Exited) -> None:
        live.worker, live.sweeping = None, False
        was_training, live.training = live.training, False
        if self.table.closing:
            return
        r = live.record
        at = live.checkpoint[0] if live.checkpoint is not None else None
        if msg.clean or (not was_training and r.status is not Status.RUNNING and at == r.step):
            log.info("run %s: its worker exited", r.id)
        else:
            log.warning("run %s: its worker died (%s)", r.id, msg.reason)
            self.table.spawn_task(self._interrupted(live, msg.reason))
        if was_training:
            self.scheduler.fill_slots()
            self.scheduler.rebalance_threads()
        self.table.release_if_unused(live)

    async def _interrupted(self, live: LiveRun, reason: str) -> None:
        """Its worker died: the run stands at its last checkpoint, `interrupted`, its history cut."""
        async with live.lock:
            detail = f"interrupted at step {{step:,}}: its worker stopped ({reason}); resume it from there"
            await self.table.restore(live, Status.INTERRUPTED, detail, Cause.WORKER_DIED)
