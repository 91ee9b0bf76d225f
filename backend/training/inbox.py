"""A trainer's commands in: other threads put them, the trainer's thread takes them between two
steps (or two pieces of long work) and answers each through its Future.

The inbox keeps two rules of its own, under one lock so that no put slips past a close: once the
trainer has stopped, every command is refused (ConflictError), those already queued included;
and only one learning-rate sweep may be queued or under way at a time.
"""

from __future__ import annotations

import queue
import threading
from concurrent.futures import Future
from typing import Any

from backend.core.lrfind import LrFindSpec
from backend.training.protocol import Command, ConflictError

STOPPED = "the run's trainer has stopped"


class StopRequestedError(Exception):
    """A Stop came between two pieces of long work: unwinds it to the trainer's thread body,
    which stops."""


class Inbox:
    def __init__(self) -> None:
        self._queue: queue.SimpleQueue[tuple[Command, Future[Any]]] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._closed = self._sweep_queued = False
        # the queue's own method, not a wrapper: the training loop asks it after every step
        self.empty = self._queue.empty

    def put(self, command: Command) -> Future[Any]:
        """Queue `command` (from any thread); the Future is its answer."""
        done: Future[Any] = Future()
        with self._lock:
            if self._closed:
                raise ConflictError(STOPPED)
            if isinstance(command, LrFindSpec):
                if self._sweep_queued:
                    raise ConflictError("a learning-rate sweep is already under way")
                self._sweep_queued = True
            self._queue.put((command, done))
        return done

    def get(self, block: bool) -> tuple[Command, Future[Any]]:
        """The next command (raises queue.Empty when none and not `block`)."""
        return self._queue.get(block=block)

    def sweep_ended(self) -> None:
        """The queued sweep is over (or never began): another may be queued."""
        with self._lock:
            self._sweep_queued = False

    def close(self) -> None:
        """Refuse every command from now on."""
        with self._lock:
            self._closed = True

    def refuse_queued(self) -> None:
        """Answer the commands still queued (after `close`) with a ConflictError."""
        while True:
            try:
                _, done = self._queue.get_nowait()
            except queue.Empty:
                break
            done.set_exception(ConflictError(STOPPED))
