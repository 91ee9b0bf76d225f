"""Target 5: while the server trains at full speed (batch 32, one viewer), the latency of
`GET /api/health` (a fresh connection each time, as curl would) and of a `set` message's
`hparams` answer, measured by the client that sent it.

Issue 10, item 9 (`latency_big`): the same `set` round trip on a big model (block 16, n_embd 64,
n_hidden 1,024), evaluating often, so that many `set`s arrive during an evaluation or a
noise-scale estimate: those must be applied within one step or one evaluation chunk."""

from __future__ import annotations

import asyncio
import json
import random
import sys
import time
from urllib.parse import urlsplit

from bench.live import Viewer, open_viewers, wait_until
from bench.server import bench_server
from bench.stats import Figure, percentile


async def _health_once(host: str, port: int) -> float:
    t0 = time.perf_counter()
    reader, writer = await asyncio.open_connection(host, port)
    writer.write(f"GET /api/health HTTP/1.1\r\nHost: {host}:{port}\r\nConnection: close\r\n\r\n".encode())
    await writer.drain()
    response = await reader.read()
    elapsed = time.perf_counter() - t0
    writer.close()
    if not response.startswith(b"HTTP/1.1 200") or not response.endswith(b'{"status":"ok"}'):
        raise RuntimeError(f"bad health answer: {response[:200]!r}")
    return elapsed * 1000


async def _latency(samples: int) -> dict[str, object]:
    rng = random.Random(0)
    with bench_server() as bench:
        bench.new_run()
        (viewer,) = await open_viewers(bench.ws_url, 1)
        await bench.acall("PATCH", "/api/runs/current", {"status": "running"})
        await asyncio.sleep(2.0)  # at full speed, evaluations included, before measuring
        url = urlsplit(bench.server.url)
        health = []
        for _ in range(samples):
            health.append(await _health_once(url.hostname or "127.0.0.1", url.port or 80))
            await asyncio.sleep(rng.uniform(0.01, 0.04))  # spread over the training, not in a burst
        sets = []
        assert viewer.ws is not None
        for i in range(samples):
            lr = 0.1 if i % 2 else 0.09
            answer = viewer.expect("hparams")
            t0 = time.perf_counter()
            await viewer.ws.send(json.dumps({"type": "set", "lr": lr}))
            arrived, msg = await asyncio.wait_for(answer, 10)
            assert msg["lr"] == lr
            sets.append((arrived - t0) * 1000)
            await asyncio.sleep(rng.uniform(0.01, 0.04))
        steps = await asyncio.to_thread(bench.step)
        await viewer.close()
    out: dict[str, object] = {"training_steps_during": steps, "samples": samples}
    for name, values, limit in (("health_ms", health, 20), ("set_round_trip_ms", sets, 50)):
        p99 = percentile(values, 0.99)
        print(
            f"  {name}: median {Figure(values).median:.2f} | p99 {p99:.2f} (limit {limit}) | max {max(values):.2f}"
            f" over {len(values)} samples"
        )
        out[name] = {"p50": Figure(values).median, "p99": p99, "max": max(values), "samples": values}
    return out


def latency(samples: int = 200) -> dict[str, object]:
    return asyncio.run(_latency(samples))


BIG_MODEL = {"block_size": 16, "n_embd": 64, "n_hidden": 1024}


async def _set_round_trips(viewer: Viewer, samples: int, gap: tuple[float, float], seed: int) -> list[float]:
    """`samples` set messages, each after a random pause in `gap` seconds; their round trips in ms."""
    rng = random.Random(seed)
    assert viewer.ws is not None
    out = []
    for i in range(samples):
        await asyncio.sleep(rng.uniform(*gap))  # spread over steps, evaluations and estimates
        lr = 0.01 if i % 2 else 0.009
        answer = viewer.expect("hparams")
        t0 = time.perf_counter()
        await viewer.ws.send(json.dumps({"type": "set", "lr": lr}))
        arrived, msg = await asyncio.wait_for(answer, 300)
        assert msg["lr"] == lr
        out.append((arrived - t0) * 1000)
    return out


async def _latency_big(samples: int, eval_every: int) -> dict[str, object]:
    with bench_server() as bench:
        bench.new_run(**BIG_MODEL, eval_every=eval_every, lr=0.01, init="scaled")
        (viewer,) = await open_viewers(bench.ws_url, 1)
        await bench.acall("PATCH", "/api/runs/current", {"status": "running"})
        await wait_until(lambda: viewer.kinds.get("eval", 0) >= 2, 600, "an evaluation after step 0")
        evals_before = viewer.kinds.get("eval", 0)
        sets = await _set_round_trips(viewer, samples, (0.1, 0.5), 1)
        steps = await asyncio.to_thread(bench.step)
        evaluations = viewer.kinds.get("eval", 0) - evals_before
        noise = viewer.kinds.get("noise", 0)
        await viewer.close()
    p99 = percentile(sets, 0.99)
    print(
        f"  `set` -> `hparams`, block 16, n_embd 64, n_hidden 1,024, eval_every {eval_every}: median"
        f" {Figure(sets).median:.1f} | p99 {p99:.1f} (limit 500) | max {max(sets):.1f} ms over {len(sets)} samples;"
        f" {evaluations} evaluations and {noise} noise estimates meanwhile, step {steps:,}"
    )
    return {
        "model": BIG_MODEL,
        "eval_every": eval_every,
        "evaluations_during": evaluations,
        "set_round_trip_ms": {"p50": Figure(sets).median, "p99": p99, "max": max(sets), "samples": sets},
    }


def latency_big(samples: int = 100, eval_every: int = 50) -> dict[str, object]:
    return asyncio.run(_latency_big(samples, eval_every))


if __name__ == "__main__":  # python -m bench.latency [samples] [eval_every]: the big model's figure
    latency_big(*(int(a) for a in sys.argv[1:3]))
