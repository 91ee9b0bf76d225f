"""Bursts of new runs cost bounded work (backend/runs/starts.py): a run created paused gets its
step-0 evaluation in the server, the very figures its worker computed, and no worker; workers
that do start take turns, at most the pool's bound at once; the server answers throughout and
keeps no memory per deleted run."""

from __future__ import annotations

import asyncio
import gc
import json
import os
import threading
import time
import tracemalloc
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from dataclasses import fields
from pathlib import Path
from typing import Any

import psutil
import pytest
import torch
from fastapi.testclient import TestClient

import backend.training.trainer as trainer_module
from backend.config import DEFAULT_DATA
from backend.core.data import Dataset
from backend.runs import starts
from backend.runs.starts import StartPool, first_evaluation
from backend.runtime.handle import WorkerHandle
from backend.runtime.wire import CheckpointData, Exited, Ready, WorkerInit, WorkerMessage
from backend.runtime.worker import DONE, WorkerCore
from backend.training.checkpoint import decode
from backend.training.protocol import EvalResult
from backend.training.spec import HParams, RunSpec
from backend.training.trainer import Trainer
from harness.server import running_server
from tests.conftest import wait_for

BURST = 50


def test_the_step_0_evaluation_is_the_one_its_worker_makes(small_dataset: Dataset) -> None:
    """The same events, figures and checkpoint as a worker started paused (one thread, as the
    registry gives a worker that does not train) and stopped: only the timings differ."""
    spec = RunSpec(seed=7, n_embd=4, n_hidden=50)
    hp = HParams(lr=0.05, batch_size=64, eval_every=500, max_steps=30_000)
    here = first_evaluation(spec, small_dataset, hp)
    init = WorkerInit("w", spec, small_dataset.name, small_dataset.words, None, hp, threads=1, running=False)
    core = WorkerCore(init)
    core.start()
    worker: list[WorkerMessage] = []
    while not worker or not isinstance(worker[-1], CheckpointData):  # it has evaluated, and waits
        worker.append(core.next_message())  # type: ignore[arg-type]
    core.stop("paused")
    while (msg := core.next_message()) is not DONE:
        assert msg is not None
        worker.append(msg)
    # the worker checkpoints step 0 three times (evaluated, waiting, stopping): the same state
    assert [type(m) for m in here] == [type(m) for m in worker[: len(here)]] and type(worker[-1]) is CheckpointData
    for a, b in zip(here[:-1], worker, strict=False):
        if isinstance(a, EvalResult):
            assert isinstance(b, EvalResult) and (a.step, a.train_loss, a.dev_loss) == (
                b.step,
                b.train_loss,
                b.dev_loss,
            )
        else:
            assert a == b
    mine, theirs = here[-1], worker[-1]
    assert isinstance(mine, CheckpointData) and isinstance(theirs, CheckpointData) and mine.step == theirs.step == 0
    x, y = decode(mine.data).state, decode(theirs.data).state
    for f in fields(x):
        u, v = getattr(x, f.name), getattr(y, f.name)
        if f.name == "model":
            assert all(torch.equal(getattr(u, n), getattr(v, n)) for n in ("C", "W1", "b1", "W2", "b2"))
        elif isinstance(u, torch.Tensor):
            assert torch.equal(u, v), f.name
        elif f.name == "last_eval":
            assert (u.train_loss, u.dev_loss) == (v.train_loss, v.dev_loss)
        elif f.name != "guard":  # its copy of the weights, compared above
            assert u == v, f.name


def test_a_long_step_0_evaluation_is_not_cut_short(small_dataset: Dataset, monkeypatch: pytest.MonkeyPatch) -> None:
    """An evaluation in many pieces (a big model's) takes the trainer's commands between them; the
    Stop that ends the trainer here comes only once it is over."""
    monkeypatch.setattr(trainer_module, "chunk_rows", lambda shape: 64)  # ~30 pieces
    spec = RunSpec()
    said = first_evaluation(spec, small_dataset, HParams(lr=spec.lr, max_steps=5000))
    assert [type(e).__name__ for e in said] == [
        "HParamsChanged",
        "EvalResult",
        "EmbeddingsChanged",
        "NoiseEstimate",
        "GradDirection",  # the first evaluation's gradient-direction pass
        "CheckpointData",
    ]


@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="a niceness per thread is Linux's")
def test_the_step_0_evaluation_runs_at_a_workers_niceness(
    small_dataset: Dataset, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On its own thread, behind the server's, as a worker would (and that thread alone)."""
    seen: list[int] = []

    class Spy(Trainer):
        def _evaluate(self) -> EvalResult:
            seen.append(os.getpriority(os.PRIO_PROCESS, threading.get_native_id()))
            return super()._evaluate()

    monkeypatch.setattr(starts, "Trainer", Spy)
    spec = RunSpec()
    hp = spec.hparams().model_copy(update={"max_steps": 1000})
    here = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
    with ThreadPoolExecutor(1) as pool:
        pool.submit(first_evaluation, spec, small_dataset, hp, 5).result()
    assert seen == [min(19, here + 5)]
    assert os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) == here


def test_a_start_slot_is_held_until_ready_or_exited(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(starts, "START_SECONDS", 0.05)

    async def main() -> None:
        pool = StartPool(2)
        a, b = await pool.slot(), await pool.slot()
        third = asyncio.ensure_future(pool.slot())
        await asyncio.sleep(0.01)
        assert not third.done() and pool.starting == 2
        a.seen(Exited(True, "it exited"))
        c = await asyncio.wait_for(third, 1)
        b.seen(Ready("local:1"))
        b.seen(Ready("local:1"))  # a place is given back once
        assert pool.starting == 1
        await asyncio.sleep(0.1)  # past START_SECONDS: a worker that never answers gives its place up
        assert pool.starting == 0
        c.release()
        assert pool.starting == 0 and (await pool.slot()) is not None

    asyncio.run(main())


def test_workers_start_at_most_the_bound_at_once(make_client: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """Six runs that start at once (six may train): at most two workers between launch and Ready."""
    client: TestClient = make_client(max_running=6)
    registry = client.app.state.registry  # type: ignore[attr-defined]
    registry.scheduler.starts = StartPool(2)
    starting: set[WorkerHandle] = set()
    peak = [0]
    real = registry.runtime.worker

    def worker(deliver: Any) -> WorkerHandle:
        def seen(msg: WorkerMessage) -> None:
            if isinstance(msg, Ready | Exited):
                starting.discard(handle)
            deliver(msg)

        handle: WorkerHandle = real(seen)
        launch = handle.start

        async def start(init: WorkerInit) -> None:
            starting.add(handle)
            peak[0] = max(peak[0], len(starting))
            await launch(init)

        handle.start = start  # type: ignore[method-assign]
        return handle

    monkeypatch.setattr(registry.runtime, "worker", worker)
    with ThreadPoolExecutor(6) as pool:
        runs = list(pool.map(lambda _: client.post("/api/runs", json={"max_steps": 10**6}).json(), range(6)))
    for r in runs:
        wait_for(lambda r=r: client.get(f"/api/runs/{r['id']}").json()["worker"], timeout=60, what="its worker")
    assert peak[0] == 2, peak
    for r in runs:
        assert client.delete(f"/api/runs/{r['id']}").status_code == 204


def call(url: str, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url + path, data=data, method=method, headers={"content-type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as r:
        text = r.read()
        return json.loads(text) if text else None


class Watch:
    """A thread that polls the server while a burst lasts: its workers (the forkserver's
    children), and how long /api/health takes to answer."""

    def __init__(self, url: str, pid: int) -> None:
        self.url, self.server = url, psutil.Process(pid)
        self.workers, self.health, self.polls = 0, 0.0, 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll)

    def __enter__(self) -> Watch:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(30)

    def _poll(self) -> None:
        while not self._stop.is_set():
            found = [p for p in self.server.children(recursive=True) if p.ppid() != self.server.pid]
            self.workers = max(self.workers, len(found))
            t0 = time.monotonic()
            with urllib.request.urlopen(f"{self.url}/api/health", timeout=10) as r:
                assert r.status == 200
            self.health = max(self.health, time.monotonic() - t0)
            self.polls += 1
            self._stop.wait(0.02)


def burst(url: str, pid: int) -> tuple[Watch, list[dict[str, Any]]]:
    """BURST runs created paused at once; returns once each has its step-0 evaluation."""
    with Watch(url, pid) as watch, ThreadPoolExecutor(BURST) as pool:
        runs = list(pool.map(lambda i: call(url, "POST", "/api/runs", {"start": False, "seed": i}), range(BURST)))
        done = [
            wait_for(lambda r=r: (x := call(url, "GET", f"/api/runs/{r['id']}"))["last_eval"] and x, timeout=60)
            for r in runs
        ]
    return watch, done


@pytest.mark.timeout(300)
def test_a_burst_of_paused_runs_starts_no_worker_and_the_server_answers(tmp_path: Path) -> None:
    words = tmp_path / "words.txt"
    words.write_text("\n".join(DEFAULT_DATA.read_text().split()[:2000]) + "\n")
    env = {k: "" for k in os.environ if k.startswith("MAKEMORE_")}
    with running_server("--data", str(words), env=env, log=tmp_path / "server.log") as server:
        url, proc = server.url, psutil.Process(server.pid)
        wait_for(lambda: call(url, "GET", "/api/runs/current")["last_eval"], timeout=60, what="the default run")
        rss: list[float] = []
        for _ in range(2):  # the first burst builds what any run needs once; the second must cost nothing
            watch, runs = burst(url, server.pid)
            assert watch.polls > 10 and watch.workers == 0  # no run created paused started a worker
            assert watch.health < 1.0, watch.health
            for r in runs:
                assert r["status"] == "paused" and r["worker"] is None and r["last_eval"]["step"] == 0
                assert [c["step"] for c in call(url, "GET", f"/api/runs/{r['id']}/checkpoints")] == [0]
            # each seed its own model: its own figures (not one run's copied to all)
            assert len({r["last_eval"]["train_loss"] for r in runs}) == BURST
            for r in runs:
                call(url, "DELETE", f"/api/runs/{r['id']}")
            rss.append(proc.memory_info().rss / 2**20)
        # what a run kept after its deletion would show here (the allocator's own ups and downs
        # are ~10-20 MB; test_deleted_runs_leave_nothing_behind counts the bytes)
        assert rss[1] - rss[0] < 0.5 * BURST, rss
        # a run created paused trains from its step-0 checkpoint
        run = call(url, "POST", "/api/runs", {"start": False, "max_steps": 500})
        wait_for(lambda: call(url, "GET", f"/api/runs/{run['id']}")["last_eval"], timeout=30)
        call(url, "PATCH", f"/api/runs/{run['id']}", {"status": "running"})
        wait_for(lambda: call(url, "GET", f"/api/runs/{run['id']}")["status"] == "finished", timeout=60)
        history = call(url, "GET", f"/api/runs/{run['id']}/history")
        assert history["steps"]["step"] == list(range(500)) and [e["step"] for e in history["evals"]] == [0, 500]


def test_deleted_runs_leave_nothing_behind(make_client: Any) -> None:
    """A burst of runs created paused, evaluated and deleted, twice: the second leaves no run in
    the registry's memory, no task, and no more than a little of Python's memory allocated."""
    client: TestClient = make_client()
    registry = client.app.state.registry  # type: ignore[attr-defined]

    def burst() -> None:
        with ThreadPoolExecutor(BURST) as pool:
            runs = list(
                pool.map(lambda i: client.post("/api/runs", json={"start": False, "seed": i}).json(), range(BURST))
            )
        for r in runs:
            wait_for(lambda r=r: client.get(f"/api/runs/{r['id']}").json()["last_eval"], timeout=60, what="step 0")
        for r in runs:
            assert client.delete(f"/api/runs/{r['id']}").status_code == 204
        wait_for(lambda: not registry.table.tasks, what="the registry's tasks to end")
        assert not set(registry.table.runs) & {r["id"] for r in runs} and not registry.reads.models

    burst()  # what runs need once (the examples of the block size, the store's statements) is built here
    tracemalloc.start()
    try:
        gc.collect()  # a run's record and channel refer to each other: garbage once it is deleted
        before = tracemalloc.get_traced_memory()[0]
        burst()
        gc.collect()
        grown = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    # ~600 bytes a run stay in the libraries' caches (SQLite's, numpy's); a run's checkpoint alone is 60 KB
    assert grown < 5_000 * BURST, grown
