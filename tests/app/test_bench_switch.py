"""The bench-only switch `bench_no_store` (Settings, MAKEMORE_BENCH_NO_STORE): runs keep their
records, and none of their steps, evaluations or checkpoints reach the store. The same run with
the switch off stores all of them, so each half of the test can fail."""

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from backend.app.main import create_app
from backend.config import Settings
from backend.core.data import Dataset
from backend.store.store import Store
from backend.training.protocol import Status
from tests.conftest import wait_for


@pytest.mark.parametrize("no_store", [False, True])
def test_bench_no_store_drops_steps_evals_and_checkpoints(
    small_dataset: Dataset, tmp_path: Path, no_store: bool
) -> None:
    settings = Settings(home=tmp_path, bench_no_store=no_store)
    with TestClient(create_app(settings, small_dataset)) as client:
        run = client.post("/api/runs", json={"max_steps": 1500, "eval_every": 500}).json()
        wait_for(lambda: client.get(f"/api/runs/{run['id']}").json()["status"] == "finished", 60, "the run to finish")
        # the server answers from its live state either way
        assert client.get(f"/api/runs/{run['id']}").json()["last_eval"]["step"] == 1500
    # the server has shut down: everything it was going to write is committed
    store = Store(tmp_path)
    record = store.run(run["id"])
    assert record is not None and record.status is Status.FINISHED and record.step == 1500
    steps = sum(chunk.n for chunk in store.steps(run["id"]))
    evals = [e[0] for e in store.history(run["id"]).evals]
    checkpoints = [c.step for c in store.checkpoints(run["id"])]
    if no_store:
        assert (steps, evals, checkpoints) == (0, [], [])
        assert not (tmp_path / "checkpoints" / run["id"]).exists()
    else:
        assert steps == 1500
        assert evals == [0, 500, 1000, 1500]
        assert checkpoints[-1] == 1500
