"""The smaller holes at the edges: each test shows one and that it is closed."""

from __future__ import annotations

import contextlib
import csv
import http.client
import io
import os
import secrets
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Annotated, Any

import pytest
from fastapi import FastAPI, Query
from fastapi.testclient import TestClient
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect as ws_connect

from backend.api.schemas import SampleQuery
from backend.edge.limits import SampleBudget
from backend.edge.redact import redact
from harness.server import running_server
from tests.conftest import wait_for
from tests.edge.edge_app import Gate, edge_app


# ---- the sampling budget counts the n the application uses ---------------------------------------
@pytest.mark.parametrize("query", ["n=1&n=1000", "%6E=1000", "n=5&%6E=1000", "n=+1000", "n=1_000"])
def test_the_budget_counts_the_n_that_is_drawn(query: str) -> None:
    gate = Gate()
    budget = SampleBudget(edge_app(gate), budget=2000, wait=0)
    with TestClient(budget) as client, ThreadPoolExecutor(1) as pool:
        held = pool.submit(client.get, f"/api/runs/current/sample?{query}")
        wait_for(lambda: gate.waiting == 1, what="the request in flight")
        counted = budget.in_flight
        client.portal.call(gate.release.set)
        assert held.result(30).status_code == 200 and budget.in_flight == 0
    assert counted == 1000


def test_the_budget_reads_n_as_the_sample_routes_do() -> None:
    """One source of truth: for every spelling, what the budget counts is what SampleQuery gets."""
    app = FastAPI()

    @app.get("/q")
    def parsed(q: Annotated[SampleQuery, Query()]) -> SampleQuery:
        return q

    budget = SampleBudget(edge_app(), budget=5000)
    client = TestClient(app)
    spellings = ["", "n=7", "n=1&n=1000", "%6E=1000", "n=1000&%6e=3", "n=%20900", "n=1_000", "n=800.0", "seed=2&n=4"]
    for query in spellings:
        r = client.get(f"/q?{query}")
        assert r.status_code == 200, query
        assert budget._names(query.encode()) == r.json()["n"], query
    assert client.get("/q?n=2&n=x").status_code == 422  # the last one counts; a bad one is refused


# ---- a CSV export a spreadsheet opens without running anything -----------------------------------
def test_names_that_start_like_formulas_are_quoted_in_the_csv(make_client: Callable[..., TestClient]) -> None:
    client = make_client()
    names = ['=HYPERLINK("x")', "+1+cmd|' /C calc'!A0", "@SUM(1+1)", "-2+3", "plain -1"]
    runs = [client.post("/api/runs", json={"name": name, "max_steps": 30, "eval_every": 10}).json() for name in names]
    for run in runs:
        wait_for(lambda run=run: client.get(f"/api/runs/{run['id']}").json()["status"] == "finished", timeout=60)
    r = client.get("/api/runs/export", params={"ids": ",".join(run["id"] for run in runs), "format": "csv"})
    rows = list(csv.DictReader(io.StringIO(r.text)))
    shown = {row["run_id"]: row["run_name"] for row in rows}
    expected = ["'" + name for name in names[:4]] + ["plain -1"]  # text only where a formula could start
    assert [shown[run["id"]] for run in runs] == expected
    steps = [row for row in rows if row["kind"] == "step"]
    assert len(steps) == 5 * 30 and all(float(row["loss"]) > 0 and float(row["lr"]) > 0 for row in steps)
    assert not any(cell.startswith("'") for row in rows for key, cell in row.items() if key != "run_name")


# ---- no token in the log -------------------------------------------------------------------------
def test_redact() -> None:
    assert redact('1.2.3.4:5 - "GET /x?a=1&token=abc&b=2 HTTP/1.1" 200') == (
        '1.2.3.4:5 - "GET /x?a=1&token=***&b=2 HTTP/1.1" 200'
    )
    assert redact("/ws/runs/current?%74oken=abc") == "/ws/runs/current?%74oken=***"  # read as token too
    assert redact("/?token=") == "/?token=***"
    for kept in ("/x?tokens=abc", "/x?mytoken=abc", "token=abc without a query", "/x?a=token=abc"):
        assert redact(kept) == kept


def test_a_token_in_a_url_never_reaches_the_log(tmp_path: Path) -> None:
    secret = "SECRET" + secrets.token_hex(8)
    log = tmp_path / "server.log"
    env = {k: "" for k in os.environ if k.startswith("MAKEMORE_")}
    with running_server("--token", secret, env=env, log=log) as server:
        port = server.url.rsplit(":", 1)[1]
        paths = [f"/?token={secret}", f"/api/runs/current?a=1&token={secret}", f"/api/health?%74oken={secret}"]
        for path in paths:  # whatever the answer (a redirect, 401, 200): each is logged
            conn = http.client.HTTPConnection("127.0.0.1", int(port), timeout=30)
            conn.request("GET", path)
            conn.getresponse().read()
            conn.close()
        with (
            contextlib.suppress(InvalidStatus),
            ws_connect(f"ws://127.0.0.1:{port}/ws/runs/current?token={secret}", proxy=None, open_timeout=30) as ws,
        ):
            ws.recv(30)

        requests = ["GET /?token=", "GET /api/runs/current?a=1&token=", "GET /api/health?%74oken="]
        requests.append("WebSocket /ws/runs/current?token=")

        def logged() -> bool:
            text = log.read_text()
            return all(f'"{request}' in text for request in requests)

        wait_for(logged, timeout=30, what="the four requests logged")
    assert secret not in log.read_text()


# ---- deleting a dataset while a run is created with it -------------------------------------------
WORDS = "\n".join(["pikachu", "bulbasaur", "charmander", "squirtle", "eevee", "mewtwo", "snorlax"] * 10)


def uploaded(client: TestClient) -> str:
    r = client.post("/api/datasets", files={"file": ("w.txt", WORDS.encode(), "text/plain")})
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


def dataset_ids(client: TestClient) -> list[str]:
    return [d["id"] for d in client.get("/api/datasets").json()]


def test_a_dataset_deleted_between_a_runs_lookup_and_its_insert(
    make_client: Callable[..., TestClient], monkeypatch: pytest.MonkeyPatch
) -> None:
    client = make_client()
    dataset = uploaded(client)
    store = client.app.state.registry.store  # type: ignore[attr-defined]
    put_run = store.put_run

    def deleted_first(record: Any, wait: bool = False) -> None:
        if record.spec.dataset == dataset:
            store.delete_dataset(dataset)  # the DELETE's write lands after the run found its dataset
        put_run(record, wait)

    monkeypatch.setattr(store, "put_run", deleted_first)
    runs = len(client.get("/api/runs").json())
    r = client.post("/api/runs", json={"dataset": dataset, "batch_size": 8, "start": False})
    assert r.status_code == 409 and "was deleted while the run was being created" in r.json()["detail"]
    assert len(client.get("/api/runs").json()) == runs  # no half-made run
    assert client.delete(f"/api/datasets/{dataset}").status_code == 204  # the DELETE ends as it would
    assert dataset not in dataset_ids(client)


def test_a_run_stored_between_a_deletes_count_and_its_delete(
    make_client: Callable[..., TestClient], monkeypatch: pytest.MonkeyPatch
) -> None:
    client = make_client()
    dataset = uploaded(client)
    run = client.post("/api/runs", json={"dataset": dataset, "batch_size": 8, "start": False}).json()
    store = client.app.state.registry.datasets._store  # type: ignore[attr-defined]
    monkeypatch.setattr(store, "dataset_users", lambda key: 0)  # counted before the run's insert landed
    r = client.delete(f"/api/datasets/{dataset}")
    assert r.status_code == 409 and "a run was just created with it" in r.json()["detail"]
    assert dataset in dataset_ids(client)
    assert client.get(f"/api/runs/{run['id']}").json()["config"]["dataset"] == dataset


# ---- names show what they are --------------------------------------------------------------------
HIDDEN = ["rtl \u202egnp.exe", "zero\u200bwidth", "isolate \u2066x\u2069", "tag \U000e0041"]


def refused_for_format_characters(r: Any, code: str) -> bool:
    return r.status_code == 422 and f"invisible format characters are not allowed in a name ({code})" in r.text


def test_names_with_format_characters_are_refused(make_client: Callable[..., TestClient]) -> None:
    client = make_client()
    run = client.post("/api/runs", json={"name": "plain", "start": False}).json()
    for name, code in zip(HIDDEN, ["U+202E", "U+200B", "U+2066, U+2069", "U+E0041"], strict=True):
        assert refused_for_format_characters(client.post("/api/runs", json={"name": name}), code)
        assert refused_for_format_characters(client.patch(f"/api/runs/{run['id']}", json={"name": name}), code)
        branch = client.post(f"/api/runs/{run['id']}/branch", json={"name": name})
        assert refused_for_format_characters(branch, code)
        sweep = client.post("/api/sweeps", json={"grid": {"lr": [0.1]}, "name": name})
        assert refused_for_format_characters(sweep, code)
        upload = client.post("/api/datasets", files={"file": (f"{name}.txt", WORDS.encode(), "text/plain")})
        assert refused_for_format_characters(upload, code)
    assert client.get(f"/api/runs/{run['id']}").json()["name"] == "plain"
    assert client.get("/api/sweeps").json() == [] and len(dataset_ids(client)) == 1
    renamed = client.patch(f"/api/runs/{run['id']}", json={"name": "rtl ok · ünïcode 名前 🙂"})
    assert renamed.status_code == 200 and renamed.json()["name"] == "rtl ok · ünïcode 名前 🙂"
