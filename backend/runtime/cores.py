"""Idle cores, measured: how many torch threads a worker may use for big batches.

PyTorch's CPU kernels run on OpenMP (libgomp). A parallel kernel ends when its slowest thread
does, and a thread whose core another process holds is slow: with one core of two kept busy by
another process, batch 256 on two threads trained 0.20x the examples/s of batch 255 on one
(REFERENCE §2). The batch-size lesson the page teaches must not be an artefact of that. So a
worker never runs more torch threads than the cores other processes leave idle: every half
second it reads how long the CPUs it may run on were busy (/proc/stat), takes away its own CPU
time (os.times: every thread of this process), and what is left is what the others used.

`choose_threads` is the policy, pure; `ThreadPolicy` adds the memory of the last windows (up only
when two windows in a row agree, down at once); `CoreWatch` is the thread that measures.
"""

from __future__ import annotations

import logging
import math
import os
import threading
from collections import deque
from collections.abc import Callable, Collection
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

PROC_STAT = Path("/proc/stat")
INTERVAL = 0.5  # seconds per measurement window
SLACK = 0.25  # a core counts as idle while other processes use less than a quarter of it
WINDOWS_UP = 2  # windows in a row that must show idle cores before more threads are used


@dataclass(frozen=True)
class CpuSample:
    """CPU time counters at one moment, in seconds."""

    cpus: int  # the CPUs this process may run on
    busy: float  # time those CPUs spent running anything, since boot
    total: float  # time those CPUs spent at all (busy or idle), since boot
    own: float  # CPU time of this process (all its threads)


def parse_proc_stat(text: str, cpus: Collection[int]) -> tuple[int, int]:
    """(busy, total) clock ticks of the CPUs in `cpus`, from /proc/stat's `cpuN` lines:
    user nice system idle iowait irq softirq steal [guest guest_nice]. Idle and iowait are idle;
    guest time is already inside user and nice; steal is a core held by someone else."""
    busy = total = 0
    for line in text.splitlines():
        name, _, rest = line.partition(" ")
        if not name.startswith("cpu") or name == "cpu" or int(name[3:]) not in cpus:
            continue
        ticks = [int(v) for v in rest.split()[:8]]
        total += sum(ticks)
        busy += sum(ticks) - ticks[3] - ticks[4]
    return busy, total


def allowed_cpus() -> set[int]:
    return os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else set(range(os.cpu_count() or 1))


def sample(cpus: Collection[int] | None = None) -> CpuSample | None:
    """The counters now; None where /proc/stat cannot be read (not Linux)."""
    cpus = allowed_cpus() if cpus is None else cpus
    try:
        busy, total = parse_proc_stat(PROC_STAT.read_text(), cpus)
    except (OSError, ValueError):
        return None
    hz = os.sysconf("SC_CLK_TCK")
    t = os.times()
    return CpuSample(len(cpus), busy / hz, total / hz, t.user + t.system)


def idle_cores(before: CpuSample, after: CpuSample) -> float | None:
    """Cores that processes other than this one left idle between two samples (None if no time
    passed). Wall time is the CPUs' own count: total time over the number of CPUs."""
    total = after.total - before.total
    if total <= 0 or after.cpus <= 0:
        return None
    wall = total / after.cpus
    others = max(0.0, (after.busy - before.busy) - (after.own - before.own))  # CPU seconds
    return max(0.0, after.cpus - others / wall)


def choose_threads(allowed: int, idle: float | None) -> int:
    """Torch threads for big batches: at most `allowed` (the server's share of the cores), never
    more than the cores idle, at least one. Unmeasured (`idle` None): `allowed`."""
    if idle is None:
        return max(1, allowed)
    return max(1, min(allowed, math.floor(idle + SLACK)))


class ThreadPolicy:
    """The thread count now, from the server's share and the last windows' idle cores: fewer
    threads as soon as one window shows busy cores, more only once WINDOWS_UP windows in a row
    show them idle (a short lull must not put a thread back onto a core another process wants).
    Before the first measurement: one thread."""

    def __init__(self, allowed: int, measured: bool = True) -> None:
        self.allowed = max(1, allowed)
        self._measured = measured  # False: nothing to measure with; the share is the count
        self._recent: deque[float] = deque(maxlen=WINDOWS_UP)
        self.threads = 1 if measured else self.allowed

    def allow(self, allowed: int) -> int:
        """The server's share changed; the thread count that follows."""
        self.allowed = max(1, allowed)
        return self._choose()

    def measured(self, idle: float | None) -> int:
        """One more window's idle cores; the thread count that follows."""
        if idle is not None:
            self._recent.append(idle)
        return self._choose()

    def _choose(self) -> int:
        if not self._measured:
            self.threads = self.allowed
        elif self._recent:
            down = choose_threads(self.allowed, self._recent[-1])
            up = choose_threads(self.allowed, min(self._recent)) if len(self._recent) == WINDOWS_UP else 1
            self.threads = min(down, max(up, min(self.threads, self.allowed)))
        else:
            self.threads = 1
        return self.threads


class CoreWatch:
    """A thread that measures the idle cores every `interval` seconds and hands each window's
    figure to `measured` (None when it cannot tell). It reads two files per window: ~0.1 ms."""

    def __init__(
        self,
        measured: Callable[[float | None], None],
        interval: float = INTERVAL,
        read: Callable[[], CpuSample | None] = sample,
    ) -> None:
        self._measured, self._interval, self._read = measured, interval, read
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="core-watch", daemon=True)

    @staticmethod
    def available() -> bool:
        return sample() is not None

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(5)

    def _run(self) -> None:
        before = self._read()
        while not self._stop.wait(self._interval):
            after = self._read()
            idle = idle_cores(before, after) if before is not None and after is not None else None
            before = after
            try:
                self._measured(idle)
            except Exception:  # a figure for the thread count: never worth the run
                log.exception("idle-core measurement failed")
