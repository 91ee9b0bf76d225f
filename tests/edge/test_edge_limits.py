"""Limits at the edge (backend/edge/limits.py), each with the flood it guards against."""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from starlette.websockets import WebSocketDisconnect

from backend.app.main import create_app
from backend.config import Settings
from backend.core.data import Dataset
from backend.edge.limits import (
    READ_FACTOR,
    SAMPLE_PATH,
    TRY_AGAIN_LATER,
    BodyLimit,
    SampleBudget,
    TokenBucket,
    WebSocketLimits,
)
from backend.edge.stack import guarded
from tests.conftest import wait_for
from tests.edge.edge_app import Gate, edge_app


# ---- request bodies ------------------------------------------------------------------------------
def test_a_body_over_the_limit_gets_413_at_once() -> None:
    client = TestClient(BodyLimit(edge_app(), 1000))
    assert client.post("/x", content=b"a" * 1000).json()["bytes"] == 1000
    r = client.post("/x", content=b"a" * 1001)
    assert r.status_code == 413 and "1,000 bytes" in r.json()["detail"] and "MAKEMORE_MAX_BODY_BYTES" in r.text


def test_a_chunked_body_is_cut_off_at_the_limit() -> None:
    """No Content-Length: counted as it comes; the application never gets past the limit."""
    sent = []

    def chunks() -> Iterator[bytes]:
        for _ in range(1000):  # 10 MB if nothing stopped it
            sent.append(1)
            yield b"a" * 10_000

    client = TestClient(BodyLimit(edge_app(), 50_000))
    r = client.post("/x", content=chunks())
    assert r.status_code == 413 and "50,000" in r.json()["detail"]
    assert client.post("/x", content=iter([b"a" * 30_000, b"b" * 20_000])).json()["bytes"] == 50_000


def test_the_real_upload_route_behind_the_limit(small_dataset: Dataset, tmp_path: Path) -> None:
    settings = Settings(max_body_bytes=100_000, home=tmp_path)
    with TestClient(guarded(create_app(settings, small_dataset), settings, None), base_url="http://127.0.0.1") as c:
        words = b"\n".join([b"anna", b"bob", b"carla", b"dave", b"eve", b"fred", b"gina", b"hank"] * 100)
        assert c.post("/api/datasets", files={"file": ("w.txt", words, "text/plain")}).status_code == 201
        r = c.post("/api/datasets", files={"file": ("w.txt", words * 100, "text/plain")})
        assert r.status_code == 413 and "MAKEMORE_MAX_BODY_BYTES" in r.json()["detail"]
        assert len(c.get("/api/datasets").json()) == 2  # the big one was not kept


# ---- websockets ----------------------------------------------------------------------------------
def test_token_bucket() -> None:
    now = [0.0]
    bucket = TokenBucket(5, clock=lambda: now[0])
    assert [bucket.take() for _ in range(7)] == [True] * 5 + [False] * 2  # a burst of 5
    now[0] += 0.2  # one more earned
    assert [bucket.take(), bucket.take()] == [True, False]
    now[0] += 100  # never more than a burst
    assert sum(bucket.take() for _ in range(10)) == 5
    four = TokenBucket(4, clock=lambda: now[0])  # binary fractions of a second: exact sums
    assert sum(four.take() for _ in range(5)) == 4
    assert four.delay() == 0.25  # until the next one is earned
    now[0] += 0.125
    assert four.delay() == 0.125
    now[0] += 0.125
    assert four.delay() == 0 and four.take() and not four.take()


def test_websockets_per_client_address() -> None:
    limits = WebSocketLimits(edge_app(), per_client=3, messages_per_s=100)
    with TestClient(limits) as client:
        opened = [client.websocket_connect("/ws") for _ in range(3)]
        for ws in opened:
            ws.__enter__()
        assert limits.open == {"testclient": 3}
        with client.websocket_connect("/ws") as extra, pytest.raises(WebSocketDisconnect) as e:
            extra.receive_text()
        assert e.value.code == TRY_AGAIN_LATER and "at most 3" in e.value.reason
        opened[0].send_text("still here")  # the others are untouched
        assert opened[0].receive_json() == {"echo": "still here"}
        opened.pop().__exit__(None, None, None)
        wait_for(lambda: limits.open["testclient"] == 2, what="the closed one to be counted out")
        with client.websocket_connect("/ws") as again:  # room for one more
            again.send_text("hi")
            assert again.receive_json() == {"echo": "hi"}
        for ws in opened:
            ws.__exit__(None, None, None)
    wait_for(lambda: not limits.open, what="every connection counted out")


def test_a_message_flood_is_answered_with_errors_and_the_connection_stays() -> None:
    rate, sent = 20, 300
    client = TestClient(WebSocketLimits(edge_app(), per_client=10, messages_per_s=rate))
    with client, client.websocket_connect("/ws") as ws:
        start = time.monotonic()
        for i in range(sent):
            ws.send_text(str(i))
        replies = [ws.receive_json() for _ in range(sent)]
        elapsed = time.monotonic() - start
        passed = [r["echo"] for r in replies if "echo" in r]
        errors = [r for r in replies if r.get("type") == "error"]
        assert len(passed) + len(errors) == sent
        assert rate <= len(passed) <= rate + rate * elapsed + 1  # the burst, then the rate
        assert passed[:rate] == [str(i) for i in range(rate)]
        assert "at most 20 a second" in errors[0]["detail"] and "MAKEMORE_WS_MESSAGES_PER_S" in errors[0]["detail"]
        # read no faster than READ_FACTOR x the rate: a burst of that many, then that rate
        read_rate = rate * READ_FACTOR
        assert elapsed >= (sent - read_rate) / read_rate * 0.9

        def gets_through() -> bool:
            ws.send_text("again")
            return "echo" in ws.receive_json()

        wait_for(gets_through, what="the rate to allow a message again")


# ---- samples -------------------------------------------------------------------------------------
def test_concurrent_samples_share_a_budget_of_names() -> None:
    gate = Gate()
    budget = SampleBudget(edge_app(gate), budget=1000, wait=0)  # refused at once (waiting: below)
    with TestClient(budget) as client, ThreadPoolExecutor(4) as pool:
        held = [pool.submit(client.get, "/api/runs/current/sample", params={"n": 400}) for _ in range(2)]
        wait_for(lambda: gate.waiting == 2, what="two requests in flight")
        assert budget.in_flight == 800
        r = client.get("/api/sample", params={"n": 400})
        assert r.status_code == 503 and r.headers["retry-after"] == "1"
        assert "800 names" in r.json()["detail"] and "MAKEMORE_SAMPLE_BUDGET" in r.json()["detail"]
        held.append(pool.submit(client.get, "/api/sample?x=1&n=200"))  # 800 + 200: fits
        wait_for(lambda: gate.waiting == 3, what="a third request that fits")
        assert client.get("/api/sample").status_code == 503  # n=20 by default: 1,020 > 1,000
        assert client.get("/api/runs/current").status_code == 200  # other reads are not counted
        client.portal.call(gate.release.set)
        assert [f.result(30).status_code for f in held] == [200, 200, 200]
        assert budget.in_flight == 0
        assert client.get("/api/sample", params={"n": 1000}).status_code == 200  # one alone always goes


def test_a_sample_over_the_budget_waits_its_turn_then_goes() -> None:
    gate = Gate()
    budget = SampleBudget(edge_app(gate), budget=1000, wait=60, max_waiting=2)
    with TestClient(budget) as client, ThreadPoolExecutor(4) as pool:
        held = pool.submit(client.get, "/api/sample", params={"n": 800})
        wait_for(lambda: gate.waiting == 1, what="a request in flight")
        queued = []
        for n in (400, 100):  # one after the other: their order is the point
            queued.append(pool.submit(client.get, "/api/sample", params={"n": n}))
            wait_for(lambda: len(budget._queue) == len(queued), what=f"{len(queued)} requests waiting")
        assert gate.waiting == 1  # the 100 would fit, but waits behind the 400: first come first served
        r = client.get("/api/sample", params={"n": 10})  # a third would wait: refused at once
        assert r.status_code == 503 and "MAKEMORE_SAMPLE_BUDGET" in r.json()["detail"]
        client.portal.call(gate.release.set)
        assert [f.result(30).status_code for f in [held, *queued]] == [200, 200, 200]
        assert budget.in_flight == 0 and not budget._queue


def test_a_sample_that_waited_too_long_gets_503_and_leaves_the_queue() -> None:
    gate = Gate()
    budget = SampleBudget(edge_app(gate), budget=1000, wait=0.3)
    with TestClient(budget) as client, ThreadPoolExecutor(2) as pool:
        held = pool.submit(client.get, "/api/sample", params={"n": 1000})
        wait_for(lambda: gate.waiting == 1, what="a request in flight")
        start = time.monotonic()
        r = client.get("/api/sample", params={"n": 5})
        assert time.monotonic() - start >= 0.3  # it waited for its turn first
        assert r.status_code == 503 and r.headers["retry-after"] == "1"
        assert not budget._queue and budget.in_flight == 1000
        client.portal.call(gate.release.set)
        assert held.result(30).status_code == 200 and budget.in_flight == 0


def test_the_budget_covers_every_sample_route() -> None:
    app = create_app(Settings())
    paths = [path for path in app.openapi()["paths"] if path.endswith("/sample")]
    assert len(paths) >= 2
    for path in paths:
        assert SAMPLE_PATH.match(path.replace("{run_id}", "current")), path
    assert not SAMPLE_PATH.match("/api/runs/current/sample/extra")
