from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.conftest import wait_for


def current(client: TestClient) -> dict[str, Any]:
    r = client.get("/api/runs/current")
    assert r.status_code == 200
    body: dict[str, Any] = r.json()
    return body


def test_health_and_default_run(client: TestClient) -> None:
    assert client.get("/api/health").json() == {"status": "ok"}
    run = current(client)
    assert run["status"] == "paused" and run["step"] == 0
    assert run["config"] == {"block_size": 3, "n_embd": 10, "n_hidden": 200, "seed": 2147483647, "max_steps": 200_000}
    assert run["hparams"] == {"lr": 0.1, "batch_size": 32, "eval_every": 1000}
    assert run["params"] == 11_897
    ds = run["dataset"]
    assert ds["name"] == "small" and ds["words"] == 2000 and ds["vocab_size"] == 27
    assert ds["train_examples"] + ds["dev_examples"] + ds["test_examples"] > 10_000
    evaluated = wait_for(lambda: current(client)["last_eval"], what="the step-0 evaluation")
    assert evaluated["step"] == 0 and evaluated["train_loss"] > 15


def test_create_list_get_and_stop_previous(client: TestClient) -> None:
    first = current(client)
    r = client.post("/api/runs", json={"lr": 0.05, "batch_size": 64, "max_steps": 5000, "start": False})
    assert r.status_code == 201
    second = r.json()
    assert second["status"] == "paused" and second["hparams"]["lr"] == 0.05 and second["config"]["max_steps"] == 5000
    assert client.get(f"/api/runs/{first['id']}").json()["status"] == "stopped"
    r = client.post("/api/runs")  # no body at all: the defaults, started
    assert r.status_code == 201
    third = r.json()
    assert third["status"] == "running"
    assert [run["id"] for run in client.get("/api/runs").json()] == [third["id"], second["id"], first["id"]]
    assert current(client)["id"] == third["id"]
    wait_for(lambda: current(client)["step"] > 100, what="training")
    assert client.get("/api/runs/nope").status_code == 404


def test_smaller_model_and_block_size(client: TestClient) -> None:
    r = client.post("/api/runs", json={"block_size": 5, "n_embd": 2, "n_hidden": 8, "start": False})
    assert r.status_code == 201
    assert r.json()["params"] == 27 * 2 + 10 * 8 + 8 + 8 * 27 + 27


BAD_CREATE = [
    ({"block_size": 0}, "block_size"),
    ({"block_size": 17}, "block_size"),
    ({"n_embd": 1}, "n_embd"),
    ({"n_embd": 65}, "n_embd"),
    ({"n_hidden": 7}, "n_hidden"),
    ({"n_hidden": 1025}, "n_hidden"),
    ({"lr": 0}, "lr"),
    ({"lr": -0.1}, "lr"),
    ({"lr": 10.0001}, "lr"),
    ({"lr": "0.1"}, "lr"),
    ({"batch_size": 0}, "batch_size"),
    ({"batch_size": 10**9}, "batch_size"),
    ({"batch_size": 3.5}, "batch_size"),
    ({"batch_size": True}, "batch_size"),
    ({"eval_every": 0}, "eval_every"),
    ({"eval_every": 1_000_001}, "eval_every"),
    ({"max_steps": 0}, "max_steps"),
    ({"max_steps": 100_000_001}, "max_steps"),
    ({"seed": -1}, "seed"),
    ({"start": "yes"}, "start"),
    ({"colour": "red"}, "colour"),
]


@pytest.mark.parametrize(("body", "field"), BAD_CREATE)
def test_create_rejects_bad_values(client: TestClient, body: dict[str, Any], field: str) -> None:
    before = current(client)["id"]
    r = client.post("/api/runs", json=body)
    assert r.status_code == 422, r.text
    assert any(field in err["loc"] for err in r.json()["detail"]), r.text
    assert current(client)["id"] == before  # nothing created, nothing stopped


@pytest.mark.parametrize("raw", [b'{"lr": NaN}', b'{"lr": Infinity}', b'{"lr": -Infinity}', b'{"lr": 1e999}'])
def test_non_finite_numbers_are_rejected(client: TestClient, raw: bytes) -> None:
    run_id = current(client)["id"]
    for r in (
        client.post("/api/runs", content=raw, headers={"content-type": "application/json"}),
        client.patch(f"/api/runs/{run_id}", content=raw, headers={"content-type": "application/json"}),
    ):
        assert r.status_code == 422, r.text
        assert r.json()["detail"][0]["loc"][-1] == "lr"
    assert current(client)["hparams"]["lr"] == 0.1


def test_patch_applies_and_reports(client: TestClient) -> None:
    run = current(client)
    r = client.patch(f"/api/runs/{run['id']}", json={"lr": 0.02, "batch_size": 128, "eval_every": 50, "max_steps": 900})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["hparams"] == {"lr": 0.02, "batch_size": 128, "eval_every": 50}
    assert body["config"]["max_steps"] == 900
    r = client.patch("/api/runs/current", json={"status": "running"})
    assert r.json()["status"] == "running"
    wait_for(lambda: current(client)["status"] == "finished", what="max_steps")
    done = current(client)
    assert done["step"] == 900 and done["last_eval"]["step"] == 900
    r = client.patch("/api/runs/current", json={"status": "running"})
    assert r.status_code == 409 and "max_steps" in r.json()["detail"]
    r = client.patch("/api/runs/current", json={"status": "running", "max_steps": 1000})
    assert r.status_code == 200
    wait_for(lambda: current(client)["step"] == 1000, what="the extra steps")


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"lr": 11}, "lr"),
        ({"batch_size": 0}, "batch_size"),
        ({"batch_size": 10**7}, "batch_size"),
        ({"eval_every": 0}, "eval_every"),
        ({"max_steps": 10**8 + 1}, "max_steps"),
        ({"status": "stopped"}, "status"),
        ({"step": 5}, "step"),
    ],
)
def test_patch_rejects_bad_values(client: TestClient, body: dict[str, Any], field: str) -> None:
    r = client.patch("/api/runs/current", json=body)
    assert r.status_code == 422
    assert field in r.json()["detail"][0]["loc"]


def test_patch_stopped_run_conflicts(client: TestClient) -> None:
    old = current(client)["id"]
    client.post("/api/runs", json={"start": False})
    for body in ({"status": "running"}, {"lr": 0.5}):
        r = client.patch(f"/api/runs/{old}", json=body)
        assert r.status_code == 409 and "stopped" in r.json()["detail"]
    assert client.patch("/api/runs/nope", json={"lr": 0.5}).status_code == 404


def test_sample(client: TestClient) -> None:
    run_id = current(client)["id"]
    a = client.get(f"/api/runs/{run_id}/sample", params={"n": 30, "seed": 42}).json()
    b = client.get("/api/sample", params={"n": 30, "seed": 42, "temperature": 1.0}).json()
    assert a == b and a["seed"] == 42 and len(a["names"]) == 30
    assert all(set(name) <= set("abcdefghijklmnopqrstuvwxyz") for name in a["names"])
    c = client.get("/api/sample").json()
    assert len(c["names"]) == 20 and isinstance(c["seed"], int)
    assert client.get("/api/sample", params={"n": 1000}).status_code == 200


@pytest.mark.parametrize(
    "params",
    [
        {"n": 0},
        {"n": 1001},
        {"temperature": 0},
        {"temperature": 10.5},
        {"temperature": "nan"},
        {"temperature": "inf"},
        {"seed": -1},
        {"n": "many"},
        {"bogus": 1},
    ],
)
def test_sample_rejects_bad_queries(client: TestClient, params: dict[str, Any]) -> None:
    r = client.get("/api/sample", params=params)
    assert r.status_code == 422, r.text
    assert r.json()["detail"][0]["loc"][0] == "query"


def test_page_and_offline_plotly(client: TestClient) -> None:
    page = client.get("/")
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    assert "/vendor/plotly.min.js" in page.text
    js = client.get("/vendor/plotly.min.js")
    assert js.status_code == 200 and "javascript" in js.headers["content-type"]
    assert "plotly.js v" in js.text[:200]


def test_openapi_documents_the_api(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    for path in ("/api/health", "/api/runs", "/api/runs/{run_id}", "/api/runs/{run_id}/sample", "/api/sample"):
        assert path in paths
    assert set(paths["/api/runs/{run_id}"]) == {"get", "patch"}


def test_no_runs_yet_is_404(make_client: Callable[..., TestClient]) -> None:
    c = make_client()
    registry = c.app.state.registry  # type: ignore[attr-defined]
    registry._runs.clear()
    assert c.get("/api/runs/current").status_code == 404
    assert c.get("/api/sample").status_code == 404
