"""Targets 3 and 4: a classroom of viewers costs the training nothing, and a viewer that stops
reading costs nobody anything.

3. 100 websocket viewers against 1, alternating: training throughput, and every viewer gets
   every step (no gaps in the step indices).
4. One viewer stops reading for a while: server memory, the trainer and the other viewer are
   unaffected; when it reads again it gets a `lagged` notice and a fresh snapshot.

"Server RSS" is the server process's: the registry, the store and the websocket fan-out, where
every viewer's queue lives, so a stalled viewer's backlog shows there. Since issue 8 the run
trains in a worker process of its own, whose memory is not in this figure (a viewer cannot grow
it: the worker hands its events to the server whatever the viewers do).
"""

from __future__ import annotations

import asyncio
import socket
import time
from urllib.parse import urlsplit

from bench.live import Viewer, open_viewers, wait_until
from bench.server import Bench, bench_server
from bench.stats import Figure

WARM_UP = 15.0  # seconds of training before the first measurement


async def _rate(bench: Bench, seconds: float) -> float:
    s0, t0 = await asyncio.to_thread(bench.step), time.perf_counter()
    await asyncio.sleep(seconds)  # the measurement window
    s1, t1 = await asyncio.to_thread(bench.step), time.perf_counter()
    return (s1 - s0) / (t1 - t0)


async def _settle(viewers: list[Viewer]) -> None:
    """Every viewer has its snapshot and is receiving steps."""
    await wait_until(lambda: all(v.next_step is not None and v.steps > 0 for v in viewers), 60, "viewers to settle")


def _caught_up(viewers: list[Viewer], step: int) -> bool:
    return all((v.next_step or 0) >= step for v in viewers)


def _check_complete(viewers: list[Viewer], upto: int) -> tuple[int, int]:
    """(viewers with gaps, viewers that are behind `upto`)."""
    gaps = sum(1 for v in viewers if v.gaps)
    behind = sum(1 for v in viewers if (v.next_step or 0) < upto)
    return gaps, behind


async def _many(n: int, seconds: float, pairs: int) -> dict[str, object]:
    with bench_server() as bench:
        bench.new_run()
        (one,) = await open_viewers(bench.ws_url, 1)
        await bench.acall("PATCH", "/api/runs/current", {"status": "running"})
        await _settle([one])
        await asyncio.sleep(WARM_UP)
        single, crowd, incomplete = [], [], []
        for _ in range(pairs):
            single.append(await _rate(bench, seconds))
            others = await open_viewers(bench.ws_url, n - 1)
            await _settle(others)
            crowd.append(await _rate(bench, seconds))
            everyone = [one, *others]
            step = await asyncio.to_thread(bench.step)
            await wait_until(lambda s=step, e=everyone: _caught_up(e, s), 30, "viewers to catch up")
            incomplete.append(_check_complete(everyone, step))
            await asyncio.gather(*(v.close() for v in others))
        await one.close()
    a, b = Figure(single), Figure(crowd)
    ratio = Figure([y / x for x, y in zip(single, crowd, strict=True)])
    gaps = sum(g for g, _ in incomplete)
    print(
        f"  1 viewer {a.fmt(0)} steps/s | {n} viewers {b.fmt(0)} steps/s | ratio {ratio.fmt(2)}x"
        f" | viewers with gaps: {gaps} of {n * pairs}"
    )
    return {
        "one_viewer_steps_per_s": a.as_dict(),
        "many_viewers_steps_per_s": b.as_dict(),
        "ratio": ratio.as_dict(),
        "viewers": n,
        "viewers_with_gaps": gaps,
        "seconds": seconds,
    }


def many_viewers(n: int = 100, seconds: float = 60, pairs: int = 3) -> dict[str, object]:
    return asyncio.run(_many(n, seconds, pairs))


async def _stalled_viewer(bench: Bench) -> Viewer:
    """A viewer with a small receive buffer, so that its stall reaches the server quickly."""
    url = urlsplit(bench.ws_url)
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16 * 1024)
    sock.connect((url.hostname, url.port))
    viewer = Viewer(bench.ws_url)
    await viewer.open(sock=sock, max_queue=4, ping_interval=None)  # it must not answer anything while it stalls
    return viewer


async def _window(bench: Bench, seconds: float, rss0: float) -> tuple[float, float, float]:
    """(steps per second, peak and final growth of the server's RSS in MB over `rss0`) over a
    window, RSS sampled each second."""
    peak = rss0
    s0, t0 = await asyncio.to_thread(bench.step), time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        await asyncio.sleep(1.0)  # sampling interval
        peak = max(peak, bench.rss_mb())
    s1, t1 = await asyncio.to_thread(bench.step), time.perf_counter()
    return (s1 - s0) / (t1 - t0), peak - rss0, bench.rss_mb() - rss0


async def _slow(seconds: float, pairs: int) -> dict[str, object]:
    with bench_server() as bench:
        bench.new_run()
        (normal,) = await open_viewers(bench.ws_url, 1)
        await bench.acall("PATCH", "/api/runs/current", {"status": "running"})
        await _settle([normal])
        await asyncio.sleep(WARM_UP)  # allocations settle in the first seconds of a run
        alone, stalled, growth_alone, growth, final_growth, resynced = [], [], [], [], [], 0
        for _ in range(pairs):
            rate, grew, _ = await _window(bench, seconds, bench.rss_mb())
            alone.append(rate)
            growth_alone.append(grew)
            rss0 = bench.rss_mb()  # before the viewer connects: its connection and snapshot count too
            slow = await _stalled_viewer(bench)
            await _settle([slow])
            slow.reading.clear()  # stops reading from here on
            rate, grew, grew_final = await _window(bench, seconds, rss0)
            stalled.append(rate)
            growth.append(grew)
            final_growth.append(grew_final)
            slow.reading.set()  # reads again: a lagged notice and a fresh snapshot, not the backlog
            await wait_until(lambda v=slow: "lagged" in v.snapshot_reasons, 30, "the lagged snapshot")
            step = await asyncio.to_thread(bench.step)
            await wait_until(lambda v=slow, s=step: _caught_up([v], s), 30, "the slow viewer to catch up")
            resynced += slow.kinds.get("lagged", 0) > 0 and not slow.gaps
            await slow.close()
        gaps = len(normal.gaps)
        await normal.close()
    a, b = Figure(alone), Figure(stalled)
    ratio = Figure([y / x for x, y in zip(alone, stalled, strict=True)])
    mem, mem0, mem_end = Figure(growth), Figure(growth_alone), Figure(final_growth)
    print(
        f"  trainer alone {a.fmt(0)} steps/s | with a stalled viewer {b.fmt(0)} steps/s | ratio {ratio.fmt(2)}x\n"
        f"  server RSS growth over {seconds:.0f} s: with the stalled viewer peak {mem.fmt(1, ' MB')},"
        f" at the end {mem_end.fmt(1, ' MB')}; without it peak {mem0.fmt(1, ' MB')} | other viewer's gaps: {gaps}"
        f" | stalled viewer got lagged + snapshot and no gaps: {resynced}/{pairs}"
    )
    return {
        "trainer_alone_steps_per_s": a.as_dict(),
        "trainer_with_stalled_viewer_steps_per_s": b.as_dict(),
        "ratio": ratio.as_dict(),
        "rss_growth_mb": mem.as_dict(),
        "rss_growth_at_end_mb": mem_end.as_dict(),
        "rss_growth_without_stalled_viewer_mb": mem0.as_dict(),
        "other_viewer_gaps": gaps,
        "resynced": resynced,
        "stalls": pairs,
        "seconds": seconds,
    }


def stalled_viewer(seconds: float = 60, pairs: int = 3) -> dict[str, object]:
    return asyncio.run(_slow(seconds, pairs))
