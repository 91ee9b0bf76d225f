"""CPU time of a server's processes and of the whole machine over a window: on a shared machine,
what tells a slow server from a busy machine.

The server's processes: the server, its forkserver and the runs' workers. A worker that ended
is counted through its parent's `children` times once reaped (the forkserver reaps them).
The machine: every core's busy time (all but idle and iowait), whoever used it.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass

import psutil


def tree_cpu_s(pid: int) -> float:
    """User + system CPU seconds of this process and its descendants, reaped ones included."""
    total = 0.0
    root = psutil.Process(pid)
    for p in [root, *root.children(recursive=True)]:
        try:
            t = p.cpu_times()
        except psutil.NoSuchProcess:
            continue
        total += t.user + t.system + t.children_user + t.children_system
    return total


def machine_busy_s() -> float:
    t = psutil.cpu_times()
    return float(sum(t) - t.idle - getattr(t, "iowait", 0.0))


def own_cpu_s() -> float:
    """This (benchmark) process: its websocket clients and polls."""
    t = psutil.Process().cpu_times()
    return float(t.user + t.system)


@dataclass(frozen=True)
class Usage:
    seconds: float  # wall
    server_cores: float  # the server's processes' CPU seconds per second (the workers' included)
    server_process_cores: float  # the server process's own: the registry, the store, the fan-out
    bench_cores: float  # this process's
    others_cores: float  # everything else on the machine (other engineers' tests, ...)

    def as_dict(self) -> dict[str, float]:
        return {k: round(v, 4) for k, v in self.__dict__.items()}


def _process_cpu_s(pid: int) -> float:
    t = psutil.Process(pid).cpu_times()
    return float(t.user + t.system)


class Meter:
    """Started at construction; `read()` gives the usage since."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.t0, self.tree0, self.process0 = time.perf_counter(), tree_cpu_s(pid), _process_cpu_s(pid)
        self.own0, self.busy0 = own_cpu_s(), machine_busy_s()

    def read(self) -> Usage:
        wall = time.perf_counter() - self.t0
        tree, process = tree_cpu_s(self.pid) - self.tree0, _process_cpu_s(self.pid) - self.process0
        own, busy = own_cpu_s() - self.own0, machine_busy_s() - self.busy0
        return Usage(wall, tree / wall, process / wall, own / wall, max(0.0, busy - tree - own) / wall)


CORES = os.cpu_count() or 1
