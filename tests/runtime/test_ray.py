"""Runs as Ray actors past one machine: two simulated nodes (ray.cluster_utils.Cluster), all on
127.0.0.1. Runs are placed on both; a node that leaves leaves its run `interrupted`, and it
resumes on the other node from its last checkpoint."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.conftest import wait_for

# Everything on loopback: without this, Ray turns 127.0.0.1 into the machine's address when it
# connects (ray._private.services.resolve_ip_for_localhost). Read when ray is imported.
os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"
ray = pytest.importorskip("ray", reason="ray is not installed (requirements-dev.txt)")
cluster_utils = pytest.importorskip("ray.cluster_utils")

pytestmark = pytest.mark.slow

NODE = {"num_cpus": 1, "node_ip_address": "127.0.0.1", "include_dashboard": False}


@pytest.fixture(scope="module")
def cluster() -> Iterator[Any]:
    c = cluster_utils.Cluster(initialize_head=True, head_node_args={**NODE, "dashboard_host": "127.0.0.1"})
    c.add_node(**NODE)
    try:  # the server joins it (backend/runtime/ray.py), in this process
        yield c
    finally:
        ray.shutdown()
        c.shutdown()


def run(client: TestClient, run_id: str) -> dict[str, Any]:
    body: dict[str, Any] = client.get(f"/api/runs/{run_id}").json()
    return body


@pytest.mark.timeout(300)
def test_runs_on_two_nodes_survive_a_node_leaving(cluster: Any, make_client: Callable[..., TestClient]) -> None:
    client = make_client(ray_address=cluster.address)
    spec = {"max_steps": 10_000_000, "eval_every": 500}
    a = client.post("/api/runs", json={**spec, "name": "a"}).json()
    b = client.post("/api/runs", json={**spec, "name": "b", "lr": 0.05}).json()
    for r in (a, b):
        wait_for(lambda r=r: run(client, r["id"])["step"] > 1000, timeout=120, what=f"run {r['name']} training")
    where = {r["id"]: run(client, r["id"])["worker"] for r in (a, b)}
    assert all(w.startswith("ray:") for w in where.values())
    assert len(set(where.values())) == 2, where  # one on each node (each actor holds a node's only CPU)

    # the node that is not the head leaves: the run there is interrupted at its last checkpoint
    head_id = ray.get_runtime_context().get_node_id()
    (node,) = [n for n in cluster.worker_nodes]
    lost = next(rid for rid, w in where.items() if w != f"ray:{head_id}")
    kept = next(rid for rid in where if rid != lost)
    cluster.remove_node(node)
    gone = wait_for(
        lambda: (r := run(client, lost))["status"] == "interrupted" and r, timeout=120, what="the lost run interrupted"
    )
    assert "interrupted at step" in gone["detail"] and gone["worker"] is None
    checkpoints = [c["step"] for c in client.get(f"/api/runs/{lost}/checkpoints").json()]
    assert gone["step"] == checkpoints[-1]  # it stands at its last checkpoint
    history = client.get(f"/api/runs/{lost}/history").json()
    assert history["steps"]["step"] == list(range(gone["step"]))  # its history cut to match

    # the other node's run goes on; paused, it frees the CPU the lost run resumes on
    assert run(client, kept)["status"] == "running"
    client.patch(f"/api/runs/{kept}", json={"status": "paused"})
    assert client.patch(f"/api/runs/{lost}", json={"status": "running"}).status_code == 200
    wait_for(lambda: run(client, lost)["step"] > gone["step"] + 500, timeout=120, what="the lost run resumed")
    assert run(client, lost)["worker"] == f"ray:{head_id}"
    history = client.get(f"/api/runs/{lost}/history").json()
    steps = history["steps"]["step"]
    assert steps == list(range(len(steps)))  # one contiguous history across the move
    client.patch(f"/api/runs/{lost}", json={"status": "paused"})
