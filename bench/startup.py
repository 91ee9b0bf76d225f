"""Target 7: `python -m backend` answers /api/health within 4 s of start, on the default data.

Health answers as soon as the server listens (backend/app/boot.py); the API follows once torch is
loaded, the store (a fresh home each start) is open and the default run is created, its worker
launched from the forkserver (which imports torch too, in parallel). Both are measured: the
second is what a user waits for. bench/restart.py does the same on a home with stored runs."""

from __future__ import annotations

import time
import urllib.request

from bench.stats import Figure
from harness.server import running_server


def startup(repeats: int = 5) -> dict[str, object]:
    health, api = [], []
    for _ in range(repeats):
        with running_server() as server:
            t0 = time.monotonic()
            with urllib.request.urlopen(f"{server.url}/api/runs/current", timeout=60) as r:
                assert r.status == 200  # the server answers it once the default run is built
            health.append(server.started_in)
            api.append(server.started_in + time.monotonic() - t0)
    h, a = Figure(health), Figure(api)
    print(f"  python -m backend -> /api/health: {h.fmt(2, ' s')} over {repeats} starts (limit 4 s)")
    print(f"  python -m backend -> /api/runs/current (torch loaded, default run created): {a.fmt(2, ' s')}")
    return {"seconds": h.as_dict(), "api_seconds": a.as_dict()}
