"""Issue 8, target 5: a 200,000-step run with an evaluation every 1,000 steps takes <= 4 MB on disk
(read strictly: 4,000,000 bytes).

A real server with a home of its own trains one such run (the default model, batch 32) to the
end. Three figures:

- `run_bytes`: the store's own account of the run (backend/store/store.py: its rows' payloads
  and its checkpoint files);
- the run's checkpoint files as they lie in checkpoints/<run id>/;
- the home directory's real growth: after the server has stopped and the WAL has been folded
  into the database, database + checkpoint files, minus the same for a home where the server
  only created its default run (paused at step 0) and stopped.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any

from backend.store.store import Store
from bench.memory import checkpoint_wal, dir_bytes, home_bytes
from bench.server import Bench, bench_server

LIMIT_BYTES = 4_000_000


def _default_run_stored(bench: Bench) -> None:
    """Wait until the default run (created at start) has its step-0 checkpoint."""
    deadline = time.monotonic() + 120
    while not bench.call("GET", "/api/runs/current/checkpoints"):
        if time.monotonic() > deadline:
            raise TimeoutError("the default run has no checkpoint")
        time.sleep(0.2)  # poll interval


def _settled_home(home: Path) -> dict[str, int]:
    """The home once its server has stopped: what it left, then with the WAL folded in."""
    left = home_bytes(home)
    checkpoint_wal(home / "makemore.db")
    return {**home_bytes(home), "database_as_left": left["database"]}


def disk(steps: int = 200_000, eval_every: int = 1000) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="makemore-bench-disk-") as tmp:
        empty, home = Path(tmp) / "empty", Path(tmp) / "run"
        with bench_server(env={"MAKEMORE_HOME": str(empty)}) as bench:
            _default_run_stored(bench)
        base = _settled_home(empty)
        with bench_server(env={"MAKEMORE_HOME": str(home)}) as bench:
            _default_run_stored(bench)
            run = bench.call("POST", "/api/runs", {"max_steps": steps, "eval_every": eval_every})
            t0 = time.monotonic()
            deadline = t0 + max(600, steps / 100)
            while (now := bench.call("GET", f"/api/runs/{run['id']}"))["status"] != "finished":
                if time.monotonic() > deadline or now["status"] in ("diverged", "interrupted", "paused"):
                    raise RuntimeError(f"run {run['id']} is {now['status']} at step {now['step']:,}")
                time.sleep(0.5)  # poll interval
            train_s = time.monotonic() - t0
            checkpoints = bench.call("GET", f"/api/runs/{run['id']}/checkpoints")  # flushes the store
            accounted = Store(home).run_bytes(run["id"])
        settled = _settled_home(home)
        files, n_files = dir_bytes(home / "checkpoints" / run["id"])
    growth = settled["total"] - base["total"]
    print(
        f"  {steps:,} steps (eval every {eval_every:,}) in {train_s:.0f} s: run_bytes {accounted:,} B |"
        f" its checkpoint files {files:,} B ({n_files} files) | the home grew {growth:,} B"
        f" (database {settled['database'] - base['database']:,} + checkpoints"
        f" {settled['checkpoints'] - base['checkpoints']:,}) | limit {LIMIT_BYTES:,} B"
    )
    return {
        "steps": steps,
        "eval_every": eval_every,
        "train_s": round(train_s, 1),
        "run_bytes": accounted,
        "checkpoint_files_bytes": files,
        "checkpoint_files": n_files,
        "checkpoints_listed": len(checkpoints),
        "mean_checkpoint_bytes": round(files / max(1, n_files)),
        "home_growth_bytes": growth,
        "home": settled,
        "home_without_the_run": base,
        "limit_bytes": LIMIT_BYTES,
    }
