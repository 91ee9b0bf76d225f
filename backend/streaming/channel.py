"""The event-loop side of one run: the state a new viewer's snapshot needs, and the fan-out of
every event to the viewers, each through a bounded queue of its own.

Everything here runs on the event loop thread; the worker's events arrive through the registry.
A message is encoded to JSON once and the same string is queued for every
subscriber. A subscriber that stops reading (its queue fills up) loses its backlog and, when it
reads again, gets a `lagged` notice and a fresh snapshot instead: it costs the others and the
trainer nothing, and its memory stays bounded.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable
from typing import Any, Literal, Protocol

from backend.streaming.diagview import DiagView
from backend.streaming.history import LossHistory, eval_extremes
from backend.streaming.messages import Message, encode, eval_row, event_message, loss_list, sig_list
from backend.training.protocol import EvalResult, Event, Steps

QUEUE_LIMIT = 100  # messages; at ~10 steps messages a second that is ~10 s of backlog
SNAPSHOT_POINTS = 2000
SNAPSHOT_CHANGES = 1000  # a snapshot carries the latest changes only
# A snapshot's evaluations: the latest as they came, and of those before, each group's lowest and
# highest train and dev loss: what the single view's chart keeps of them (js/state.js RECENT_EVALS,
# and a minimum and a maximum of each loss in each of EVAL_BUCKETS buckets). All of them while they
# fit: a run evaluated every 1,000 steps has more after ~6 M steps (~35 minutes at full speed), and
# at 12.6 M its snapshot was 0.41 MB, growing by 33 bytes an evaluation.
SNAPSHOT_RECENT_EVALS = 2000
SNAPSHOT_EVAL_GROUPS = 1000
SNAPSHOT_EVALS = SNAPSHOT_RECENT_EVALS + 4 * SNAPSHOT_EVAL_GROUPS  # at most
MERGE_SECONDS = 1.0  # changes that follow each other closer than this are one change (a slider dragged)


class Timeline:
    """The intervention timeline: the hyperparameters in effect from each step on.

    A confirmation of the values already in effect is not a change. Changes that come within
    MERGE_SECONDS of the previous one merge into it (its step, the new values): dragging a slider
    or a client sending thousands of `set`s a second makes one change, not thousands."""

    def __init__(self, changes: list[Message] | None = None) -> None:
        self.changes: list[Message] = changes or []
        self._last_at = -float("inf")  # when the last change was made (monotonic)

    def add(self, change: Message, now: float | None = None) -> Literal["same", "merged", "new"]:
        now = time.monotonic() if now is None else now
        if self.changes and _values(self.changes[-1]) == _values(change):
            return "same"
        if len(self.changes) > 1 and now - self._last_at < MERGE_SECONDS:
            self.changes[-1] = {**change, "step": self.changes[-1]["step"]}
            self._last_at = now
            return "merged"
        self.changes.append(change)
        self._last_at = now
        return "new"


class Channel:
    def __init__(self, run_id: str = "", describe: Callable[[], dict[str, Any]] = dict) -> None:
        self.run_id = run_id
        self.describe = describe  # the run's RunPublic
        self.history = LossHistory()
        # every evaluation, as [step, train_loss, dev_loss, b_noise]: tuples, not objects, because
        # a snapshot carries them all (2,001 of them after 2,000,000 steps at the defaults)
        self.evals: list[list[float | None]] = []
        self.timeline = Timeline()
        self.embeddings: Message | None = None  # the latest embedding map
        self.lrfind: Message | None = None  # the latest learning-rate sweep, without its points
        self.diag = DiagView()  # the latest diagnostic points and gradient-direction pass
        self.subscribers: set[Subscriber] = set()

    @property
    def changes(self) -> list[Message]:
        return self.timeline.changes

    def publish(self, event: Event) -> None:
        """Record an event and fan it out. Runs on the event loop, in event order. (A change goes
        into the timeline through `timeline.add`, by the registry, which also stores it.)"""
        if isinstance(event, Steps) and not self.subscribers:
            # ~10 a second per run, at hundreds of losses each: with nobody watching (a sweep's
            # runs, any run while the page shows another) they are only kept, not made a message
            self.history.extend(event.first, event.losses, event.lrs, event.time)
            return
        self.send(event_message(event), event)

    def send(self, msg: Message, event: Event | None = None) -> None:
        """Record a message (and its event, if it came from one) and fan it out."""
        kind = msg["type"]
        if isinstance(event, Steps):
            self.history.extend(event.first, event.losses, event.lrs, event.time)
        elif isinstance(event, EvalResult):  # every evaluation goes into every snapshot
            self.evals.append(eval_row(event.step, event.train_loss, event.dev_loss, None))
        elif kind == "noise":  # it follows its evaluation: fill in that evaluation's b_noise
            match = next((e for e in reversed(self.evals[-8:]) if e[0] == msg["step"]), None)
            if match is not None:
                match[3] = msg["b_noise"]
        elif kind == "embeddings":
            self.embeddings = msg
        elif kind in ("diag", "gradcos"):
            self.diag.add(msg)
        elif kind == "lrfind_done":  # its points can be many: GET /api/runs/{id}/lr-find has them
            self.lrfind = {k: v for k, v in msg.items() if k not in ("lr", "loss", "smoothed")}
        if self.subscribers:
            text = encode(msg)
            for sub in list(self.subscribers):
                sub.put(text)

    def resync(self, reason: str) -> None:
        """Every viewer gets a fresh snapshot next (the history was rewritten)."""
        for sub in list(self.subscribers):
            sub.resync(reason)

    def close(self, code: int, reason: str) -> None:
        """The run is gone: every viewer's connection is closed."""
        for sub in list(self.subscribers):
            sub.end(code, reason)

    def snapshot(self, reason: str) -> str:
        h = self.history.points(SNAPSHOT_POINTS)
        return encode(
            {
                "type": "snapshot",
                "reason": reason,
                "run": self.describe(),
                "history": {
                    "step": h.steps,
                    "loss": loss_list(h.losses, 4),
                    "lr": sig_list(h.lrs, 3),
                    "time": loss_list(h.times, 1),  # seconds of training
                    "n_steps": self.history.n_steps,  # steps 0 .. n_steps - 1 are covered
                },
                "evals": snapshot_evals(self.evals),
                "changes": self.changes[-SNAPSHOT_CHANGES:],
                "embeddings": self.embeddings,
                "lrfind": self.lrfind,
                **self.diag.snapshot(),
            }
        )


def snapshot_evals(evals: list[list[float | None]]) -> list[list[float | None]]:
    """The evaluations a snapshot carries (see SNAPSHOT_EVALS), in step order."""
    if len(evals) <= SNAPSHOT_EVALS:
        return evals
    older = len(evals) - SNAPSHOT_RECENT_EVALS
    kept = eval_extremes(evals[:older], SNAPSHOT_EVAL_GROUPS, (1, 2))  # train's and dev's, sorted
    return [evals[i] for i in kept.tolist()] + evals[older:]


def _values(change: Message) -> dict[str, Any]:
    return {k: v for k, v in change.items() if k != "step"}


class Feed(Protocol):
    """What a Subscriber reads from: a run's Channel, or the overview of runs."""

    run_id: str
    subscribers: set[Subscriber]

    def snapshot(self, reason: str) -> str: ...


class ViewerEndedError(Exception):
    def __init__(self, code: int, reason: str) -> None:
        super().__init__(reason)
        self.code, self.reason = code, reason


class Subscriber:
    """One websocket viewer: a bounded queue of encoded messages, drained by its sender task."""

    def __init__(self, channel: Feed, follow_current: bool, limit: int = QUEUE_LIMIT) -> None:
        self.channel = channel
        self.follow_current = follow_current
        self._limit = limit
        self._queue: deque[str] = deque()
        self._replies: deque[str] = deque(maxlen=64)  # answers to this viewer alone (errors)
        self._wake = asyncio.Event()
        self._snapshot_reason: str | None = "connect"
        self._dropped = 0
        self._ended: ViewerEndedError | None = None
        channel.subscribers.add(self)

    def put(self, text: str) -> None:
        if self._snapshot_reason is not None:
            return  # a fresh snapshot will cover it
        if len(self._queue) >= self._limit:
            self._dropped = len(self._queue) + 1
            self._queue.clear()
            self._snapshot_reason = "lagged"
        else:
            self._queue.append(text)
        self._wake.set()

    def reply(self, text: str) -> None:
        self._replies.append(text)
        self._wake.set()

    def switch(self, channel: Feed) -> None:
        """Follow another run (a new current run): the next message is its snapshot."""
        self.channel.subscribers.discard(self)
        self.channel = channel
        channel.subscribers.add(self)
        self._queue.clear()
        self._snapshot_reason = "new_run"
        self._wake.set()

    def resync(self, reason: str) -> None:
        """Drop the backlog: the next message is a fresh snapshot."""
        self._queue.clear()
        self._snapshot_reason = reason
        self._wake.set()

    def end(self, code: int, reason: str) -> None:
        """The connection is to be closed (the run was deleted): next_batch raises ViewerEndedError."""
        self._ended = ViewerEndedError(code, reason)
        self.close()
        self._wake.set()

    def close(self) -> None:
        self.channel.subscribers.discard(self)

    async def next_batch(self) -> list[str]:
        """Wait for the next messages to send, in order; raises ViewerEndedError when the connection is to end."""
        while True:
            if self._ended is not None:
                raise self._ended
            if self._replies:
                return [self._replies.popleft()]
            reason = self._snapshot_reason
            if reason is not None:
                # Built now, on the loop: it covers every event so far, and the queue is empty.
                self._snapshot_reason = None
                self._queue.clear()
                out = []
                if reason == "lagged":
                    out.append(encode({"type": "lagged", "dropped": self._dropped}))
                out.append(self.channel.snapshot(reason))
                return out
            if self._queue:
                return [self._queue.popleft()]
            self._wake.clear()
            await self._wake.wait()
