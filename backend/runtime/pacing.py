"""Reads of a training run's model, kept to a share of its time.

A read (names to sample, next-character probabilities, the test loss, the weights) is answered by
the run's trainer between two steps, on the trainer's thread: while it reads, the run does not
train. Eight clients asking for 1,000 names in a loop took the trainer from ~1,100 steps/s to 6
(bench/floods.py). So reads go one at a time through a Pacer: after a read that cost t seconds of
the trainer's time, the next waits t * (1 - share) / share while the run trains, so reads never
take more than `share` of it (the first read after a quiet spell goes at once). A paused run's
reads do not wait. The readers wait instead, and the server's sample budget turns a flood away
with 503s.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable

log = logging.getLogger(__name__)

READ_SHARE = 0.1  # of a training run's time, at most, for reads of its model


class Pacer:
    """Runs jobs one at a time on a thread of its own. A job runs to its end and returns the
    seconds it cost; while `busy()`, the next one starts only once the jobs have taken no more
    than `share` of the time since."""

    def __init__(self, busy: Callable[[], bool], share: float = READ_SHARE) -> None:
        if not 0 < share <= 1:
            raise ValueError(f"share must be in (0, 1], not {share}")
        self._busy, self._share = busy, share
        self._jobs: queue.SimpleQueue[Callable[[], float] | None] = queue.SimpleQueue()
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="read-pacer", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def put(self, job: Callable[[], float]) -> None:
        self._jobs.put(job)

    def stop(self) -> None:
        """Run the jobs already put without waiting between them, then end the thread."""
        self._stopping.set()
        self._jobs.put(None)
        if self._thread.is_alive():
            self._thread.join()

    def _run(self) -> None:
        ready_at = 0.0
        while (job := self._jobs.get()) is not None:
            wait = ready_at - time.monotonic()
            if wait > 0 and self._busy():
                self._stopping.wait(wait)  # returns at once when stopping
            try:
                cost = job()
            except Exception:  # a job answers its own caller; the pacer goes on
                log.exception("paced job failed")
                cost = 0.0
            ready_at = time.monotonic() + cost * (1 - self._share) / self._share
