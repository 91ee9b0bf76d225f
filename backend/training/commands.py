"""A trainer's commands, taken from its inbox on its thread: between two steps (the loop), or
between two pieces of long work (`take`, `between`), and what each does to the trainer (`apply`).
Each is answered through its Future: with what `apply` returns, or with what it raised (a
ConflictError for a change the run's status does not allow).
"""

from __future__ import annotations

import logging
import queue
import time
from concurrent.futures import Future
from typing import TYPE_CHECKING, Any

import torch

from backend.core.lrfind import LrFindSpec
from backend.training import lrsweep
from backend.training.inbox import StopRequestedError
from backend.training.minibatches import Minibatches
from backend.training.protocol import (
    Cause,
    Command,
    ConflictError,
    HParamsChanged,
    Query,
    SetThreads,
    Status,
    Stop,
    Update,
    check_update,
)

if TYPE_CHECKING:
    from backend.training.trainer import Trainer

log = logging.getLogger(__name__)


def handle(t: Trainer, command: Command, done: Future[Any]) -> None:
    """Apply one command and answer it; a Stop is only noted (`Trainer._run` stops)."""
    if isinstance(command, Stop):
        t._stop_request = (command.detail, done)
        return
    try:
        done.set_result(apply(t, command))
    except ConflictError as e:
        done.set_exception(e)
    except Exception as e:  # a query that failed: its caller hears of it, the run goes on
        log.exception("command failed: %r", command)
        done.set_exception(e)


def take(t: Trainer) -> None:
    """Between two pieces of long work: apply the commands that came meanwhile (none trains,
    so the weights stay as they are), up to a Stop. The threads and CPU time they use are not
    the work's."""
    if t._inbox.empty() or t._stop_request is not None:
        return
    threads, cpu, away = torch.get_num_threads(), time.process_time(), t._away
    while t._stop_request is None:
        try:
            command, done = t._inbox.get(block=False)
        except queue.Empty:
            break
        handle(t, command, done)  # a sweep taken here takes commands too, nested
    torch.set_num_threads(min(threads, t._max_threads))
    t._away = away + time.process_time() - cpu  # the nested ones are inside


def between(t: Trainer) -> None:
    """Between two chunks of an evaluation or two pieces of a noise estimate."""
    take(t)
    if t._stop_request is not None:
        raise StopRequestedError


def apply(t: Trainer, command: Command) -> Any:
    match command:
        case LrFindSpec():
            lrsweep.lr_find(t, command)
        case Query():
            return command.read(t.model, t.step)
        case SetThreads():
            t._max_threads = command.threads
            t._set_threads(t.hparams.batch_size)
        case Update():
            update(t, command)
    return None


def update(t: Trainer, u: Update) -> None:
    """A change of hyperparameters and/or status, confirmed with an HParamsChanged when it names
    hyperparameters."""
    check_update(t.status, t.step, t.max_steps, u)
    old, old_batch = t.hparams, t.hparams.batch_size
    t.hparams = t.hparams.merged(u)
    if t.hparams != old:
        t._diag.points.force()  # the first step with new values shows what they do (a burst: see Cadence)
    if t.hparams.batch_size != old_batch:
        t._batches = Minibatches(len(t._train), t.hparams.batch_size, t._gen)
        t._set_threads(t.hparams.batch_size)
    if u.changes_hparams():
        # confirmed even when nothing changed, so that no client waits for an answer in vain
        t._emit(HParamsChanged(t.step, t.hparams))
    if u.status is not None and t._sweeping:  # the run waits for its sweep: this is what it does after
        resume = u.status is Status.RUNNING
        paused = (Status.PAUSED, "paused by a user", Cause.USER)
        t._after_sweep = (Status.RUNNING, "", None) if resume else paused
    elif u.status is Status.RUNNING and t.status is not Status.RUNNING:
        if t.status is Status.DIVERGED:
            t._guard.ema = t._guard.ema_weight = 0.0
        t._set_status(Status.RUNNING, "")
    elif u.status is Status.PAUSED and t.status is Status.RUNNING:
        t._set_status(Status.PAUSED, "paused by a user", Cause.USER)
    elif u.changes_hparams() and t.status is not Status.RUNNING:
        t._checkpoint()  # the latest checkpoint carries the values the run resumes with
