"""Torch work off the trainer thread, on threads that end with it.

PyTorch's CPU kernels run on OpenMP (libgomp). Every thread that starts a parallel kernel gets an
OpenMP pool of its own, which lives as long as that thread. Once the process has more OpenMP
threads than cores, libgomp stops spinning between kernels and puts its workers to sleep, and
waking them costs the trainer's big batches about a third of their speed on two cores. So the
trainer thread is the one long-lived thread that runs parallel kernels; one-off torch work such as
building a run goes to a thread of its own that ends, and takes its pool with it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

T = TypeVar("T")


async def run_in_own_thread(fn: Callable[..., T], *args: object) -> T:
    """`fn(*args)` on a new thread, awaited; the thread ends when it returns."""
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="torch-once") as pool:
        return await asyncio.get_running_loop().run_in_executor(pool, fn, *args)
