"""The points of a run's history (GET /api/runs/{id}/points) carry its changes: an overlay marks
them and says which batch size each point trained with."""

from __future__ import annotations

from fastapi.testclient import TestClient

from tests.conftest import wait_for


def test_points_carry_the_changes(client: TestClient) -> None:
    run = client.post("/api/runs", json={"max_steps": 400, "eval_every": 200, "batch_size": 16}).json()
    wait_for(lambda: client.get(f"/api/runs/{run['id']}").json()["status"] == "finished", timeout=60)
    r = client.patch(f"/api/runs/{run['id']}", json={"batch_size": 8, "max_steps": 700, "status": "running"})
    assert r.status_code == 200
    wait_for(lambda: client.get(f"/api/runs/{run['id']}").json()["status"] == "finished", timeout=60)
    p = client.get(f"/api/runs/{run['id']}/points", params={"start": 100, "end": 300}).json()
    changes = p["changes"]
    assert changes[0]["step"] == 0 and changes[0]["batch_size"] == 16
    assert changes[-1]["batch_size"] == 8 and changes[-1]["step"] >= 400
    assert p["step"][0] == 100  # the changes are the run's, whatever the range
