"""A run's points for overlays (backend/api/points.py): the answers for runs that are not live
are kept until any run goes live, those of live runs never; and GET /api/runs/points, several
runs' records and points in one request (the compare view's first)."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient

from backend.api.pages import MAX_COMPARED
from backend.api.points import POINTS_JSON, evals_in
from backend.api.schemas import PointsPublic, RunsPointsPublic
from backend.app.main import create_app
from backend.config import Settings
from backend.core.data import Dataset
from backend.runs.table import RECORDS_ON_LOOP
from tests.conftest import wait_for


def stored_runs(home: Path, dataset: Dataset, n: int = 2) -> list[str]:
    """`n` finished runs in `home`, written by a server that has stopped since (so that none is
    live in the next one)."""
    with TestClient(create_app(Settings(home=home), dataset)) as first:
        ids = [first.post("/api/runs", json={"max_steps": 300, "eval_every": 100}).json()["id"] for _ in range(n)]
        for run_id in ids:
            wait_for(functools.partial(finished, first, run_id), timeout=60, what=f"run {run_id} finished")
    return ids


def finished(client: TestClient, run_id: str) -> bool:
    return bool(client.get(f"/api/runs/{run_id}").json()["status"] == "finished")


@pytest.fixture
def two_stored(
    make_client: Callable[..., TestClient], small_dataset: Dataset, tmp_path: Path
) -> tuple[TestClient, str, str]:
    """A server on a home with two finished runs, neither of them live in it."""
    a, b = stored_runs(tmp_path / "home", small_dataset)
    return make_client(home=tmp_path / "home"), a, b


def test_kept_while_no_run_goes_live(two_stored: tuple[TestClient, str, str]) -> None:
    client, a, b = two_stored
    kept = client.app.state.points

    def points(run_id: str, **q: int) -> dict[str, Any]:
        answer: dict[str, Any] = client.get(f"/api/runs/{run_id}/points", params={"points": 50, **q}).json()
        return answer

    first = points(a)
    assert len(first["step"]) <= 50 and first["end"] == 300 and kept.reads == 1
    assert points(a) == first and kept.reads == 1  # kept
    assert points(a, start=100)["step"][0] >= 100 and kept.reads == 2  # another range: read

    client.patch(f"/api/runs/{b}", json={"name": "renamed"})  # b goes live: what was kept may be old
    assert points(a) == first and kept.reads == 3

    # a live run's answers are never kept: a change made now is in the next one
    assert client.patch(f"/api/runs/{a}", json={"lr": 0.05}).status_code == 200
    changed = wait_for(lambda: points(a)["changes"][-1]["lr"] == 0.05, timeout=30, what="the change in the points")
    assert changed
    reads, from_memory = kept.reads, kept.from_memory
    points(a)  # the whole run: drawn from what its channel holds, not read from the store
    assert (kept.reads, kept.from_memory) == (reads, from_memory + 1)
    points(a, start=290)  # 10 steps, 50 points asked: more than it has buckets there, so read
    points(a, start=290, end=10**6)  # the same 10 steps (it has no more)
    assert (kept.reads, kept.from_memory) == (reads + 2, from_memory + 1)


def test_several_runs_in_one_request(two_stored: tuple[TestClient, str, str]) -> None:
    client, a, b = two_stored
    gone = "0123456789ab"
    r = client.get("/api/runs/points", params={"ids": f"{b},{gone},{a},{b}", "points": 40})
    assert r.status_code == 200
    body = r.json()
    assert [x["run"]["id"] for x in body["runs"]] == [b, a] and body["missing"] == [gone]  # in order, once
    for x in body["runs"]:
        run_id = x["run"]["id"]
        assert x["points"] == client.get(f"/api/runs/{run_id}/points", params={"points": 40}).json()
        one = client.get(f"/api/runs/{run_id}").json()
        assert {k: x["run"][k] for k in ("name", "status", "step", "hparams")} == {
            k: one[k] for k in ("name", "status", "step", "hparams")
        }
    for bad in ("nope", "", ",".join([a] * 21), f"{a},,{b}"):
        r = client.get("/api/runs/points", params={"ids": bad})
        assert r.status_code == 422, bad
    assert client.get("/api/runs/points", params={"ids": a, "points": 5}).status_code == 422


def test_several_runs_read_in_one_go(two_stored: tuple[TestClient, str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    """The batched request reads the runs' records on the event loop and their histories in one
    thread hop (a hop costs 0.1-0.45 s when training runs hold the cores), and only what is not
    kept."""
    client, a, b = two_stored
    registry = client.app.state.registry
    hops: list[str] = []
    real = asyncio.to_thread

    async def counted(fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Any:
        hops.append(getattr(fn, "__qualname__", repr(fn)))
        return await real(fn, *args, **kwargs)

    monkeypatch.setattr("backend.runs.histories.asyncio.to_thread", counted)
    histories = registry.histories
    read: list[list[str]] = []

    async def spy(records: list[Any], buckets: bool = False) -> Any:
        read.append([r.id for r in records])
        return await histories(records, buckets)

    monkeypatch.setattr(registry, "histories", spy)
    params = {"ids": f"{a},{b}", "points": 40}
    first = client.get("/api/runs/points", params=params).json()
    assert len(hops) == 1 and read == [[a, b]]  # both histories
    hops.clear()
    assert client.get("/api/runs/points", params=params).json() == first
    assert hops == [] and read == [[a, b]]  # the records again, no hop; the points were kept


def test_at_most_the_compare_views_runs(two_stored: tuple[TestClient, str, str]) -> None:
    """GET /api/runs/points takes as many runs as the compare view shows (pages.MAX_COMPARED),
    all read on the event loop (registry.RECORDS_ON_LOOP), and says no to one more."""
    client, a, b = two_stored
    assert MAX_COMPARED <= RECORDS_ON_LOOP
    others = [f"{i:012x}" for i in range(MAX_COMPARED - 2)]
    full = client.get("/api/runs/points", params={"ids": ",".join([a, b, *others]), "points": 20})
    assert full.status_code == 200
    assert [r["run"]["id"] for r in full.json()["runs"]] == [a, b] and full.json()["missing"] == others
    more = client.get("/api/runs/points", params={"ids": ",".join([a, b, *others, "f" * 12]), "points": 20})
    assert more.status_code == 422


def test_kept_points_sent_as_written(two_stored: tuple[TestClient, str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    """A kept answer is sent as the JSON it was written as, not read back and written out again
    for each request (20 runs' points cost the event loop ~8 ms a time); both endpoints agree
    with the schemas they document."""
    client, a, b = two_stored
    written: list[int] = []
    dump = POINTS_JSON.dump_json

    def counted(answer: PointsPublic, **kwargs: Any) -> bytes:
        written.append(len(answer.step))
        return dump(answer, **kwargs)

    monkeypatch.setattr(POINTS_JSON, "dump_json", counted)
    params = {"ids": f"{a},{b}", "points": 40}
    first = client.get("/api/runs/points", params=params)
    assert len(written) == 2
    again = client.get("/api/runs/points", params=params)
    assert again.content == first.content and len(written) == 2  # the kept bytes, as they were
    assert again.headers["content-type"] == "application/json"
    several = RunsPointsPublic.model_validate_json(again.content)
    assert [r.run.id for r in several.runs] == [a, b] and several.missing == []
    one = client.get(f"/api/runs/{a}/points", params={"points": 40})
    assert len(written) == 2 and PointsPublic.model_validate_json(one.content) == several.runs[0].points


def test_evaluations_thinned_to_the_points_asked(make_client: Callable[..., TestClient]) -> None:
    """A run with more evaluations than the points asked for sends each group's lowest and
    highest dev loss, and the last: no more than asked, all of them real, the best among them."""
    client = make_client()
    run_id = client.post("/api/runs", json={"max_steps": 600, "eval_every": 10}).json()["id"]
    wait_for(functools.partial(finished, client, run_id), timeout=60, what="the run finished")
    every = client.get(f"/api/runs/{run_id}/points", params={"points": 10_000}).json()["evals"]
    assert len(every) >= 60
    few = client.get(f"/api/runs/{run_id}/points", params={"points": 15}).json()["evals"]
    assert len(few) <= 15
    dev = {e[0]: e[2] for e in every}  # (a live run's answers come from its channel: 4 decimals)
    assert all(dev[e[0]] == pytest.approx(e[2], abs=1e-4) for e in few)
    assert [e[0] for e in few] == sorted({e[0] for e in few}) and few[-1][0] == every[-1][0]
    best = client.get(f"/api/runs/{run_id}").json()["best_dev_loss"]
    assert min(e[2] for e in few) == pytest.approx(min(dev.values()), abs=1e-4)
    assert min(dev.values()) == pytest.approx(best, abs=5e-5)  # to 4 decimals


def test_evaluations_read_the_same_live_and_stored(small_dataset: Dataset, tmp_path: Path) -> None:
    """A run's evaluations in its points are what its channel sent live (losses to 4 decimals,
    as every snapshot carries them): the server that trains it and one that reads it from the
    store answer the same."""
    home = tmp_path / "home"
    with TestClient(create_app(Settings(home=home), small_dataset)) as first:
        run_id = first.post("/api/runs", json={"max_steps": 300, "eval_every": 20}).json()["id"]
        wait_for(functools.partial(finished, first, run_id), timeout=60, what="the run finished")
        live = first.get(f"/api/runs/{run_id}/points", params={"points": 40}).json()["evals"]
        assert first.app.state.points.from_memory == 1  # from its channel
    with TestClient(create_app(Settings(home=home), small_dataset)) as second:
        stored = second.get(f"/api/runs/{run_id}/points", params={"points": 40}).json()["evals"]
        assert second.app.state.points.reads == 1  # from the store
    assert len(live) == 16 and all(e[2] == round(e[2], 4) for e in live)
    assert stored == live


def test_evals_in_keeps_each_groups_extremes() -> None:
    """evals_in against the contract computed group by group, on evaluations with gaps (None)."""
    rng = np.random.default_rng(0)
    for _ in range(50):
        n, limit = int(rng.integers(1, 400)), int(rng.integers(10, 60))
        steps = np.cumsum(rng.integers(1, 50, n)).tolist()
        devs = [None if rng.random() < 0.1 else float(rng.normal(2.5, 0.3)) for _ in range(n)]
        evals = [(s, 2.0, d, None) for s, d in zip(steps, devs, strict=True)]
        start, stop = steps[n // 5], steps[n - 1 - n // 7]
        inside = [e for e in evals if start <= e[0] <= stop]
        got = evals_in(evals, start, stop, limit)
        if len(inside) <= limit:
            assert got == inside
            continue
        assert len(got) <= limit and got[-1] == inside[-1]
        groups = (limit - 1) // 2
        width = -(-len(inside) // groups)
        for g in range(0, len(inside), width):
            group = [e for e in inside[g : g + width] if e[2] is not None]
            for pick in (min, max):
                if group:  # the first of the group's lowest (highest) dev losses is kept
                    assert next(e for e in group if e[2] == pick(x[2] for x in group)) in got
        assert [e[0] for e in got] == sorted(e[0] for e in got)
