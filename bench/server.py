"""A real server process, with a run to measure and an async HTTP helper."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import psutil

from bench.client import call
from tests.server import ServerProcess, running_server


@dataclass(frozen=True)
class Bench:
    server: ServerProcess

    @property
    def ws_url(self) -> str:
        return self.server.url.replace("http://", "ws://") + "/ws/runs/current"

    def rss_mb(self) -> float:
        return float(psutil.Process(self.server.pid).memory_info().rss) / 2**20

    def call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        return call(self.server.url, method, path, body)

    async def acall(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        return await asyncio.to_thread(call, self.server.url, method, path, body)

    def new_run(self, **spec: Any) -> dict[str, Any]:
        """A paused run that will not finish during a benchmark."""
        run: dict[str, Any] = self.call("POST", "/api/runs", {"max_steps": 100_000_000, "start": False, **spec})
        return run

    def step(self) -> int:
        return int(self.call("GET", "/api/runs/current")["step"])


@contextmanager
def bench_server(*args: str) -> Iterator[Bench]:
    with running_server(*args) as server:
        yield Bench(server)
