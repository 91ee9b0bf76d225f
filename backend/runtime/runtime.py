"""Where workers run: this machine (a process per run) or a Ray cluster (an actor per run). The
registry asks a Runtime for a worker handle and for how many CPUs it has; nothing else differs."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Protocol

from backend.runtime.handle import WorkerHandle
from backend.runtime.wire import WorkerMessage


class Runtime(Protocol):
    name: str
    idle_seconds: float  # how long a worker that trains no more is kept for a quick resume

    def cpus(self) -> int:
        """Cores that runs may train on: the default number of runs that train at once."""

    def share(self, training: int) -> int:
        """Torch threads each training worker may use for big batches, with `training` of them."""

    def worker(self, deliver: Callable[[WorkerMessage], None]) -> WorkerHandle:
        """A new handle, not started; its messages go to `deliver` on the event loop."""

    def warm_up(self) -> None:
        """Get ready to start workers fast (blocking; called on a thread at start-up)."""

    def close(self) -> None: ...


class LocalRuntime:
    name = "local"
    idle_seconds = 30.0  # an idle process costs memory only

    def cpus(self) -> int:
        return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1

    def share(self, training: int) -> int:
        # never more threads in all than cores: oversubscribed OpenMP threads cost 5x (REFERENCE §2)
        return max(1, self.cpus() // max(1, training))

    def worker(self, deliver: Callable[[WorkerMessage], None]) -> WorkerHandle:
        from backend.runtime.local import LocalWorker  # noqa: PLC0415

        return LocalWorker(deliver)

    def warm_up(self) -> None:
        from backend.runtime.local import warm_up  # noqa: PLC0415

        warm_up()

    def close(self) -> None:
        pass
