"""A run as the store holds it: its channel rebuilt from its stored steps, or past them from its
saved buckets. Blocking (store reads): called in a thread."""

from __future__ import annotations

import logging

from backend.core.embeddings import embedding_map
from backend.runs.overfit import may_overfit, overfit
from backend.store.records import RunRecord
from backend.store.store import Store
from backend.streaming.channel import Channel
from backend.streaming.diagview import SNAPSHOT_POINTS
from backend.streaming.history import LossHistory
from backend.streaming.messages import embeddings_message, eval_row
from backend.training.checkpoint import decode

log = logging.getLogger(__name__)


def stored_channel(store: Store, record: RunRecord) -> Channel:
    """A channel as the run left it: its history, evaluations, changes, last sweep and the
    embedding map of its latest weights. Blocking (store reads)."""
    store.flush()  # writes still queued for this run
    ch = Channel(record.id)
    ch.history = step_history(store, record)
    h = store.history(record.id)
    ch.evals = [eval_row(*e) for e in h.evals]
    record.overfit = overfit(ch.evals)
    ch.timeline.changes = h.changes
    if h.lrfind is not None:
        ch.lrfind = {k: v for k, v in h.lrfind.items() if k not in ("lr", "loss", "smoothed")}
    d = store.diagnostics
    ch.diag.load(d.scalars(record.id, latest=SNAPSHOT_POINTS), d.latest(record.id), d.latest_gradcos(record.id))
    found = store.load_checkpoint(record.id)
    if found is not None:
        ck = decode(found[1])
        m = embedding_map(ck.state.model.C)
        ch.embeddings = embeddings_message(found[0], ck.vocab, m.x, m.y, m.method)
    return ch


def with_overfit(store: Store, record: RunRecord) -> RunRecord:
    """A stored record with its overfitting notice, from its stored evaluations (a run in memory
    keeps its own current; a stored one would otherwise say none after a restart). Its evaluations
    are read only where the notice can hold: its last dev loss RISE above its best. Blocking
    (a store read, for those runs only)."""
    last = (record.last_eval or {}).get("dev_loss")
    if (
        record.overfit is None
        and last is not None
        and record.best_dev is not None
        and may_overfit(last, record.best_dev)
    ):
        record.overfit = overfit([eval_row(*e) for e in store.evals(record.id)])
    return record


def step_history(store: Store, record: RunRecord) -> LossHistory:
    """The run's steps, bucketed as a channel keeps them: its stored steps, or past them its
    saved buckets (saved_buckets); without those (saved by a version that did not, or
    damaged), the stored steps and a gap up to its step. Blocking (store reads)."""
    past = record.step > store.max_stored_steps  # the stored steps cannot reach its step
    # then the saved buckets are the history: reading and folding 2,000,000 stored steps
    # first, to drop them, took ~0.1 s of CPU
    saved = saved_buckets(store, record) if past else None
    if saved is not None:
        return saved
    history = LossHistory()
    for chunk in store.steps(record.id, upto=record.step):
        history.extend(chunk.first, chunk.losses, chunk.lrs, chunk.time_end)  # arrays: no list round trip
    if history.n_steps < record.step:  # short of its step: the saved buckets (unless just read)
        saved = None if past else saved_buckets(store, record)
        if saved is not None:
            return saved
        log.warning("run %s: no saved history past step %d; its chart has a gap", record.id, history.n_steps)
        history.skip_to(record.step, record.train_seconds)
    return history


def saved_buckets(store: Store, record: RunRecord) -> LossHistory | None:
    """The bucketed history saved with a run that is not live, cut to its step (or, saved
    before it, with a gap up to it); None if none was saved. Blocking (a store read)."""
    blob = store.history_blob(record.id)
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
