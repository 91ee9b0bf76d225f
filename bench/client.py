"""A tiny HTTP client for benchmarks (stdlib only)."""

from __future__ import annotations

import json
import time
import urllib.request
from typing import Any


def call(base: str, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(base + path, data=data, method=method, headers={"content-type": "application/json"})
    with urllib.request.urlopen(req, timeout=60) as r:
        raw = r.read()
    return json.loads(raw) if raw else None  # 204: no body


def wait_status(base: str, status: str, timeout: float, poll: float = 0.2) -> dict[str, Any]:
    """Poll the current run until it reaches `status`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        run: dict[str, Any] = call(base, "GET", "/api/runs/current")
        if run["status"] == status:
            return run
        time.sleep(poll)
    raise TimeoutError(f"run not {status} after {timeout}s")
