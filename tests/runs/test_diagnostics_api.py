"""Inside the network, live (issue 23), through the API: diagnostic points and gradient-direction
passes over the websocket, in the snapshot, from GET /api/runs/{id}/diagnostics and the history
file, kept across a restart; and what the store keeps of a long run."""

from __future__ import annotations

import itertools
import json
import math
import os
import signal
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch
from fastapi.testclient import TestClient
from starlette.testclient import WebSocketTestSession

from backend.core import diagnostics as diag
from backend.core.data import Dataset
from backend.core.model import MLP, ModelShape
from backend.core.optim import Optimizer, OptimizerSpec
from backend.store.diagnostics import HIST_KEEP, SCALARS, scalars
from backend.store.store import Store
from backend.streaming.messages import encode, event_message
from backend.training.diagnosing import MIN_EVERY
from backend.training.protocol import Diagnostics
from tests.conftest import wait_for

Client = Callable[..., TestClient]
MESSAGE_LIMIT = 8 * 1024


def receive(ws: WebSocketTestSession, seen: list[dict[str, Any]]) -> dict[str, Any]:
    """The next message; diag and gradcos ones are checked for size and kept in `seen`."""
    text = ws.receive_text()
    msg: dict[str, Any] = json.loads(text)
    if msg["type"] in ("diag", "gradcos"):
        assert len(text.encode()) <= MESSAGE_LIMIT, (msg["type"], len(text))
        seen.append(msg)
    return msg


def until(
    ws: WebSocketTestSession, seen: list[dict[str, Any]], done: Callable[[dict[str, Any]], bool]
) -> dict[str, Any]:
    for _ in range(20_000):
        msg = receive(ws, seen)
        if done(msg):
            return msg
    raise AssertionError("no such message in 20,000")


def of(seen: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [m for m in seen if m["type"] == kind]


def stored(client: TestClient, run_id: str, **params: Any) -> dict[str, Any]:
    r = client.get(f"/api/runs/{run_id}/diagnostics", params=params)
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


def as_rows(body: dict[str, Any]) -> dict[int, list[Any]]:
    """The endpoint's columns as {step: SCALARS}."""
    p = body["points"]
    assert body["scalars"] == list(SCALARS)
    return {s: [p[k][i] for k in SCALARS] for i, s in enumerate(p["step"])}


def test_points_and_passes_live_stored_and_after_a_restart(make_client: Client, tmp_path: Path) -> None:
    """A lecture-init run of 1,200 steps evaluating every 400: a point at step 0 (its saturated
    tanh units: over half, as in the lecture) and at the first step after each evaluation, at
    most 8 KB each; a gradient-direction pass at the first evaluation whose minibatch cosines
    point along the full gradient and rise with the batch size. The endpoint, the snapshot and the
    history file say what the websocket said, and so do they after a restart; resumed, the run's
    points go on after them."""
    client = make_client(home=tmp_path)
    run = client.post("/api/runs", json={"max_steps": 1200, "eval_every": 400, "start": False}).json()
    rid, seen = run["id"], []
    with client.websocket_connect(f"/ws/runs/{rid}") as ws:
        assert receive(ws, seen)["type"] == "snapshot"
        ws.send_json({"type": "resume"})
        until(ws, seen, lambda m: m["type"] == "status" and m["status"] == "finished")
    points, passes = of(seen, "diag"), of(seen, "gradcos")
    steps = [p["step"] for p in points]
    assert steps == sorted(steps) and {0, 400, 800} <= set(steps), steps
    assert all(b - a >= MIN_EVERY for a, b in itertools.pairwise(steps) if b not in (400, 800))
    first = points[0]
    assert first["hidden"]["saturated"] > 0.5 and first["hidden"]["rows"] == diag.PROBE_SIZE
    assert set(first["params"]) == set(diag.NAMES)
    assert all(-6 < p["update_data"] < 0 and p["grad_data"] > 0 for p in first["params"].values())

    assert passes and passes[0]["step"] == 0  # the first evaluation always brings one
    g = passes[0]
    sizes, mean = g["batch_sizes"], g["mean"]
    assert 32 in sizes and g["current"] == 32 and sizes == sorted(sizes)
    assert mean[sizes.index(32)] > 0 and mean[sizes.index(1024)] > mean[sizes.index(1)]
    assert len(g["predicted"]) == len(sizes)

    def check(c: TestClient) -> None:
        body = stored(c, rid)
        assert body["total"] == len(points)
        assert as_rows(body) == {p["step"]: scalars(p) for p in points}
        assert body["gradcos"] == [{k: v for k, v in m.items() if k != "type"} for m in passes]
        latest = body["latest"]
        assert latest["step"] == points[-1]["step"]
        assert latest["hidden"]["preact"]["hist"] == points[-1]["hidden"]["preact"]["hist"]
        assert latest["params"]["W1"]["grad_hist"] == points[-1]["params"]["W1"]["grad_hist"]
        part = stored(c, rid, **{"from": 1, "to": 800})
        assert sorted(as_rows(part)) == [s for s in steps if 1 <= s <= 800]
        with c.websocket_connect(f"/ws/runs/{rid}") as ws:
            snap = ws.receive_json()
        assert snap["diag"]["points"]["step"] == steps[-200:]
        assert snap["diag"]["latest"] == {k: v for k, v in points[-1].items() if k != "type"}
        assert snap["gradcos"] == {k: v for k, v in passes[-1].items() if k != "type"}
        history = c.get(f"/api/runs/{rid}/history").json()["diagnostics"]
        assert history["points"]["step"] == steps and history["scalars"] == list(SCALARS)

    check(client)
    client.__exit__(None, None, None)
    again = make_client(home=tmp_path)
    check(again)
    r = again.patch(f"/api/runs/{rid}", json={"status": "running", "max_steps": 1300})
    assert r.status_code == 200, r.text
    wait_for(lambda: stored(again, rid)["total"] > len(points), timeout=60, what="a point after the restart")
    after = sorted(as_rows(stored(again, rid)))
    assert after[: len(steps)] == steps and after[len(steps)] == 1200  # the first step it took again


def test_scaled_init_saturates_less(client: TestClient) -> None:
    run = client.post("/api/runs", json={"init": "scaled", "max_steps": 50}).json()
    body = wait_for(lambda: (b := stored(client, run["id"]))["total"] and b, timeout=60, what="the first point")
    assert body["points"]["step"][0] == 0
    assert body["points"]["saturated"][0] < 0.3


def test_a_tenth_of_the_rate_lowers_every_update_by_one_decade(client: TestClient) -> None:
    """SGD: the update is lr * g, so lr / 10 takes log10(update std / weight std) down by 1 at the
    next point (a change forces one at its first step); the point just before comes from a change
    that does not touch the rate (eval_every), a few steps earlier. Big batches (8,192 of the
    ~11,000 rows): the gradients of two steps differ little (at batch 1,024, b1's grad:data still
    moved by up to 45% from one step to the next, its update:data with it); and the rate's own
    part, update:data less log10(grad:data), drops by 1 to 2%."""
    run = client.post("/api/runs", json={"init": "scaled", "batch_size": 8192, "max_steps": 10**6}).json()
    seen: list[dict[str, Any]] = []
    with client.websocket_connect(f"/ws/runs/{run['id']}") as ws:
        receive(ws, seen)
        until(ws, seen, lambda m: m["type"] == "diag" and m["step"] >= 50)
        ws.send_json({"type": "set", "eval_every": 999})
        at = until(ws, seen, lambda m: m["type"] == "hparams" and m["eval_every"] == 999)["step"]
        until(ws, seen, lambda m: m["type"] == "diag" and m["step"] >= at)
        ws.send_json({"type": "set", "lr": 0.01})
        at = until(ws, seen, lambda m: m["type"] == "hparams" and m["lr"] == 0.01)["step"]
        after = until(ws, seen, lambda m: m["type"] == "diag" and m["step"] >= at)
        ws.send_json({"type": "pause"})
    assert after["step"] == at, (after["step"], at)  # the change's own first step
    before = [m for m in of(seen, "diag") if m["step"] < at][-1]
    for name in diag.NAMES:
        drop = after["params"][name]["update_data"] - before["params"][name]["update_data"]
        assert drop == pytest.approx(-1.0, abs=0.15), (name, drop)
        own = [p["params"][name]["update_data"] - math.log10(p["params"][name]["grad_data"]) for p in (before, after)]
        assert own[1] - own[0] == pytest.approx(-1.0, abs=0.02), (name, own)


def test_a_long_runs_diagnostics_fit_in_a_megabyte(tmp_path: Path, small_dataset: Dataset) -> None:
    """A 200,000-step run at the defaults (eval every 1,000): a point at each evaluation and at
    most one per MIN_EVERY steps besides, every one's scalars kept; the latest HIST_KEEP keep
    their histograms; a pass at every evaluation (at most). Under 1 MB in the store."""
    model = MLP.lecture_init(ModelShape(small_dataset.vocab.size))
    opt, ex = Optimizer(model, OptimizerSpec("sgd")), small_dataset.splits(3).train
    before = diag.snapshot(model)
    opt.step(ex.X, ex.Y, torch.arange(32), 0.1)
    point = diag.diagnostic_point(
        0, model, ex.X[:1024], diag.step_gradients(opt.step), diag.applied_updates(model, before)
    )
    steps = sorted(set(range(0, 200_001, MIN_EVERY)) | set(range(0, 200_001, 1000)))
    store = Store(tmp_path / "home")
    store.open()
    try:
        for s in steps:
            store.diagnostics.add("r", s, {**point, "step": s})
        gradcos = {
            "type": "gradcos",
            "batch_sizes": [1, 4, 16, 32, 64, 256, 1024],
            **{k: [0.1234, 0.2345, 0.3456, 0.4567, 0.5678, 0.6789, 0.789] for k in ("mean", "std", "min", "max")},
            "predicted": [0.1234, 0.2345, 0.3456, 0.4567, 0.5678, 0.6789, 0.789],
            "b_noise": 345.6,
            "current": 32,
        }
        for s in range(0, 200_001, 1000):
            store.diagnostics.add_gradcos("r", {**gradcos, "step": s})
        store.flush()
        size = store.diagnostics.bytes("r")
        assert len(steps) == 2001 and size <= 1_000_000, size
        assert len(store.diagnostics.scalars("r")) == len(steps)
        (kept,) = store._reader().execute("SELECT COUNT(*) FROM diagnostics WHERE point IS NOT NULL").fetchone()
        assert kept == HIST_KEEP
        assert store.diagnostics.latest("r")["step"] == 200_000
        assert math.isclose(store.diagnostics.scalars("r", latest=1)[0][1][0], point["hidden"]["saturated"])
        assert len(encode(event_message(Diagnostics(0, point)))) <= MESSAGE_LIMIT
    finally:
        store.close()


def test_cut_with_the_run_copied_for_a_branch_and_deleted_with_it(make_client: Client, tmp_path: Path) -> None:
    """A worker that dies: its run stands at its last checkpoint, and its points of the steps it
    takes again are gone (its passes after that step too); a branch at an earlier checkpoint
    starts with the points before it; a deleted run leaves no row behind."""
    client = make_client(home=tmp_path)
    run = client.post("/api/runs", json={"max_steps": 10**7, "eval_every": 500}).json()
    rid = run["id"]
    wait_for(lambda: len(client.get(f"/api/runs/{rid}/checkpoints").json()) >= 3, timeout=60, what="checkpoints")
    pid = int(client.get(f"/api/runs/{rid}").json()["worker"].split(":")[1])
    os.kill(pid, signal.SIGKILL)
    wait_for(lambda: client.get(f"/api/runs/{rid}").json()["status"] == "interrupted", what="interrupted")
    k = client.get(f"/api/runs/{rid}").json()["step"]
    db = sqlite3.connect(tmp_path / "makemore.db")
    body = stored(client, rid)
    assert body["points"]["step"] and max(body["points"]["step"]) < k
    assert all(g["step"] <= k for g in body["gradcos"])
    assert db.execute("SELECT COUNT(*) FROM diagnostics WHERE run_id = ? AND step >= ?", (rid, k)).fetchone() == (0,)

    at = client.get(f"/api/runs/{rid}/checkpoints").json()[-2]["step"]
    child = client.post(f"/api/runs/{rid}/branch", json={"step": at, "start": False}).json()
    copied = stored(client, child["id"])
    assert copied["points"]["step"] == [s for s in body["points"]["step"] if s < at]
    assert copied["gradcos"] == [g for g in body["gradcos"] if g["step"] <= at]

    assert client.delete(f"/api/runs/{rid}").status_code in (200, 204)
    for table in ("diagnostics", "gradcos"):
        assert db.execute(f"SELECT COUNT(*) FROM {table} WHERE run_id = ?", (rid,)).fetchone() == (0,)
    db.close()
