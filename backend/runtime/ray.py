"""Workers as Ray actors, past one machine (MAKEMORE_RAY_ADDRESS: "auto", "host:port", "ray://...").

Each run trains in an actor that holds one CPU and wraps the same WorkerCore as a local process
(worker.py). The store stays in the server: checkpoints and events come back to it as the
messages a local worker sends, pulled by one asyncio task per actor (`drain`, a long poll);
commands go out as actor calls, in order (one concurrency group of one thread). Ray ends the
actors when the server, their owner, goes; a node that leaves takes its actors with it, and
their runs are `interrupted`, to resume elsewhere from their last checkpoint.

The actors import the `backend` package from the cluster: it is shipped with each actor
(runtime_env py_modules), so other machines need Python, torch and Ray, not this checkout.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import queue
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import ray
from ray.exceptions import RayError

from backend.runtime.handle import WorkerHandle
from backend.runtime.wire import Exited, Ready, Request, Shutdown, WorkerInit, WorkerMessage

log = logging.getLogger(__name__)

PACKAGE = Path(__file__).resolve().parents[1]  # backend/
DRAIN_SECONDS = 0.5  # an actor's long poll: how long it waits for a message before answering none

# Each actor's name ends with the number of its start in this server: a run's new worker is often
# started while its last actor (idle and shutting down, or killed a moment ago: Ray frees a name
# only once the actor is dead) still holds the name, and a name taken is ActorAlreadyExistsError.
_starts = itertools.count(1)


# Ray's stubs do not know concurrency_groups (documented in "Limiting Concurrency Per-Method")
@ray.remote(num_cpus=1, max_restarts=0, concurrency_groups={"commands": 1, "drain": 1})  # type: ignore[call-overload]
class TrainerActor:
    """One run's trainer on a Ray node."""

    def __init__(self, init: WorkerInit) -> None:
        import torch  # noqa: PLC0415

        from backend.runtime.worker import WorkerCore  # noqa: PLC0415

        torch.set_num_threads(1)  # the actor holds one CPU
        self._core = WorkerCore(init)
        self._node = ray.get_runtime_context().get_node_id()
        self._core.start()
        self._done = False

    def where(self) -> str:
        return f"ray:{self._node}"

    @ray.method(concurrency_group="commands")
    def handle(self, request: Request) -> None:
        self._core.handle(request)

    @ray.method(concurrency_group="commands")
    def shutdown(self, detail: str) -> None:
        self._core.stop(detail)

    @ray.method(concurrency_group="drain")
    def drain(self, timeout: float) -> tuple[list[WorkerMessage], bool]:
        """The messages so far (waiting up to `timeout` for the first), and whether that is all."""
        from backend.runtime.worker import DONE  # noqa: PLC0415

        out: list[WorkerMessage] = []
        wait = timeout  # for the first message; the others only if they are there
        while not self._done and len(out) < 256:
            try:
                msg = self._core.next_message(timeout=wait)
            except queue.Empty:
                break
            if msg is DONE:
                self._done = True
                break
            assert msg is not None
            out.append(msg)
            wait = 0.0
        return out, self._done


class RayWorker(WorkerHandle):
    def __init__(self, deliver: Callable[[WorkerMessage], None]) -> None:
        super().__init__(deliver)
        self._actor: Any = None
        self._pump: asyncio.Task[None] | None = None
        self._early: list[Request | Shutdown] = []

    async def start(self, init: WorkerInit) -> None:
        self._actor = TrainerActor.options(  # type: ignore[attr-defined]
            scheduling_strategy="SPREAD", name=f"makemore-run-{init.run_id}-{next(_starts)}"
        ).remote(init)
        self._pump = asyncio.create_task(self._pull())
        early, self._early = self._early, []
        for message in early:
            self._send(message)

    async def _pull(self) -> None:
        """Every message from the actor, in order; then its end."""
        try:
            where = await self._actor.where.remote()
            self.received(Ready(where))
            while True:
                messages, done = await self._actor.drain.remote(DRAIN_SECONDS)
                for msg in messages:
                    self.received(msg)
                if done:
                    self.received(Exited(True, "it exited"))
                    break
        except RayError as e:
            self.received(Exited(False, f"its Ray actor died ({type(e).__name__})"))
        except asyncio.CancelledError:
            raise
        finally:
            with contextlib.suppress(Exception):
                ray.kill(self._actor)

    def _send(self, message: Request | Shutdown) -> None:
        if self._actor is None:
            self._early.append(message)
        elif isinstance(message, Shutdown):
            self._actor.shutdown.remote(message.detail)
        else:
            self._actor.handle.remote(message)

    def kill(self) -> None:
        if self._actor is not None:
            with contextlib.suppress(Exception):
                ray.kill(self._actor)


class RayRuntime:
    name = "ray"
    idle_seconds = 0.0  # an idle actor would hold a CPU of the cluster: let it go at once

    def __init__(self, address: str) -> None:
        self.address = address
        self._lock = threading.Lock()

    def warm_up(self) -> None:
        """Join the cluster (blocking), shipping the backend package to it for the actors."""
        with self._lock:
            if ray.is_initialized():
                return
            ray.init(
                address=self.address,
                runtime_env={"py_modules": [str(PACKAGE)], "excludes": ["__pycache__", "*.pyc"]},
                logging_level=logging.WARNING,
                log_to_driver=False,
            )
            resources = ray.cluster_resources()  # type: ignore[no-untyped-call]
            log.info("joined the Ray cluster at %s: %s", self.address, resources)

    def cpus(self) -> int:
        self.warm_up()
        cpus = ray.cluster_resources().get("CPU", 1)  # type: ignore[no-untyped-call]
        return max(1, int(cpus))

    def share(self, training: int) -> int:
        return 1  # each actor holds one CPU of its node

    def worker(self, deliver: Callable[[WorkerMessage], None]) -> WorkerHandle:
        return RayWorker(deliver)

    def close(self) -> None:
        pass
