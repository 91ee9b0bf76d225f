import asyncio
import json
import math

import numpy as np

from backend.streaming import channel
from backend.streaming.channel import (
    MERGE_SECONDS,
    SNAPSHOT_EVAL_GROUPS,
    SNAPSHOT_EVALS,
    SNAPSHOT_RECENT_EVALS,
    Channel,
    Subscriber,
    Timeline,
)
from backend.streaming.messages import event_message
from backend.training.protocol import EvalResult, HParamsChanged, NoiseEstimate, Steps
from backend.training.spec import HParams


def run(coro):  # type: ignore[no-untyped-def]
    return asyncio.run(coro)


def make_channel() -> Channel:
    return Channel("r1", lambda: {"id": "r1"})


def change(step: int, lr: float) -> dict[str, object]:
    msg = event_message(HParamsChanged(step, HParams(lr=lr, batch_size=32, eval_every=1000, max_steps=5000)))
    return {k: v for k, v in msg.items() if k != "type"}


async def _fan_out() -> None:
    ch = make_channel()
    a, b = Subscriber(ch, False), Subscriber(ch, False)
    first = json.loads((await a.next_batch())[0])
    assert first["type"] == "snapshot" and first["reason"] == "connect" and first["run"] == {"id": "r1"}
    ch.publish(Steps(0, [3.0, 2.5], [0.1, 0.1], 1.0, 100.0, 3200.0))
    ch.publish(EvalResult(2, 2.4, 2.5, 3.0))
    ch.publish(NoiseEstimate(2, 12.34))
    ch.timeline.add(change(0, 0.1))
    ch.timeline.add(change(2, 0.01))
    ch.publish(HParamsChanged(2, HParams(lr=0.01, batch_size=64, eval_every=500, max_steps=1000)))
    got = [json.loads(m) for _ in range(4) for m in await a.next_batch()]
    assert [m["type"] for m in got] == ["steps", "eval", "noise", "hparams"]
    assert got[0]["step"] == [0, 1] and got[0]["loss"] == [3.0, 2.5]
    # b connected before the events but reads later: its snapshot covers them, no duplicates
    snap = json.loads((await b.next_batch())[0])
    assert snap["history"] == {"step": [0, 1], "loss": [3.0, 2.5], "lr": [0.1, 0.1], "time": [0.5, 1.0], "n_steps": 2}
    assert snap["evals"] == [[2, 2.4, 2.5, 12.3]]
    assert [c["lr"] for c in snap["changes"]] == [0.1, 0.01]
    ch.publish(Steps(2, [2.0], [0.1], 1.5, 100.0, 3200.0))
    assert json.loads((await b.next_batch())[0])["step"] == [2]
    ch.publish(
        HParamsChanged(3, HParams(lr=0.01, batch_size=64, eval_every=500, max_steps=1000))
    )  # a confirmation of the same values
    assert json.loads((await b.next_batch())[0])["type"] == "hparams"  # is sent


def test_fan_out_and_snapshot() -> None:
    run(_fan_out())


async def _slow_reader() -> None:
    ch = make_channel()
    slow, fast = Subscriber(ch, False, limit=10), Subscriber(ch, False, limit=10)
    await slow.next_batch()
    await fast.next_batch()
    for i in range(100):
        ch.publish(Steps(i, [1.0], [0.1], i, 1.0, 32.0))
        assert json.loads((await fast.next_batch())[0])["step"] == [i]  # unaffected
    assert len(slow._queue) <= 10
    lagged, snap = (json.loads(m) for m in await slow.next_batch())
    assert lagged["type"] == "lagged" and lagged["dropped"] > 0
    assert snap["type"] == "snapshot" and snap["reason"] == "lagged"
    assert snap["history"]["step"] == list(range(100)) and snap["history"]["n_steps"] == 100
    ch.publish(Steps(100, [1.0], [0.1], 100, 1.0, 32.0))
    assert json.loads((await slow.next_batch())[0])["step"] == [100]


def test_slow_reader_gets_a_fresh_snapshot() -> None:
    run(_slow_reader())


async def _switch_and_reply() -> None:
    old, new = make_channel(), make_channel()
    new.describe = lambda: {"id": "r2"}
    sub = Subscriber(old, True)
    await sub.next_batch()
    sub.reply('{"type":"error","detail":"x"}')
    sub.switch(new)
    assert sub not in old.subscribers and sub in new.subscribers
    assert json.loads((await sub.next_batch())[0])["type"] == "error"
    snap = json.loads((await sub.next_batch())[0])
    assert snap["reason"] == "new_run" and snap["run"]["id"] == "r2"


def test_switch_to_a_new_run() -> None:
    run(_switch_and_reply())


def test_non_finite_loss_is_null() -> None:
    ch = make_channel()
    ch.publish(Steps(0, [1.0, float("nan"), float("inf")], [0.1] * 3, 1.0, 1.0, 1.0))
    snap = json.loads(ch.snapshot("connect"))
    assert snap["history"]["loss"] == [1.0, None, None]


def test_noise_estimates_fill_in_their_evaluations() -> None:
    ch = make_channel()
    ch.publish(EvalResult(1000, 2.5, 2.6, 5.0))
    ch.publish(NoiseEstimate(1000, 250.0))
    ch.publish(EvalResult(2000, 2.4, 2.5, 5.0))  # this one went without an estimate
    ch.publish(EvalResult(3000, 2.3, 2.4, 5.0))
    ch.publish(NoiseEstimate(3000, 300.0))
    evals = json.loads(ch.snapshot("connect"))["evals"]
    assert evals == [[1000, 2.5, 2.6, 250.0], [2000, 2.4, 2.5, None], [3000, 2.3, 2.4, 300.0]]


def test_a_snapshot_of_many_evaluations_keeps_what_the_chart_shows() -> None:
    """Past SNAPSHOT_EVALS a snapshot carries the latest evaluations as they came and, of those
    before, each group's lowest and highest train and dev loss: bounded however long the run
    (30,000 evaluations: 30 M steps at the defaults), and no extreme lost."""
    ch = make_channel()
    rng = np.random.default_rng(1)
    n = 30_000
    train, dev = rng.normal(2.2, 0.1, n).tolist(), rng.normal(2.3, 0.1, n).tolist()
    for i in range(n):
        ch.publish(EvalResult(i * 1000, train[i], dev[i], 5.0))
    text = ch.snapshot("connect")
    evals = json.loads(text)["evals"]
    assert len(evals) <= SNAPSHOT_EVALS and len(text) < 250_000  # every one: ~1 MB
    assert evals[-SNAPSHOT_RECENT_EVALS:] == ch.evals[-SNAPSHOT_RECENT_EVALS:]  # the latest as they came
    steps = [e[0] for e in evals]
    assert steps == sorted(set(steps))
    kept = {e[0]: e for e in evals}
    older = ch.evals[: n - SNAPSHOT_RECENT_EVALS]
    width = math.ceil(len(older) / SNAPSHOT_EVAL_GROUPS)
    for g in range(0, len(older), width):
        group = older[g : g + width]
        for col in (1, 2):
            for pick in (min, max):  # the group's first lowest (highest), as it was sent live
                extreme = next(e for e in group if e[col] == pick(x[col] for x in group))
                assert kept.get(extreme[0]) == extreme
    few = make_channel()
    for i in range(100):
        few.publish(EvalResult(i, train[i], dev[i], 5.0))
    assert json.loads(few.snapshot("connect"))["evals"] == few.evals  # all of them while they fit


def test_timeline_skips_confirmations_and_merges_quick_changes() -> None:
    t = Timeline()
    assert t.add(change(0, 0.1), now=0.0) == "new"
    assert t.add(change(10, 0.1), now=0.1) == "same"  # a confirmation: nothing changed
    assert t.add(change(20, 0.2), now=5.0) == "new"
    # a slider dragged: changes closer than MERGE_SECONDS are one, at the first one's step
    for i in range(300):
        kind = t.add(change(30 + i, 0.3 + i / 1000), now=5.0 + (i + 1) * MERGE_SECONDS / 10)
        assert kind == "merged"
    assert len(t.changes) == 2
    assert t.changes[-1]["step"] == 20 and t.changes[-1]["lr"] == 0.3 + 299 / 1000
    assert t.add(change(400, 0.05), now=1000.0) == "new"
    assert [c["step"] for c in t.changes] == [0, 20, 400]
    # the run's own starting values are never merged away
    fresh = Timeline()
    fresh.add(change(0, 0.1), now=0.0)
    assert fresh.add(change(1, 0.5), now=0.01) == "new"


def test_unwatched_steps_are_kept_not_encoded(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """With no viewer a run's steps (most of what a worker sends) go into the history without
    being made a message; the first viewer's snapshot has them, and the next steps reach it."""
    made: list[str] = []
    monkeypatch.setattr(channel, "event_message", lambda e: made.append(type(e).__name__) or event_message(e))
    encoded = []
    monkeypatch.setattr(channel, "encode", lambda m: encoded.append(m["type"]) or json.dumps(m))
    ch = make_channel()
    ch.publish(Steps(0, [3.0, 2.5], [0.1, 0.1], 1.0, 100.0, 3200.0))
    ch.publish(EvalResult(2, 2.4, 2.5, 3.0))  # kept for the snapshot: still made a message, not encoded
    assert made == ["EvalResult"] and encoded == []
    assert ch.history.n_steps == 2 and ch.evals == [[2, 2.4, 2.5, None]]

    async def watch() -> None:
        sub = Subscriber(ch, False)
        snap = json.loads((await sub.next_batch())[0])
        assert snap["history"]["loss"] == [3.0, 2.5]
        ch.publish(Steps(2, [2.0], [0.1], 1.5, 100.0, 3200.0))
        assert json.loads((await sub.next_batch())[0])["step"] == [2]

    run(watch())
    assert made == ["EvalResult", "Steps"] and encoded == ["snapshot", "steps"]
