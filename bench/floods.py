"""`python -m bench.floods [--root DIR]`: what the floods the edge guards against do to a real
server: its RSS and the trainer's steps/s, each flood against the same server left alone; and a
burst of 50 runs created at once (`--only burst`).

--root runs `python -m backend` from another checkout (e.g. `git archive` of an older commit),
to measure before and after side by side. Everything talks to 127.0.0.1 and stops by itself.
"""

from __future__ import annotations

import argparse
import http.client
import json
import logging
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psutil
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect as ws_connect

from harness import rawclient
from harness.server import ROOT, free_port, wait_healthy


@contextmanager
def server(root: Path) -> Iterator[tuple[str, int, psutil.Process]]:
    port, home = free_port(), tempfile.mkdtemp(prefix="makemore-bench-floods-")
    proc = subprocess.Popen(
        [sys.executable, "-m", "backend", "--port", str(port)],
        cwd=root,
        env={**os.environ, "MAKEMORE_HOME": home},  # never the user's home
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        url = f"http://127.0.0.1:{port}"
        wait_healthy(url, proc)
        get(url, "/api/runs/current")  # the default run is built
        yield url, port, psutil.Process(proc.pid)
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
        shutil.rmtree(home, ignore_errors=True)


def get(url: str, path: str, method: str = "GET", body: dict[str, Any] | None = None) -> tuple[int, bytes]:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url + path, data=data, method=method, headers={"content-type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def rss_mb(proc: psutil.Process) -> float:
    return float(proc.memory_info().rss) / 2**20


def steps_per_s(url: str, seconds: float) -> float:
    s0 = json.loads(get(url, "/api/runs/current")[1])["step"]
    t0 = time.monotonic()
    time.sleep(seconds)  # a measurement window
    s1 = json.loads(get(url, "/api/runs/current")[1])["step"]
    return (s1 - s0) / (time.monotonic() - t0)


def during(flood: Callable[[threading.Event], dict[str, Any]], url: str, seconds: float, rounds: int) -> dict[str, Any]:
    """The trainer's steps/s alone, then while `flood` runs (until the event is set), `rounds`
    times in turn; the ratio is the median of each round's flood / alone."""
    alone, loaded, floods = [], [], []
    for _ in range(rounds):
        alone.append(steps_per_s(url, seconds))
        stop = threading.Event()
        out: dict[str, Any] = {}
        t = threading.Thread(target=lambda: out.update(flood(stop)))  # noqa: B023 -- joined below
        t.start()
        time.sleep(0.5)  # let the flood start
        loaded.append(steps_per_s(url, seconds))
        stop.set()
        t.join(120)
        floods.append(out)
    ratios = [b / a for a, b in zip(alone, loaded, strict=True)]
    return {
        "ratio": round(statistics.median(ratios), 2),
        "ratios": [round(r, 2) for r in ratios],
        "steps_per_s_alone": [round(a) for a in alone],
        "steps_per_s_flood": [round(b) for b in loaded],
        "floods": floods,
    }


def ping_flood(port: int, proc: psutil.Process, seconds: float) -> dict[str, Any]:
    """Pings as fast as the server takes them, reading none of the pongs, for `seconds` or until
    the server has taken nothing for 3 s (it stopped reading)."""
    with ws_connect(f"ws://127.0.0.1:{port}/ws/runs/current", proxy=None) as warm:
        warm.recv(60)  # a first viewer: what any connection allocates is in the baseline
    sock = rawclient.websocket(port, rcvbuf=16384, sndbuf=16384)
    rss0 = rss_mb(proc)
    ping = rawclient.frame(rawclient.PING, b"p" * 125) * 500
    t0 = time.monotonic()
    with sock:
        sent = rawclient.send_until_blocked(sock, ping, 10**10, stuck_for=3, seconds=seconds)
        end = rss_mb(proc)
    return {
        "seconds": round(time.monotonic() - t0, 1),
        "pings_mb_taken": round(sent / 1e6, 1),
        "rss_before_mb": round(rss0),
        "rss_after_mb": round(end),
        "rss_growth_mb": round(end - rss0),
    }


def sample_flood(url: str, clients: int) -> Callable[[threading.Event], dict[str, Any]]:
    def run(stop: threading.Event) -> dict[str, Any]:
        counts: dict[int, int] = {}
        lock = threading.Lock()

        def loop() -> None:
            while not stop.is_set():
                status, _ = get(url, "/api/sample?n=1000")
                with lock:
                    counts[status] = counts.get(status, 0) + 1

        threads = [threading.Thread(target=loop) for _ in range(clients)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
        return {"answers": {str(k): v for k, v in sorted(counts.items())}}

    return run


def http_flood(port: int, path: str) -> Callable[[threading.Event], dict[str, Any]]:
    """One client asking for `path` as fast as it is answered, on one kept-alive connection."""

    def run(stop: threading.Event) -> dict[str, Any]:
        counts: dict[int, int] = {}
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        t0 = time.monotonic()
        try:
            while not stop.is_set():
                conn.request("GET", path)
                r = conn.getresponse()
                r.read()
                counts[r.status] = counts.get(r.status, 0) + 1
        finally:
            conn.close()
        return {
            "answers": {str(k): v for k, v in sorted(counts.items())},
            "per_s": round(sum(counts.values()) / (time.monotonic() - t0)),
        }

    return run


def set_flood(port: int, proc: psutil.Process) -> Callable[[threading.Event], dict[str, Any]]:
    def run(stop: threading.Event) -> dict[str, Any]:
        rss0, sent, blocked = rss_mb(proc), 0, 0.0
        # The server reads a flood at its own pace, so once the sockets' buffers are full a send
        # blocks; at the end the connection is cut (a close frame would wait behind every set
        # still in the buffers).
        url = f"ws://127.0.0.1:{port}/ws/runs/current"
        with ws_connect(url, proxy=None, max_queue=None, close_timeout=0.1) as ws:

            def cut_when_stopped() -> None:
                stop.wait()
                ws.socket.shutdown(socket.SHUT_RDWR)

            cut = threading.Thread(target=cut_when_stopped)
            cut.start()
            try:
                while not stop.is_set():
                    t0 = time.monotonic()
                    ws.send(json.dumps({"type": "set", "lr": 0.1 if sent % 2 else 0.05}))
                    blocked = max(blocked, time.monotonic() - t0)
                    sent += 1
            except ConnectionClosed:
                pass
            cut.join()
        rss = rss_mb(proc)
        return {"sets_sent": sent, "longest_send_s": round(blocked, 1), "rss_growth_mb": round(rss - rss0)}

    return run


def workers(proc: psutil.Process) -> int:
    """Its runs' worker processes: its forkserver's children (the forkserver and the resource
    tracker are its own children)."""
    return sum(1 for p in proc.children(recursive=True) if p.ppid() != proc.pid)


def create_burst(url: str, proc: psutil.Process, n: int, seconds: float) -> dict[str, Any]:
    """`n` runs created paused at once while one run trains: the trainer's steps/s alone and
    from the first create until every new run has its step-0 evaluation (at least `seconds`),
    the slowest /api/health meanwhile, the most worker processes at once, and the server's RSS
    before, with the runs, and once they are deleted."""
    trainer = json.loads(get(url, "/api/runs", "POST", {"max_steps": 100_000_000})[1])["id"]

    def step() -> int:
        return int(json.loads(get(url, f"/api/runs/{trainer}")[1])["step"])

    deadline = time.monotonic() + 60
    while step() == 0 and time.monotonic() < deadline:
        time.sleep(0.1)  # poll: its worker starts
    s0, t0 = step(), time.monotonic()
    time.sleep(seconds)  # a measurement window
    alone = (step() - s0) / (time.monotonic() - t0)
    rss0, peak, slowest = rss_mb(proc), [0], [0.0]
    stop = threading.Event()

    def watch() -> None:
        while not stop.is_set():
            peak[0] = max(peak[0], workers(proc))
            t = time.monotonic()
            get(url, "/api/health")
            slowest[0] = max(slowest[0], time.monotonic() - t)
            stop.wait(0.02)

    watcher = threading.Thread(target=watch)
    watcher.start()
    s0, t0 = step(), time.monotonic()
    with ThreadPoolExecutor(n) as pool:
        created = list(pool.map(lambda i: get(url, "/api/runs", "POST", {"start": False, "seed": i}), range(n)))
    answered = time.monotonic() - t0
    ids = [json.loads(body)["id"] for status, body in created if status == 201]
    waiting = set(ids)
    while waiting and time.monotonic() - t0 < 300:
        waiting = {i for i in waiting if json.loads(get(url, f"/api/runs/{i}")[1])["last_eval"] is None}
        time.sleep(0.1)  # poll: the step-0 evaluations
    evaluated = time.monotonic() - t0
    time.sleep(max(0.0, seconds - evaluated))  # a window of at least `seconds`
    burst = (step() - s0) / (time.monotonic() - t0)
    stop.set()
    watcher.join(60)
    rss1 = rss_mb(proc)
    for i in ids:
        get(url, f"/api/runs/{i}", "DELETE")
    time.sleep(1.0)  # the deleted runs' workers (if any) are killed and reaped
    get(url, f"/api/runs/{trainer}", "DELETE")
    return {
        "runs_created": len(ids),
        "all_created_s": round(answered, 2),
        "all_evaluated_s": round(evaluated, 2) if not waiting else None,
        "steps_per_s_alone": round(alone),
        "steps_per_s_burst": round(burst),
        "ratio": round(burst / alone, 2),
        "health_max_s": round(slowest[0], 3),
        "worker_processes_max": peak[0],  # the trainer's included
        "rss_before_mb": round(rss0),
        "rss_with_runs_mb": round(rss1),
        "rss_after_delete_mb": round(rss_mb(proc)),
    }


def main() -> None:
    logging.getLogger("websockets").setLevel(logging.CRITICAL)  # a cut flood connection is expected
    parser = argparse.ArgumentParser(prog="python -m bench.floods")
    parser.add_argument("--root", type=Path, default=ROOT, help="the checkout whose server to measure")
    parser.add_argument("--seconds", type=float, default=5.0, help="each measurement window")
    parser.add_argument("--rounds", type=int, default=3, help="alone / flood windows in turn, per flood")
    parser.add_argument("--only", choices=["ping", "training", "burst"], help="one part only")
    args = parser.parse_args()
    results: dict[str, Any] = {"root": str(args.root)}
    if args.only in (None, "burst"):
        with server(args.root) as (url, port, proc):
            results["create_burst_50"] = create_burst(url, proc, 50, args.seconds)
    if args.only == "burst":
        sys.stdout.write(json.dumps(results, indent=2) + "\n")
        return
    if args.only != "training":
        with server(args.root) as (url, port, proc):
            results["ping_flood"] = ping_flood(port, proc, args.seconds)
    if args.only == "ping":
        sys.stdout.write(json.dumps(results, indent=2) + "\n")
        return
    with server(args.root) as (url, port, proc):
        # a run that outlasts the floods (the default one finishes within a minute here); it is
        # the newest, so `current`; the default run stays paused
        get(url, "/api/runs", "POST", {"max_steps": 100_000_000})
        results["sample_flood_8_clients"] = during(sample_flood(url, 8), url, args.seconds, args.rounds)
        results["set_flood"] = during(set_flood(port, proc), url, args.seconds, args.rounds)
        for path in ("/api/runs/current", "/api/health"):
            results[f"get_flood {path}"] = during(http_flood(port, path), url, args.seconds, args.rounds)
        changes = json.loads(ws_snapshot(port))["changes"]
        results["set_flood"]["changes_in_snapshot"] = len(changes)
    sys.stdout.write(json.dumps(results, indent=2) + "\n")


def ws_snapshot(port: int) -> str:
    with ws_connect(f"ws://127.0.0.1:{port}/ws/runs/current", proxy=None, max_size=None) as ws:
        text = ws.recv(60)
        assert isinstance(text, str)
        return text


if __name__ == "__main__":
    main()
