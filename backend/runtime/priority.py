"""A worker's place in the CPU queue: behind the server.

A run's worker trains flat out; the server answers the page, in bursts. With as many runs
training as cores (the default), each of the server's answers waited for a trainer's time slice:
with two runs training on two cores, the compare view's points for 20 runs took 43-49 ms (median;
p90 53-65 ms), a module of the page 2-3 ms (p90 6-8 ms). At a higher niceness the kernel gives a
worker what the server leaves idle: 25-33 ms (p90 30-38 ms) and 2 ms (p90 3 ms), and the same
training speed while the page is quiet. (A browser on the same machine is not helped: Linux shares
the cores between sessions first, and the browser runs in its own.)

Linux keeps a niceness per thread (setpriority(2) on a thread id; threads started later inherit
their starter's), so every thread the process has by then is moved: a Ray actor's own threads
started before our code ran. Elsewhere `os.nice` moves the process.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

MAX_NICENESS = 19  # the lowest priority there is
TASKS = Path("/proc/self/task")


def lower_priority(increment: int) -> None:
    """Add `increment` to the niceness of every thread of this process (at most 19): each keeps
    its place relative to the others. 0: nothing changes."""
    if increment <= 0:
        return
    if not TASKS.is_dir():
        os.nice(increment)
        return
    for tid in os.listdir(TASKS):
        with contextlib.suppress(ProcessLookupError):  # a thread that ended meanwhile
            now = os.getpriority(os.PRIO_PROCESS, int(tid))
            os.setpriority(os.PRIO_PROCESS, int(tid), min(MAX_NICENESS, now + increment))
