"""`python -m bench.floods [--root DIR]`: what the floods the edge guards against do to a real
server: its RSS and the trainer's steps/s, each flood against the same server left alone.

--root runs `python -m backend` from another checkout (e.g. `git archive` of an older commit),
to measure before and after side by side. Everything talks to 127.0.0.1 and stops by itself.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psutil
from websockets.sync.client import connect as ws_connect

from tests import rawclient
from tests.server import ROOT, free_port, wait_healthy


@contextmanager
def server(root: Path) -> Iterator[tuple[str, int, psutil.Process]]:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "backend", "--port", str(port)],
        cwd=root,
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


def during(flood: Callable[[threading.Event], dict[str, Any]], url: str, seconds: float) -> dict[str, Any]:
    """The trainer's steps/s alone, then while `flood` runs (until the event is set)."""
    alone = steps_per_s(url, seconds)
    stop = threading.Event()
    out: dict[str, Any] = {}
    t = threading.Thread(target=lambda: out.update(flood(stop)))
    t.start()
    time.sleep(0.5)  # let the flood start
    loaded = steps_per_s(url, seconds)
    stop.set()
    t.join(120)
    return {
        "steps_per_s_alone": round(alone),
        "steps_per_s_flood": round(loaded),
        "ratio": round(loaded / alone, 2),
        **out,
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


def set_flood(port: int, proc: psutil.Process) -> Callable[[threading.Event], dict[str, Any]]:
    def run(stop: threading.Event) -> dict[str, Any]:
        rss0, sent = rss_mb(proc), 0
        with ws_connect(f"ws://127.0.0.1:{port}/ws/runs/current", proxy=None, max_queue=None) as ws:
            while not stop.is_set():
                ws.send(json.dumps({"type": "set", "lr": 0.1 if sent % 2 else 0.05}))
                sent += 1
        return {"sets_sent": sent, "rss_growth_mb": round(rss_mb(proc) - rss0)}

    return run


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.floods")
    parser.add_argument("--root", type=Path, default=ROOT, help="the checkout whose server to measure")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--only", choices=["ping", "training"], help="one part only")
    args = parser.parse_args()
    results: dict[str, Any] = {"root": str(args.root)}
    if args.only != "training":
        with server(args.root) as (url, port, proc):
            results["ping_flood"] = ping_flood(port, proc, args.seconds)
    if args.only == "ping":
        sys.stdout.write(json.dumps(results, indent=2) + "\n")
        return
    with server(args.root) as (url, port, proc):
        get(url, "/api/runs/current", "PATCH", {"status": "running"})
        results["sample_flood_8_clients"] = during(sample_flood(url, 8), url, args.seconds)
        results["set_flood"] = during(set_flood(port, proc), url, args.seconds)
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
