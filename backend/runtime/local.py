"""Workers as local processes, forked from a preloaded parent.

`import torch` costs seconds; a fresh interpreter per run would pay it every time. multiprocessing's
forkserver is the preloaded parent: started once (in the background while the server starts), it
imports this module (and so torch and the trainer), and each run's worker is forked from it in
milliseconds. It is not the server that forks: a fork of the server would inherit its threads,
its event loop and the other workers' pipes.

A worker talks to the server over one pipe. It exits when the server asks it to (Shutdown), or
when the pipe reaches end-of-file: the server is gone (kill -9 included), and no worker outlives it.
It ignores SIGINT: a terminal's Ctrl-C goes to its whole foreground process group, the forkserver's
children included, and the server, which gets it too, pauses every run through its worker (a
checkpoint at the exact step). A worker that died of it would leave its run `interrupted` at its
last checkpoint instead.
On the server's side, one thread per worker reads the pipe and hands each message to the event
loop (`loop.call_soon_threadsafe`): the one place where a worker's messages cross into asyncio.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import multiprocessing
import multiprocessing.forkserver
import os
import signal
import threading
from collections.abc import Callable
from multiprocessing.connection import Connection
from typing import Any

from backend.runtime.handle import WorkerHandle
from backend.runtime.wire import Exited, Ready, Request, Shutdown, WorkerInit, WorkerMessage

log = logging.getLogger(__name__)

PRELOAD = ["backend.runtime.worker", "backend.runtime.local"]  # the forkserver imports torch and the trainer once
WATCHDOG_SECONDS = 1.0


def context() -> Any:
    """The forkserver context, preloaded with what a worker needs."""
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(PRELOAD)
    return ctx


def warm_up() -> None:
    """Start the forkserver now (it imports torch: seconds), so that the first run starts fast.
    Blocking: call it on a thread."""
    context()
    multiprocessing.forkserver.ensure_running()


# ---- in the worker process ---------------------------------------------------------------------------
def worker_main(conn: Connection, init: WorkerInit, server_pid: int) -> None:
    """The worker process: build the run, then read Requests until Shutdown or end-of-file."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the server decides when it stops (see the module's docstring)
    import torch  # noqa: PLC0415 (already imported by the forkserver: free)

    from backend.runtime.worker import DONE, WorkerCore  # noqa: PLC0415

    logging.basicConfig(level=logging.INFO, format=f"%(asctime)s %(levelname)s worker {init.run_id}: %(message)s")
    torch.set_num_threads(1)
    try:
        core = WorkerCore(init)
    except Exception as e:
        log.exception("cannot build the run")
        with contextlib.suppress(OSError):
            conn.send(Exited(False, f"the worker could not build the run: {e}"))
        return
    conn.send(Ready(f"local:{os.getpid()}"))

    def send_all() -> None:
        while (msg := core.next_message()) is not DONE:
            try:
                conn.send(msg)
            except OSError:  # the server is gone
                os._exit(0)

    def watchdog() -> None:
        """End-of-file on the pipe tells us the server died; this covers the rare case where it
        cannot (the pipe kept open elsewhere): a server that no longer exists."""
        stop = threading.Event()
        while not stop.wait(WATCHDOG_SECONDS):
            try:
                os.kill(server_pid, 0)
            except ProcessLookupError:
                os._exit(0)
            except PermissionError:
                pass

    sender = threading.Thread(target=send_all, name="sender", daemon=True)
    sender.start()
    threading.Thread(target=watchdog, name="watchdog", daemon=True).start()
    core.start()
    while True:
        try:
            msg = conn.recv()
        except (EOFError, OSError):  # the server is gone: nobody to checkpoint for
            os._exit(0)
        if isinstance(msg, Shutdown):
            core.stop(msg.detail)
            sender.join()
            conn.close()
            return
        core.handle(msg)


# ---- in the server ------------------------------------------------------------------------------------
class LocalWorker(WorkerHandle):
    def __init__(self, deliver: Callable[[WorkerMessage], None]) -> None:
        super().__init__(deliver)
        self._conn: Connection | None = None
        self._process: Any = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._early: list[Request | Shutdown] = []

    async def start(self, init: WorkerInit) -> None:
        self._loop = asyncio.get_running_loop()
        ctx = context()
        mine, theirs = ctx.Pipe()
        process = ctx.Process(
            target=worker_main, args=(theirs, init, os.getpid()), name=f"makemore-run-{init.run_id}", daemon=True
        )
        try:
            # a fork from the forkserver: milliseconds once it runs. Shielded: once asked for, the
            # process starts, and this handle must know it (to stop it) even if we are cancelled.
            await asyncio.shield(asyncio.to_thread(self._launch, process, mine, theirs, init.run_id))
        except asyncio.CancelledError:
            self.shutdown("paused")  # sent as soon as it is launched
            raise

    def _launch(self, process: Any, mine: Connection, theirs: Connection, run_id: str) -> None:
        process.start()
        theirs.close()
        self._conn, self._process = mine, process
        threading.Thread(target=self._read, name=f"reader-{run_id}", daemon=True).start()
        assert self._loop is not None
        self._loop.call_soon_threadsafe(self._flush_early)

    def _flush_early(self) -> None:
        """What was sent before the process existed (a Shutdown, say) goes now."""
        early, self._early = self._early, []
        for message in early:
            with contextlib.suppress(OSError):
                self._send(message)

    def _read(self) -> None:
        """On its own thread: every message from the pipe, handed to the event loop in order."""
        assert self._conn is not None and self._loop is not None
        loop, conn = self._loop, self._conn
        said_exited = False
        while True:
            try:
                msg = conn.recv()
            except (EOFError, OSError):
                break
            said_exited = isinstance(msg, Exited)
            with contextlib.suppress(RuntimeError):  # the loop is closed: the server is shutting down
                loop.call_soon_threadsafe(self.received, msg)
        self._process.join(10)
        code = self._process.exitcode
        if not said_exited:
            clean = self.shutting_down and code == 0
            reason = "it exited" if clean else f"its process ended (exit code {code})"
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(self.received, Exited(clean, reason))
        conn.close()

    def _send(self, message: Request | Shutdown) -> None:
        if self._conn is None:  # still launching
            self._early.append(message)
            return
        self._conn.send(message)

    def kill(self) -> None:
        if self._process is not None and self._process.is_alive():
            self._process.kill()

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None
