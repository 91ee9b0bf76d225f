"""A worker's place in the CPU queue: behind the server and the page.

A run's worker trains flat out; the server answers the page, in bursts. On a machine with as many
runs training as cores (the default), each of the server's answers waited for a trainer's time
slice: a first visit of the compare view with two runs training took ~1 s, most of it the page's
requests queued behind the trainers on two cores. At a higher niceness the kernel hands a worker
only what the server (and the browser beside it, when the page is opened on the same machine) leave
idle: the same training speed while the page is quiet, a few milliseconds lent to it while it loads.

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
