"""A run's Ray actors never collide by name: a run's new worker starts while its last one (idle,
shutting down, or just killed) may still be registered under the run's id. One node with two
CPUs on 127.0.0.1, so that an old actor and its successor can both be placed."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from backend.core.data import Dataset
from backend.runtime.wire import Exited, Ready, WorkerInit, WorkerMessage
from backend.training.spec import HParams, RunSpec
from tests.conftest import wait_for

os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"  # keep 127.0.0.1 as it is (see test_ray.py)
ray = pytest.importorskip("ray", reason="ray is not installed (requirements-dev.txt)")
cluster_utils = pytest.importorskip("ray.cluster_utils")

from backend.runtime.ray import RayRuntime, RayWorker  # noqa: E402 (after the importorskip)

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def cluster() -> Iterator[Any]:
    c = cluster_utils.Cluster(
        initialize_head=True,
        head_node_args={
            "num_cpus": 2,
            "node_ip_address": "127.0.0.1",
            "include_dashboard": False,
            "dashboard_host": "127.0.0.1",
        },
    )
    try:
        yield c
    finally:
        ray.shutdown()
        c.shutdown()


def init_for(run_id: str, small_dataset: Dataset) -> WorkerInit:
    return WorkerInit(
        run_id=run_id,
        spec=RunSpec(),
        dataset_name=small_dataset.name,
        words=small_dataset.words,
        checkpoint=None,
        hparams=HParams(max_steps=1_000_000),
        threads=1,
        running=False,
    )


@pytest.mark.timeout(180)
def test_a_second_worker_for_the_same_run_starts_beside_the_first(cluster: Any, small_dataset: Dataset) -> None:
    """Two workers for run X, the first still alive when the second starts: both start, each
    reports Ready from its own actor; the first shut down (it exits cleanly), the second killed,
    and neither actor is left holding its name (nor its CPU)."""
    RayRuntime(cluster.address).warm_up()
    init = init_for("x", small_dataset)

    def names() -> list[str]:
        return sorted(
            a["name"] for a in ray.util.list_named_actors(all_namespaces=True) if a["name"].startswith("makemore-run-x")
        )

    async def scenario() -> tuple[list[WorkerMessage], list[WorkerMessage], list[str]]:
        got: tuple[list[WorkerMessage], list[WorkerMessage]] = ([], [])
        first, second = RayWorker(got[0].append), RayWorker(got[1].append)
        await first.start(init)
        await second.start(init)  # raised ActorAlreadyExistsError: the name makemore-run-x was taken
        both_named = names()

        async def both(kind: type) -> None:
            while not all(any(isinstance(m, kind) for m in messages) for messages in got):
                await asyncio.sleep(0.05)  # poll interval

        await asyncio.wait_for(both(Ready), timeout=120)
        first.shutdown("paused")
        second.kill()
        await asyncio.wait_for(both(Exited), timeout=60)
        # while the handles are held (Ray ends an actor none refers to, but the registry holds them)
        wait_for(lambda: not names(), timeout=60, what="both actors gone (their names free)")
        assert first.exited and second.exited
        return got[0], got[1], both_named

    a, b, both_named = asyncio.run(scenario())
    assert len(both_named) == 2, both_named  # a name each
    for messages in (a, b):
        assert isinstance(messages[0], Ready) and messages[0].where.startswith("ray:")
        assert isinstance(messages[-1], Exited)
    assert isinstance(a[-1], Exited) and a[-1].clean  # shut down: it checkpointed and exited


@pytest.mark.timeout(240)
def test_a_run_created_idle_resumes(cluster: Any, make_client: Callable[..., TestClient]) -> None:
    """Created with start false (its worker, if the server starts one, evaluates and goes idle),
    then resumed at once and a second time after a pause: 200 each time, and it trains."""
    client = make_client(ray_address=cluster.address)
    run = client.post("/api/runs", json={"start": False, "max_steps": 10_000_000, "eval_every": 500}).json()

    def get() -> dict[str, Any]:
        body: dict[str, Any] = client.get(f"/api/runs/{run['id']}").json()
        return body

    wait_for(lambda: get()["last_eval"] is not None or get()["worker"] is None, timeout=120, what="the run idle")
    for attempt in range(2):
        answer = client.patch(f"/api/runs/{run['id']}", json={"status": "running"})
        assert answer.status_code == 200, (attempt, answer.text)
        at: int = get()["step"]
        wait_for(lambda: get()["step"] > at + 50, timeout=120, what=f"training (resume {attempt + 1})")  # noqa: B023
        assert get()["status"] == "running"
        assert client.patch(f"/api/runs/{run['id']}", json={"status": "paused"}).status_code == 200
        wait_for(lambda: get()["status"] == "paused", timeout=60, what="the run paused")
