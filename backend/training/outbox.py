"""A trainer's events out, in the order it produced them.

Step losses are not sent one by one: they gather here (with the rate each step used) and go out
as one Steps event per flush, at most every FLUSH_SECONDS while the run trains. An event that can
wait (what an evaluation says, while the run trains) is deferred to the next flush too: every
message costs each viewer a send. Any other event flushes what is pending first, so the events
keep their order.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from backend.training.protocol import Event, Steps

FLUSH_SECONDS = 0.1  # step losses go out at most ~10 times a second


class Outbox:
    def __init__(self, emit: Callable[[Event], None]) -> None:
        self.emit = emit  # straight out, before anything pending (a sweep's progress)
        # the training loop appends to these two lists itself (the hot loop keeps them as locals,
        # so a flush gives it new ones rather than clearing them)
        self.losses: list[float] = []  # step losses not yet sent
        self.lrs: list[float] = []  # and the rates they used
        self.first = 0  # the step of losses[0]
        self.flushed_at = time.perf_counter()
        self._deferred: list[Event] = []  # events that go out with the next flush

    def defer(self, event: Event) -> None:
        self._deferred.append(event)

    def flush(self, step: int, batch_size: int, train_seconds: float) -> None:
        """Send the pending losses as one Steps event (the trainer is at `step`, trained for
        `train_seconds`; its rate over the time since the last flush), then the deferred events."""
        now = time.perf_counter()
        if self.losses:
            n = len(self.losses)
            rate = n / max(now - self.flushed_at, 1e-9)
            B = batch_size
            self.emit(Steps(self.first, self.losses, self.lrs, train_seconds, rate, rate * B, B))
            self.losses, self.lrs = [], []
        for event in self._deferred:
            self.emit(event)
        self._deferred.clear()
        self.first = step
        self.flushed_at = now
