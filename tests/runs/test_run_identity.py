"""Runs that can be told apart (issue 22): default names that say what differs from the lecture's
run, unique within and across sweeps; and `current` as a user means it: the run last created,
branched or resumed by hand, never a sweep's run."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi.testclient import TestClient

from backend.runs.sweeps import unique
from backend.training.spec import RunSpec
from tests.conftest import wait_for

Client = Callable[..., TestClient]
POKEMON = "\n".join(["pikachu", "bulbasaur", "charmander", "squirtle", "eevee", "mewtwo", "snorlax"] * 10)


def current(client: TestClient) -> dict[str, Any]:
    r = client.get("/api/runs/current")
    assert r.status_code == 200, r.text
    return r.json()  # type: ignore[no-any-return]


def create(client: TestClient, **body: Any) -> dict[str, Any]:
    r = client.post("/api/runs", json=body)
    assert r.status_code == 201, r.text
    return r.json()  # type: ignore[no-any-return]


def test_default_names_say_what_differs_from_the_lecture() -> None:
    assert RunSpec().default_name() == "lr 0.1 · b 32"
    spec = RunSpec(optimizer="adam", init="scaled", n_hidden=100, lr=0.01, schedule={"kind": "cosine"})
    assert spec.default_name("names.txt") == "lr 0.01 · b 32 · names.txt · adam · scaled init · 3x10->100 · cosine"
    assert spec.differences(skip=frozenset({"optimizer", "n_hidden"})) == ["scaled init", "cosine"]
    assert all(ord(c) < 0x2000 for c in spec.default_name("x"))  # no glyph common fonts lack (⑂, →)


def test_created_runs_are_named_by_their_data_init_optimizer_and_size(client: TestClient) -> None:
    up = client.post("/api/datasets", files={"file": ("pokemon.txt", POKEMON.encode(), "text/plain")})
    assert up.status_code == 201, up.text
    on_upload = create(client, dataset=up.json()["id"], batch_size=16, start=False)
    assert on_upload["name"] == "lr 0.1 · b 16 · pokemon.txt"
    builtin = create(client, dataset="builtin", start=False)
    assert builtin["name"] == "lr 0.1 · b 32"  # the built-in list goes unsaid
    other = create(client, init="scaled", optimizer="momentum", n_embd=4, block_size=5, start=False)
    assert other["name"] == "lr 0.1 · b 32 · momentum · scaled init · 5x4->200"


def test_a_branch_is_named_from_its_parent_and_step(client: TestClient) -> None:
    parent = current(client)
    wait_for(lambda: current(client)["last_eval"], what="the step-0 checkpoint")
    r = client.post(f"/api/runs/{parent['id']}/branch", json={"step": 0, "lr": 0.03, "start": False})
    assert r.status_code == 201, r.text
    assert r.json()["name"] == f"from {parent['name']} @ step 0"
    assert current(client)["id"] == r.json()["id"]  # branched by hand: the user's run now


def test_two_sweeps_of_the_same_rates_name_their_runs_apart(make_client: Client) -> None:
    client = make_client(max_running=1)
    body = {"base": {"max_steps": 10**6, "n_hidden": 64}, "lr_range": {"min": 0.1, "max": 1.0, "n": 3}}
    first = client.post("/api/sweeps", json=body).json()
    second = client.post("/api/sweeps", json=body).json()
    assert first["name"] != second["name"] and second["name"] == f"{first['name']} #2"
    names = [r["name"] for s in (first, second) for r in s["runs"]]
    assert len(set(names)) == len(names) == 6, names
    assert first["runs"][0]["name"] == f"lr 0.1 · 3x10->64 · {first['name']}"
    for s in (first, second):
        client.delete(f"/api/sweeps/{s['id']}")
    assert unique("a", {"a", "a #2"}) == "a #3" and unique("b", {"a"}) == "b"


def test_lr_range_defaults_to_the_lectures_search(make_client: Client) -> None:
    client = make_client(max_running=1)
    sweep = client.post("/api/sweeps", json={"lr_range": {}}).json()
    try:
        runs = sweep["runs"]
        assert [r["hparams"]["lr"] for r in runs] == [0.001, 0.003162, 0.01, 0.03162, 0.1, 0.3162, 1.0]
        assert {r["hparams"]["max_steps"] for r in runs} == {20_000}
    finally:
        client.delete(f"/api/sweeps/{sweep['id']}")
    schema = client.get("/api/schema").json()["sweep"]
    assert schema["properties"]["base"]["default"] == {"max_steps": 20_000}
    assert {k: v["default"] for k, v in schema["$defs"]["LrRange"]["properties"].items()} == {
        "min": 0.001,
        "max": 1.0,
        "n": 7,
    }


def test_a_sweep_after_a_hand_started_run_leaves_current_alone(make_client: Client) -> None:
    client = make_client(max_running=2)
    mine = create(client, max_steps=10**6)
    assert current(client)["id"] == mine["id"]
    sweep = client.post("/api/sweeps", json={"base": {"max_steps": 10**6}, "lr_range": {"min": 0.1, "max": 1, "n": 2}})
    assert sweep.status_code == 201, sweep.text
    assert current(client)["id"] == mine["id"]  # not the sweep's newest, queued run
    r = client.patch("/api/runs/current", json={"lr": 0.05})
    assert r.status_code == 200 and r.json()["id"] == mine["id"]
    wait_for(lambda: client.get(f"/api/runs/{mine['id']}").json()["hparams"]["lr"] == 0.05, what="the change")
    for run in sweep.json()["runs"]:
        assert run["hparams"]["lr"] != 0.05
    client.delete(f"/api/sweeps/{sweep.json()['id']}")


def test_resuming_a_run_by_hand_makes_it_current(client: TestClient) -> None:
    first = current(client)
    second = create(client, start=False, name="second")
    assert current(client)["id"] == second["id"]  # created by hand
    r = client.patch(f"/api/runs/{first['id']}", json={"status": "running", "max_steps": 10**6})
    assert r.status_code == 200, r.text
    assert current(client)["id"] == first["id"]
    with client.websocket_connect("/ws/runs/current") as ws:
        assert ws.receive_json()["run"]["id"] == first["id"]  # the socket follows the same run
        client.patch(f"/api/runs/{second['id']}", json={"status": "running", "max_steps": 10**6})
        while (msg := ws.receive_json())["type"] != "snapshot":
            pass
        assert msg["reason"] == "new_run" and msg["run"]["id"] == second["id"]
    client.patch(f"/api/runs/{second['id']}", json={"status": "paused"})
    assert client.delete(f"/api/runs/{second['id']}").status_code in (200, 204)
    assert current(client)["id"] == first["id"]  # the newest run left outside sweeps


def test_current_falls_back_to_the_newest_run_outside_sweeps(make_client: Client) -> None:
    client = make_client(max_running=1)
    default = current(client)
    sweep = client.post("/api/sweeps", json={"base": {"max_steps": 10**6}, "lr_range": {"min": 0.1, "max": 1, "n": 2}})
    assert current(client)["id"] == default["id"]
    client.delete(f"/api/sweeps/{sweep.json()['id']}")
