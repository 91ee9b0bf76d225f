from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient
from starlette.testclient import WebSocketTestSession
from starlette.websockets import WebSocketDisconnect

from tests.conftest import wait_for


def until(ws: WebSocketTestSession, kind: str, limit: int = 10_000, **fields: Any) -> dict[str, Any]:
    """The next message of a type (with these field values, if given), skipping others (a
    bounded number of them)."""
    for _ in range(limit):
        msg: dict[str, Any] = ws.receive_json()
        if msg["type"] == kind and all(msg.get(k) == v for k, v in fields.items()):
            return msg
    raise AssertionError(f"no {kind!r} message in {limit} messages")


def test_snapshot_then_stream(client: TestClient) -> None:
    with client.websocket_connect("/ws/runs/current") as ws:
        snap = ws.receive_json()
        assert snap["type"] == "snapshot" and snap["reason"] == "connect"
        assert snap["run"]["status"] == "paused"
        start = {
            "step": 0,
            "lr": 0.1,
            "batch_size": 32,
            "eval_every": 1000,
            "schedule": {"kind": "constant"},
            "max_steps": 200_000,
        }
        assert snap["changes"] in ([], [start])  # the trainer thread may not have said it yet
        assert set(snap["history"]) == {"step", "loss", "lr", "time", "n_steps"}
        ws.send_json({"type": "resume"})
        assert until(ws, "status")["status"] == "running"
        seen: list[int] = []
        while len(seen) < 2500:
            msg = ws.receive_json()
            if msg["type"] == "steps":
                assert len(msg["step"]) == len(msg["loss"]) and msg["steps_per_s"] > 0
                # steps_per_s has one decimal
                assert msg["examples_per_s"] == pytest.approx(msg["steps_per_s"] * 32, rel=0.01, abs=0.05 * 32)
                seen += msg["step"]
            elif msg["type"] == "eval":
                assert msg["step"] % 1000 == 0 and msg["ms"] >= 0
        assert seen == list(range(len(seen)))  # every step, in order, no gaps
        ws.send_json({"type": "pause"})
        status = until(ws, "status")
        assert status["status"] == "paused" and status["detail"]


def test_set_is_confirmed_with_its_step(client: TestClient) -> None:
    with client.websocket_connect("/ws/runs/current") as ws:
        ws.receive_json()
        ws.send_json({"type": "resume"})
        ws.send_json({"type": "set", "lr": 0.03, "batch_size": 16})
        change = until(ws, "hparams")
        assert change["lr"] == 0.03 and change["batch_size"] == 16 and change["step"] >= 0
        # steps from change["step"] on ran at batch 16: the reported throughput says so
        msg = until(ws, "steps")
        while msg["step"][0] < change["step"]:
            msg = until(ws, "steps")
        assert msg["examples_per_s"] == pytest.approx(msg["steps_per_s"] * 16, rel=0.01, abs=0.05 * 16)
    run = client.get("/api/runs/current").json()
    assert run["hparams"]["lr"] == 0.03 and run["hparams"]["batch_size"] == 16


@pytest.mark.parametrize(
    ("message", "detail"),
    [
        ('{"type": "set", "lr": 0}', "lr: Input should be greater than 0"),
        ('{"type": "set", "lr": 10.5}', "lr: Input should be less than or equal to 10"),
        ('{"type": "set", "lr": NaN}', "lr: Input should be a finite number"),
        ('{"type": "set", "lr": Infinity}', "lr: Input should be a finite number"),
        ('{"type": "set", "lr": "0.1"}', "lr: Input should be a valid number"),
        ('{"type": "set", "batch_size": 0}', "batch_size"),
        ('{"type": "set", "batch_size": 99999}', "training examples of this run's dataset"),
        ('{"type": "set", "batch_size": 99999999}', "less than or equal to 10000000"),
        ('{"type": "set", "eval_every": 1000001}', "eval_every"),
        ('{"type": "set", "max_steps": 0}', "max_steps"),
        ('{"type": "set", "momentum": 0.9}', "momentum: Extra inputs are not permitted"),
        ('{"type": "jump"}', "does not match any of the expected tags"),
        ('{"lr": 0.1}', "Unable to extract tag"),
        ("[1, 2]", "message"),
        ("not json", "not JSON"),
    ],
)
def test_bad_messages_get_an_error_and_the_socket_stays(client: TestClient, message: str, detail: str) -> None:
    with client.websocket_connect("/ws/runs/current") as ws:
        ws.receive_json()
        ws.send_text(message)
        err = until(ws, "error")
        assert detail in err["detail"], err
        ws.send_json({"type": "set", "lr": 0.07})  # still open and working
        until(ws, "hparams", lr=0.07)
    assert client.get("/api/runs/current").json()["hparams"]["batch_size"] == 32


def test_binary_message_is_an_error(client: TestClient) -> None:
    with client.websocket_connect("/ws/runs/current") as ws:
        ws.receive_json()
        ws.send_bytes(b'{"type": "pause"}')
        assert "text" in until(ws, "error")["detail"]


def test_resume_at_max_steps_is_an_error(client: TestClient) -> None:
    run = client.post("/api/runs", json={"max_steps": 200}).json()
    wait_for(lambda: client.get(f"/api/runs/{run['id']}").json()["status"] == "finished", what="max_steps")
    with client.websocket_connect(f"/ws/runs/{run['id']}") as ws:
        assert ws.receive_json()["run"]["status"] == "finished"
        ws.send_json({"type": "resume"})
        assert "max_steps" in until(ws, "error")["detail"]


def test_message_over_4_kib_closes_with_1009(client: TestClient) -> None:
    with client.websocket_connect("/ws/runs/current") as ws:
        ws.receive_json()
        ws.send_text('{"type": "set", "lr": 0.1, "pad": "' + "x" * 4096 + '"}')
        with pytest.raises(WebSocketDisconnect) as e:
            until(ws, "never")
        assert e.value.code == 1009
    with client.websocket_connect("/ws/runs/current") as ws:  # exactly 4 KiB is fine
        ws.receive_json()
        text = '{"type": "set", "lr": 0.2}'
        ws.send_text(text + " " * (4096 - len(text)))
        assert until(ws, "hparams")["lr"] == 0.2


@pytest.mark.parametrize(
    ("origin", "allowed"),
    [
        (None, True),
        ("http://testserver", True),
        ("http://evil.example", False),
        ("http://testserver.evil.example", False),
        ("null", False),
        ("http://localhost:5173", True),  # listed in MAKEMORE_ALLOWED_ORIGINS below
    ],
)
def test_origin_check(
    make_client: Callable[..., TestClient], monkeypatch: pytest.MonkeyPatch, origin: str | None, allowed: bool
) -> None:
    monkeypatch.setenv("MAKEMORE_ALLOWED_ORIGINS", "http://localhost:5173, https://class.example.org")
    client = make_client()
    headers = {"origin": origin} if origin else {}
    if allowed:
        with client.websocket_connect("/ws/runs/current", headers=headers) as ws:
            assert ws.receive_json()["type"] == "snapshot"
    else:
        with pytest.raises(WebSocketDisconnect) as e, client.websocket_connect("/ws/runs/current", headers=headers):
            pass
        assert e.value.code == 1008


def test_unknown_run_closes(client: TestClient) -> None:
    with pytest.raises(WebSocketDisconnect) as e, client.websocket_connect("/ws/runs/nope"):
        pass
    assert e.value.code == 4404


def test_two_clients_see_each_others_changes(client: TestClient) -> None:
    run_id = client.get("/api/runs/current").json()["id"]
    with client.websocket_connect("/ws/runs/current") as a, client.websocket_connect(f"/ws/runs/{run_id}") as b:
        a.receive_json()
        b.receive_json()
        a.send_json({"type": "set", "lr": 0.3})
        assert until(b, "hparams")["lr"] == 0.3
        assert until(a, "hparams")["lr"] == 0.3
        b.send_json({"type": "resume"})
        assert until(a, "status")["status"] == "running"
        b.send_json({"type": "set", "batch_size": 64})
        from_a, from_b = until(a, "hparams"), until(b, "hparams")
        assert from_a == from_b and from_a["batch_size"] == 64


def test_current_followers_move_to_a_new_run(client: TestClient) -> None:
    old = client.get("/api/runs/current").json()["id"]
    with client.websocket_connect("/ws/runs/current") as follower, client.websocket_connect(f"/ws/runs/{old}") as fixed:
        follower.receive_json()
        fixed.receive_json()
        fixed.send_json({"type": "resume"})
        until(fixed, "status", status="running")
        new = client.post("/api/runs", json={"lr": 0.2}).json()
        snap = until(follower, "snapshot")
        assert snap["reason"] == "new_run" and snap["run"]["id"] == new["id"]
        follower.send_json({"type": "set", "lr": 0.15})  # steers the new run
        until(follower, "hparams", lr=0.15)
        then = client.get(f"/api/runs/{old}").json()["step"]
        while until(fixed, "steps")["step"][-1] <= then:  # the old run trains on, side by side
            pass
        assert client.get(f"/api/runs/{old}").json()["status"] == "running"
    wait_for(lambda: client.get(f"/api/runs/{new['id']}").json()["hparams"]["lr"] == 0.15)
    assert client.get(f"/api/runs/{old}").json()["hparams"]["lr"] == 0.1


def test_evaluations_noise_embeddings_and_lr_find_stream(client: TestClient) -> None:
    with client.websocket_connect("/ws/runs/current") as ws:
        snap = ws.receive_json()
        assert {"embeddings", "lrfind"} <= set(snap) and snap["lrfind"] is None
        ws.send_json({"type": "resume"})
        steps = until(ws, "steps")
        assert len(steps["lr"]) == len(steps["step"]) and set(steps["lr"]) == {0.1} and steps["time"] > 0
        noise = until(ws, "noise")
        assert noise["b_noise"] > 0
        emb = until(ws, "embeddings")
        assert emb["chars"][0] == "." and len(emb["x"]) == 27 and emb["method"] == "pca"
        assert client.post("/api/runs/current/lr-find", json={"steps": 100, "max_lr": 0.5}).status_code == 202
        start = until(ws, "lrfind_start")
        assert (start["min_lr"], start["max_lr"], start["steps"], start["batch_size"]) == (0.001, 0.5, 100, 32)
        progress = until(ws, "lrfind")
        assert progress["lr"][0] == pytest.approx(0.001) and len(progress["loss"]) == len(progress["lr"])
        done = until(ws, "lrfind_done")
        assert len(done["lr"]) == 100 and done["suggestion"] is not None and not done["stopped_early"]
        assert until(ws, "status")["status"] == "running"  # resumed after the sweep
    with client.websocket_connect("/ws/runs/current") as ws:
        snap = ws.receive_json()
        assert snap["lrfind"]["suggestion"] == done["suggestion"] and "lr" not in snap["lrfind"]
        assert snap["embeddings"]["chars"][0] == "."
        assert all(len(e) == 4 for e in snap["evals"]) and snap["evals"][0][3] > 0  # b_noise, filled in
        h = snap["history"]
        assert len(h["lr"]) == len(h["time"]) == len(h["step"]) and h["time"] == sorted(h["time"])


def test_schedule_over_the_websocket(client: TestClient) -> None:
    with client.websocket_connect("/ws/runs/current") as ws:
        ws.receive_json()
        ws.send_json({"type": "set", "schedule": {"kind": "step", "at": 0, "factor": 0.5}})
        change = until(ws, "hparams")
        assert change["schedule"] == {"kind": "step", "at": 0, "factor": 0.5} and change["lr"] == 0.1
        ws.send_json({"type": "resume"})
        assert set(until(ws, "steps")["lr"]) == {0.05}
        ws.send_json({"type": "set", "schedule": {"kind": "linear"}})
        assert "schedule" in until(ws, "error")["detail"]


def test_overview_stream_of_runs(client: TestClient) -> None:
    first = client.get("/api/runs/current").json()
    with client.websocket_connect("/ws/runs") as ws:
        snap = ws.receive_json()
        assert snap["type"] == "runs" and [r["id"] for r in snap["runs"]] == [first["id"]]
        assert snap["runs"][0]["status"] == "paused" and snap["runs"][0]["eval"][0] == 0
        new = client.post("/api/runs", json={"max_steps": 3000, "name": "watched"}).json()
        seen: dict[str, dict[str, Any]] = {}
        messages = 0
        while seen.get(new["id"], {}).get("status") != "finished":
            msg = ws.receive_json()
            assert msg["type"] == "runs_changed"
            messages += 1
            seen |= {r["id"]: r for r in msg["runs"]}
        done = seen[new["id"]]
        assert done["name"] == "watched" and done["step"] == 3000 and done["eval"][0] == 3000
        assert done["cause"] == "max_steps" and done["checkpoint_held"] is False
        assert done["loss"] is not None and done["best_dev_loss"] is not None and done["lr"] == 0.1
        run = client.get(f"/api/runs/{new['id']}").json()
        assert messages <= 3 * run["train_seconds"] + 6  # a few a second at most, whatever the steps
        client.delete(f"/api/runs/{new['id']}")
        assert until(ws, "run_deleted")["id"] == new["id"]
    with client.websocket_connect("/ws/runs") as ws:
        assert [r["id"] for r in ws.receive_json()["runs"]] == [first["id"]]
