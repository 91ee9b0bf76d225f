"""The server's handle on one run's worker, wherever it runs (a local process or a Ray actor).

The registry uses only this interface: `start` it, `ask` it a Request (awaited: the Reply's value,
or WorkerError), `tell` it one (no answer awaited), `shutdown` it, `kill` it. Everything the worker
sends arrives, in order and on the event loop, at the `deliver` callable the handle was made with;
the handle itself takes the Replies to answer its `ask`s, and ends with exactly one `Exited`.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import Any

from backend.runtime.wire import ErrorKind, Exited, Ready, Reply, Request, Shutdown, WorkerInit, WorkerMessage


class WorkerError(Exception):
    def __init__(self, kind: ErrorKind, detail: str) -> None:
        super().__init__(detail)
        self.kind = kind


class WorkerGoneError(WorkerError):
    def __init__(self, detail: str) -> None:
        super().__init__("conflict", detail)


class WorkerHandle(ABC):
    def __init__(self, deliver: Callable[[WorkerMessage], None]) -> None:
        self._deliver = deliver
        self._ids = itertools.count(1)
        self._waiting: dict[int, asyncio.Future[Any]] = {}
        self.where: str | None = None  # from its Ready message
        self.exited: Exited | None = None
        self.shutting_down = False

    @abstractmethod
    async def start(self, init: WorkerInit) -> None:
        """Start the worker; returns once it has been launched (not necessarily Ready)."""

    @abstractmethod
    def _send(self, message: Request | Shutdown) -> None:
        """Hand a message to the worker (on the event loop; must not block)."""

    @abstractmethod
    def kill(self) -> None:
        """End the worker at once (its run loses what it did since its last checkpoint)."""

    async def ask(self, body: Any) -> Any:
        return await self.request(body)

    def request(self, body: Any) -> asyncio.Future[Any]:
        """Send a Request now; the future completes with its Reply (or WorkerError)."""
        answer: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        if self.exited is not None or self.shutting_down:
            answer.set_exception(WorkerGoneError("the run's worker has stopped"))
            return answer
        request = Request(next(self._ids), body)
        self._waiting[request.id] = answer
        try:
            self._send(request)
        except OSError:
            self._waiting.pop(request.id, None)
            answer.set_exception(WorkerGoneError("the run's worker has stopped"))
        return answer

    def tell(self, body: Any) -> None:
        """Send a Request whose answer nobody awaits."""
        if self.exited is None and not self.shutting_down:
            with contextlib.suppress(OSError):  # it is gone: its Exited is on the way
                self._send(Request(next(self._ids), body))

    def shutdown(self, detail: str) -> None:
        """Ask it to checkpoint, pause (saying `detail`) and exit; it ends with a clean Exited."""
        if self.exited is None and not self.shutting_down:
            self.shutting_down = True
            with contextlib.suppress(OSError):
                self._send(Shutdown(detail))

    def received(self, message: WorkerMessage) -> None:
        """Every message from the worker, on the event loop, in order."""
        if isinstance(message, Reply):
            answer = self._waiting.pop(message.id, None)
            if answer is not None and not answer.done():
                if message.error is None:
                    answer.set_result(message.value)
                else:
                    answer.set_exception(WorkerError(message.kind or "failed", message.error))
            return
        if isinstance(message, Ready):
            self.where = message.where
        elif isinstance(message, Exited):
            if self.exited is not None:
                return
            self.exited = message
            for answer in self._waiting.values():
                if not answer.done():
                    answer.set_exception(WorkerGoneError(f"the run's worker stopped: {message.reason}"))
            self._waiting.clear()
        self._deliver(message)
