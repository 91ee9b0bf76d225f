"""The overfitting notice of a run that is not in memory (issue 22): a stored, paused run whose
evaluations show overfitting says so after a restart, in its record and in the runs list, read
from its stored evaluations (backend/runs/stored.py:with_overfit); one that does not says null."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient

from backend.app.main import create_app
from backend.config import Settings
from backend.core.data import Dataset
from backend.store.store import Store
from backend.training.protocol import Status

FALLING = [3.0, 2.8, 2.6, 2.5, 2.45]
RISING = [*FALLING, 2.47, 2.5, 2.56]  # 3 rises, 4.5% above the best at step 400 (tests/runs/test_data_defaults)


def store_evaluations(home: Path, run_id: str, devs: list[float]) -> None:
    """The run's evaluations (every 100 steps, training loss falling) and its record paused at the
    last, written straight into the store as a run that trained and stopped leaves them."""
    store = Store(home)
    store.open()
    try:
        record = store.run(run_id)
        assert record is not None
        trains = [3.0 - 0.1 * i for i in range(len(devs))]
        for i, (train, dev) in enumerate(zip(trains, devs, strict=True)):
            store.add_eval(run_id, 100 * i, train, dev)
        record.step = 100 * (len(devs) - 1)
        record.status = Status.PAUSED
        record.last_eval = {"step": record.step, "train_loss": trains[-1], "dev_loss": devs[-1], "b_noise": None}
        store.put_run(record, wait=True)
    finally:
        store.close()


def test_a_stored_run_says_it_overfit_after_a_restart(tmp_path: Path, small_dataset: Dataset) -> None:
    home = tmp_path / "home"
    with TestClient(create_app(Settings(home=home), small_dataset)) as client:
        ids = [client.post("/api/runs", json={"start": False, "lr": lr}).json()["id"] for lr in (0.1, 0.2)]
    overfitting, healthy = ids
    store_evaluations(home, overfitting, RISING)
    store_evaluations(home, healthy, [*FALLING, 2.44])
    with TestClient(create_app(Settings(home=home), small_dataset)) as client:
        run = client.get(f"/api/runs/{overfitting}").json()
        assert run["status"] == "paused" and run["best_dev_loss"] == 2.45
        assert run["overfit"] == {"best_step": 400, "best_dev": 2.45, "since_step": 700}
        assert client.get(f"/api/runs/{healthy}").json()["overfit"] is None
        listed: dict[str, Any] = {r["id"]: r for r in client.get("/api/runs").json()}
        assert listed[overfitting]["overfit"] == run["overfit"] and listed[healthy]["overfit"] is None
        # the compare view's read of a few records says the same
        points = client.get("/api/runs/points", params={"ids": f"{overfitting},{healthy}"})
        assert points.status_code == 200, points.text
        records = {r["run"]["id"]: r["run"] for r in points.json()["runs"]}
        assert records[overfitting]["overfit"] == run["overfit"] and records[healthy]["overfit"] is None
