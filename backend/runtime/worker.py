"""The worker's side: one run's trainer, fed Requests, giving back events and replies in order.

`WorkerCore` is the same for a local process (process.py) and a Ray actor (ray_actor.py): it
builds the run from a WorkerInit, turns each Request into a trainer command, and puts every
message for the server into `outbox` in the order the trainer produced them (a reply comes after
the events of the change it confirms). Checkpoints are encoded to bytes on the way out, off the
trainer's thread.

It also picks the trainer's torch threads for big batches: at most the server's share of the
cores (SetThreads), and never more than the cores other processes leave idle, measured every
half second (cores.py); and keeps reads of the model to a share of a training run's time
(pacing.py).
"""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
import time
from concurrent.futures import Future, wait
from typing import Any

from backend.core.data import Dataset
from backend.core.model import MLP
from backend.runtime.cores import CoreWatch, ThreadPolicy
from backend.runtime.pacing import Pacer
from backend.runtime.priority import lower_priority
from backend.runtime.reads import Reader
from backend.runtime.wire import (
    CancelSweep,
    CheckpointData,
    ErrorKind,
    Read,
    Reply,
    Request,
    WorkerInit,
    WorkerMessage,
)
from backend.training.checkpoint import decode, encode
from backend.training.protocol import CheckpointTaken, ConflictError, Event, Query, SetThreads, Status
from backend.training.trainer import Trainer

log = logging.getLogger(__name__)

DONE = None  # put in the outbox after the last message


class WorkerCore:
    def __init__(self, init: WorkerInit) -> None:
        lower_priority(init.nice)  # first: the threads started below inherit it
        self.init = init
        self.outbox: queue.SimpleQueue[WorkerMessage | None] = queue.SimpleQueue()
        self.dataset = Dataset(init.dataset_name, init.words)
        self._reader = Reader(init.spec, self.dataset)
        state = decode(init.checkpoint).state if init.checkpoint is not None else None
        self._threads = ThreadPolicy(init.threads, measured=CoreWatch.available())
        self._threads_lock = threading.Lock()  # one thread count at a time reaches the trainer, in order
        self._watch = CoreWatch(self._measured)
        self.trainer = Trainer(
            init.spec,
            self.dataset.splits(init.spec.block_size),
            self.dataset.vocab.chars,
            self._emit,
            max_threads=self._threads.threads,
            state=state,
            hparams=init.hparams,
        )
        self._pacer = Pacer(busy=lambda: self.trainer.status is Status.RUNNING)

    def start(self) -> None:
        self.trainer.start(running=self.init.running)
        self._watch.start()
        self._pacer.start()

    def _measured(self, idle: float | None) -> None:
        """A window's idle cores (on the watch's thread): tell the trainer if its count changes."""
        with self._threads_lock:
            before = self._threads.threads
            threads = self._threads.measured(idle)
            if threads != before:
                with contextlib.suppress(ConflictError):  # the trainer has stopped
                    self.trainer.submit(SetThreads(threads))

    def _emit(self, event: Event) -> None:
        self.outbox.put(event)  # a CheckpointTaken is encoded on its way out (next_message)

    def next_message(self, timeout: float | None = None) -> WorkerMessage | None:
        """The next message for the server, encoded; raises queue.Empty after `timeout`."""
        msg = self.outbox.get(timeout=timeout)
        if isinstance(msg, CheckpointTaken):
            return CheckpointData(msg.step, encode(self.init.spec, msg.state, self.dataset.vocab.chars))
        return msg

    def handle(self, request: Request) -> None:
        body = request.body
        if isinstance(body, CancelSweep):
            self.trainer.cancel_sweep()
            self.outbox.put(Reply(request.id))
            return
        try:
            if isinstance(body, SetThreads):  # the server's share: the most the measurement may allow
                with self._threads_lock:
                    done = self.trainer.submit(SetThreads(self._threads.allow(body.threads)))
            elif isinstance(body, Read):
                self._pacer.put(lambda: self._read(request.id, body))
                return
            else:
                done = self.trainer.submit(body)
        except ConflictError as e:
            self.outbox.put(Reply(request.id, error=str(e), kind="conflict"))
            return
        done.add_done_callback(lambda f: self.outbox.put(_reply(request.id, f)))

    def _read(self, request_id: int, body: Read) -> float:
        """A read on the trainer's thread, between two steps (paced, see pacing.py); returns the
        seconds it took there."""
        reader, cost = self._reader, [0.0]

        def read(model: MLP, step: int) -> Any:
            t0 = time.perf_counter()
            try:
                return reader.answer(body, model, step)
            finally:
                cost[0] = time.perf_counter() - t0

        try:
            done = self.trainer.submit(Query(read))
        except ConflictError as e:
            self.outbox.put(Reply(request_id, error=str(e), kind="conflict"))
            return 0.0
        done.add_done_callback(lambda f: self.outbox.put(_reply(request_id, f)))
        wait([done])
        return cost[0]

    def stop(self, detail: str) -> None:
        """Checkpoint, pause if running, and end the trainer; then mark the end of the outbox."""
        self._watch.stop()
        self._pacer.stop()  # the reads already asked for are answered first
        self.trainer.stop(detail)
        self.outbox.put(DONE)


def _reply(request_id: int, done: Future[Any]) -> Reply:
    e = done.exception()
    if e is None:
        return Reply(request_id, done.result())
    kind: ErrorKind = (
        "conflict" if isinstance(e, ConflictError) else "invalid" if isinstance(e, ValueError) else "failed"
    )
    return Reply(request_id, error=str(e), kind=kind)
