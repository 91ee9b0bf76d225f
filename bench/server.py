"""A real server process, with a run to measure and an async HTTP helper.

Each server gets a fresh temporary home (its store) unless MAKEMORE_HOME is given in `env`
(harness/server.py). Runs train side by side there since issue 8: creating a run stops nothing, so
a benchmark pauses or deletes the runs it no longer measures."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.client import call
from bench.memory import MB, Tree, rss_mb, tree
from harness.server import ServerProcess, running_server


@dataclass(frozen=True)
class Bench:
    server: ServerProcess

    @property
    def ws_url(self) -> str:
        return self.ws_url_of("current")

    def ws_url_of(self, run_id: str) -> str:
        return self.server.url.replace("http://", "ws://") + f"/ws/runs/{run_id}"

    def rss_mb(self) -> float:
        """The server process's RSS in MiB: the registry, the store and the fan-out (viewers'
        queues included); since issue 8 no training, which runs in worker processes."""
        return rss_mb(self.server.pid) * MB / 2**20

    def processes(self) -> Tree:
        """The server, its forkserver and its runs' workers."""
        return tree(self.server.pid)

    def call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        return call(self.server.url, method, path, body)

    async def acall(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        return await asyncio.to_thread(call, self.server.url, method, path, body)

    def new_run(self, **spec: Any) -> dict[str, Any]:
        """A paused run that will not finish during a benchmark (it becomes `current`: the newest)."""
        run: dict[str, Any] = self.call("POST", "/api/runs", {"max_steps": 100_000_000, "start": False, **spec})
        return run

    def step(self, run_id: str = "current") -> int:
        return int(self.call("GET", f"/api/runs/{run_id}")["step"])


@contextmanager
def bench_server(*args: str, env: dict[str, str] | None = None, log: Path | None = None) -> Iterator[Bench]:
    with running_server(*args, env=env, log=log) as server:
        yield Bench(server)


async def set_status(bench: Bench, run_ids: list[str], status: str) -> None:
    for run_id in run_ids:
        await bench.acall("PATCH", f"/api/runs/{run_id}", {"status": status})


async def rates(bench: Bench, run_ids: list[str], seconds: float) -> list[float]:
    """Steps per second of each of these runs over one window, from the server's step counters."""
    first = [await _stamped_step(bench, r) for r in run_ids]
    await asyncio.sleep(seconds)  # the measurement window
    last = [await _stamped_step(bench, r) for r in run_ids]
    return [(s1 - s0) / (t1 - t0) for (s0, t0), (s1, t1) in zip(first, last, strict=True)]


async def _stamped_step(bench: Bench, run_id: str) -> tuple[int, float]:
    step = await asyncio.to_thread(bench.step, run_id)
    return step, time.perf_counter()


async def wait_training(bench: Bench, run_ids: list[str], before: list[int], timeout: float = 120) -> None:
    """Until each run has gone past the step it stood at before it was resumed."""
    deadline = time.monotonic() + timeout
    for r, step in zip(run_ids, before, strict=True):
        while await asyncio.to_thread(bench.step, r) <= step:
            if time.monotonic() > deadline:
                raise TimeoutError(f"run {r} did not train within {timeout:.0f} s of its resume")
            await asyncio.sleep(0.05)  # poll interval


async def train_rates(bench: Bench, run_ids: list[str], seconds: float, warm_up: float = 1.0) -> list[float]:
    """Resume these runs, wait until each one trains (a worker let go while its run was paused,
    after 30 s, starts again from its checkpoint first: seconds on a busy machine), let them warm
    up (a resumed worker's first steps run cold), measure each one's steps/s, pause them."""
    before = [await asyncio.to_thread(bench.step, r) for r in run_ids]
    await set_status(bench, run_ids, "running")
    await wait_training(bench, run_ids, before)
    await asyncio.sleep(warm_up)  # warm-up
    try:
        return await rates(bench, run_ids, seconds)
    finally:
        await set_status(bench, run_ids, "paused")
