"""Target 5: while the server trains at full speed (batch 32, one viewer), the latency of
`GET /api/health` (a fresh connection each time, as curl would) and of a `set` message's
`hparams` answer, measured by the client that sent it."""

from __future__ import annotations

import asyncio
import json
import random
import time
from urllib.parse import urlsplit

from bench.live import open_viewers
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
