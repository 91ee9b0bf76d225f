"""Websocket viewers for benchmarks: each checks that it receives every step exactly once.

Parsing 100 viewers' worth of JSON would steal the CPU we are measuring, so `steps` messages
(the bulk) are checked from their text: first and last step and the number of steps.
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass, field
from typing import Any

from websockets.asyncio.client import ClientConnection, connect

STEPS_PREFIX = '{"type":"steps","step":['


@dataclass
class Viewer:
    url: str  # ws://127.0.0.1:PORT/ws/runs/current
    next_step: int | None = None  # the step the next steps message must start with
    steps: int = 0
    gaps: list[tuple[int, int]] = field(default_factory=list)  # (expected, got)
    messages: int = 0
    kinds: dict[str, int] = field(default_factory=dict)
    snapshot_reasons: list[str] = field(default_factory=list)
    last: dict[str, Any] | None = None  # the last non-steps message
    ws: ClientConnection | None = None
    reading: asyncio.Event = field(default_factory=asyncio.Event)
    task: asyncio.Task[None] | None = None
    waiters: dict[str, asyncio.Future[tuple[float, dict[str, Any]]]] = field(default_factory=dict)

    def expect(self, kind: str) -> asyncio.Future[tuple[float, dict[str, Any]]]:
        """The next message of this type, with the perf_counter time it arrived."""
        fut: asyncio.Future[tuple[float, dict[str, Any]]] = asyncio.get_running_loop().create_future()
        self.waiters[kind] = fut
        return fut

    async def open(self, **kw: Any) -> None:
        self.ws = await connect(self.url, max_size=None, **kw)
        self.reading.set()
        self.task = asyncio.create_task(self._read())

    async def close(self) -> None:
        if self.task:
            self.task.cancel()
        if self.ws:
            await self.ws.close()

    def reset_counts(self) -> None:
        self.steps, self.messages, self.gaps, self.kinds = 0, 0, [], {}

    async def _read(self) -> None:
        assert self.ws is not None
        while True:
            await self.reading.wait()
            text = await self.ws.recv()
            assert isinstance(text, str)
            self.handle(text)

    def handle(self, text: str) -> None:
        self.messages += 1
        if text.startswith(STEPS_PREFIX):
            body = text[len(STEPS_PREFIX) : text.index("]")]
            first = int(body[: body.find(",")] if "," in body else body)
            last = int(body[body.rfind(",") + 1 :])
            count = body.count(",") + 1
            if count != last - first + 1:
                self.gaps.append((first, last))
            if self.next_step is not None and first != self.next_step:
                self.gaps.append((self.next_step, first))
            self.next_step = last + 1
            self.steps += count
            self.kinds["steps"] = self.kinds.get("steps", 0) + 1
            waiter = self.waiters.pop("steps", None)
            if waiter is not None and not waiter.done():
                waiter.set_result((time.perf_counter(), json.loads(text)))
            return
        msg = json.loads(text)
        kind = msg["type"]
        self.kinds[kind] = self.kinds.get(kind, 0) + 1
        if kind == "snapshot":
            self.next_step = msg["history"]["n_steps"]
            self.snapshot_reasons.append(msg["reason"])
        self.last = msg
        waiter = self.waiters.pop(kind, None)
        if waiter is not None and not waiter.done():
            waiter.set_result((time.perf_counter(), msg))


async def open_viewers(url: str, n: int, **kw: Any) -> list[Viewer]:
    viewers = [Viewer(url) for _ in range(n)]
    await asyncio.gather(*(v.open(**kw) for v in viewers))
    return viewers


async def wait_until(predicate: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError(f"waited {timeout}s for {what}")
        await asyncio.sleep(0.01)


async def one_snapshot(ws_url: str) -> tuple[float, str]:
    """Milliseconds from the start of the connect call to the first message, and that message."""
    start = time.perf_counter()
    async with connect(ws_url, max_size=None, open_timeout=30) as ws:
        text = await asyncio.wait_for(ws.recv(), 30)
        took = (time.perf_counter() - start) * 1000
    assert isinstance(text, str)
    return took, text
