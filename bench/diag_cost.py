"""Issue 23's speed targets on the trainer itself: a run at batch 32 with its diagnostics on at the
default cadence trains at >= 0.95x the steps/s of the same run with them off, and its
gradient-direction passes take <= 5% of its time.

Two Trainers of the lecture's run (the default model, the built-in names, batch 32, an evaluation
every 1,000 steps, the server's torch threads for one run), each on a thread of this process as a
worker process runs it, its events crossing to another thread that encodes each one as the server
does for its viewers (the diag and gradcos messages included). One takes its diagnostic points and
gradient-direction passes as diagnosing.py's budgets say (the default cadence); the other never
does: its Diagnoser's cadence is never due (the trainer has no switch for them; the bench swaps
the two budgets of its `_diag`). Each trainer lives through all the windows, resumed for each one
and paused after it, so its cadence has settled (it sizes itself from the costs it measured)
and its evaluations fall as a long run's do. Windows alternate, on, off, on, off ...

- steps/s from each trainer's step counter over a window, in wall time and per CPU second of this
  process (the trainer's thread, its torch threads and the encoding thread; on a shared machine
  the CPU share each window gets moves the wall figure more than the diagnostics do);
- the share of the diagnosed run's CPU time in its gradient-direction passes and in its
  diagnostic points, timed in the trainer's thread (CPU seconds) around diagnosing.py's calls.

    python -m bench.diag_cost [--seconds 10] [--pairs 3]
"""

from __future__ import annotations

import argparse
import os
import queue
import threading
import time
from collections.abc import Callable
from typing import Any

from backend.config import DEFAULT_DATA
from backend.core.data import Dataset, Splits
from backend.runtime.runtime import LocalRuntime
from backend.streaming.messages import encode, event_message
from backend.training.diagnosing import Cadence, Diagnoser, GradBudget
from backend.training.protocol import CheckpointTaken, Event, Status, Update
from backend.training.spec import RunSpec
from backend.training.trainer import Trainer
from bench.stats import Figure
from bench.worker import cpu_s

LIMITS = {"ratio": 0.95, "grad_share": 0.05}
SETTLE_S = 5.0  # each trainer's first stretch, unmeasured: its cadence sizes itself from its costs
WARM_UP_S = 1.0  # after each resume


class _Never(Cadence):
    """A cadence that never brings a point."""

    def __init__(self) -> None:
        super().__init__(next_step=2**62, forced=False)

    def due(self, step: int) -> bool:
        return False

    def force(self) -> None:
        pass

    def evaluated(self, step: int) -> None:
        pass


class _NoPasses(GradBudget):
    def due(self, now: float) -> bool:
        return False


class _Timed:
    """CPU seconds (of the calling thread) spent in some of an object's methods, summed."""

    def __init__(self) -> None:
        self.cpu: dict[str, float] = {}
        self.calls: dict[str, int] = {}

    def wrap(self, obj: Any, name: str, key: str) -> None:
        inner: Callable[..., Any] = getattr(obj, name)

        def timed(*args: Any, **kwargs: Any) -> Any:
            c0 = time.thread_time()
            try:
                return inner(*args, **kwargs)
            finally:
                self.cpu[key] = self.cpu.get(key, 0.0) + time.thread_time() - c0
                self.calls[key] = self.calls.get(key, 0) + 1

        setattr(obj, name, timed)

    def totals(self) -> tuple[dict[str, float], dict[str, int]]:
        return dict(self.cpu), dict(self.calls)


class Trainee:
    """One run's Trainer on a thread, as bench/worker.py's InThread, with its diagnostics on or off."""

    def __init__(self, splits: Splits, chars: tuple[str, ...], batch: int, diagnostics: bool) -> None:
        self.events: queue.SimpleQueue[Event | None] = queue.SimpleQueue()
        self.kinds: dict[str, int] = {}
        self.consumer = threading.Thread(target=self._consume, name="event-loop-stand-in")
        self.consumer.start()
        spec = RunSpec(max_steps=100_000_000, batch_size=batch)
        self.trainer = Trainer(spec, splits, chars, self.events.put, max_threads=LocalRuntime().share(1))
        self.timed = _Timed()
        d: Diagnoser = self.trainer._diag  # the trainer's only handle on them
        if diagnostics:
            self.timed.wrap(d, "direction", "grad_pass")
            self.timed.wrap(d, "before", "point")
            self.timed.wrap(d, "point", "point")
        else:
            d.points, d.grads = _Never(), _NoPasses()
        self.trainer.start(running=False)  # evaluates step 0 and waits, as a new run's worker does
        self.run(SETTLE_S)

    def _consume(self) -> None:  # the event loop's share of the work: every event encoded once
        while (event := self.events.get()) is not None:
            kind = type(event).__name__
            self.kinds[kind] = self.kinds.get(kind, 0) + 1
            if not isinstance(event, CheckpointTaken):
                encode(event_message(event))

    def run(self, seconds: float) -> dict[str, Any]:
        """Resume, warm up, measure `seconds`, pause: steps/s (wall and per CPU second of this
        process) and the CPU seconds of the diagnostics' calls meanwhile."""
        t = self.trainer
        t.submit(Update(status=Status.RUNNING)).result(60)
        try:
            time.sleep(WARM_UP_S)  # warm-up
            s0, t0, c0 = t.step, time.perf_counter(), cpu_s(os.getpid())
            d0, n0 = self.timed.totals()
            time.sleep(seconds)  # the measurement window
            steps, wall, cpu = t.step - s0, time.perf_counter() - t0, cpu_s(os.getpid()) - c0
            d1, n1 = self.timed.totals()
        finally:
            t.submit(Update(status=Status.PAUSED)).result(60)
        spent = {k: d1[k] - d0.get(k, 0.0) for k in d1}
        calls = {k: n1[k] - n0.get(k, 0) for k in n1}
        return {
            "steps_per_s": steps / wall,
            "steps_per_cpu_s": steps / cpu,
            "cpu_s": cpu,
            "spent": spent,
            "calls": calls,
        }

    def close(self) -> None:
        self.trainer.stop()
        self.events.put(None)
        self.consumer.join()


def diag_cost(batch: int = 32, seconds: float = 10.0, pairs: int = 3) -> dict[str, Any]:
    ds = Dataset.from_file(DEFAULT_DATA)
    splits = ds.splits(3)
    on = Trainee(splits, ds.vocab.chars, batch, diagnostics=True)
    off = Trainee(splits, ds.vocab.chars, batch, diagnostics=False)
    ons, offs = [], []
    try:
        for _ in range(pairs):
            ons.append(on.run(seconds))
            offs.append(off.run(seconds))
    finally:
        on.close()
        off.close()
    if off.kinds.get("Diagnostics") or off.kinds.get("GradDirection"):
        raise RuntimeError(f"the run without diagnostics sent some: {off.kinds}")
    if not on.kinds.get("Diagnostics") or not on.kinds.get("GradDirection"):
        raise RuntimeError(f"the run with diagnostics sent none: {on.kinds}")

    def fig(rows: list[dict[str, Any]], key: str) -> Figure:
        return Figure([r[key] for r in rows])

    wall = Figure([a["steps_per_s"] / b["steps_per_s"] for a, b in zip(ons, offs, strict=True)])
    per_cpu = Figure([a["steps_per_cpu_s"] / b["steps_per_cpu_s"] for a, b in zip(ons, offs, strict=True)])
    grad = Figure([r["spent"].get("grad_pass", 0.0) / r["cpu_s"] for r in ons])
    point = Figure([r["spent"].get("point", 0.0) / r["cpu_s"] for r in ons])
    grad_pct, point_pct = Figure([100 * x for x in grad.samples]), Figure([100 * x for x in point.samples])
    passes = sum(r["calls"].get("grad_pass", 0) for r in ons)
    points = sum(r["calls"].get("point", 0) for r in ons) // 2  # before + point: two calls a point
    on_steps = sum(r["steps_per_s"] * seconds for r in ons)
    print(
        f"  batch {batch}, {seconds:g} s windows: diagnostics on {fig(ons, 'steps_per_s').fmt(0)} vs off"
        f" {fig(offs, 'steps_per_s').fmt(0)} steps/s -> {wall.fmt(3)}x (>= {LIMITS['ratio']});"
        f" per CPU second {fig(ons, 'steps_per_cpu_s').fmt(0)} vs {fig(offs, 'steps_per_cpu_s').fmt(0)}"
        f" -> {per_cpu.fmt(3)}x\n"
        f"  the diagnosed run's CPU time: gradient-direction passes {grad_pct.fmt(2, '%')}"
        f" ({passes} passes), diagnostic points {point_pct.fmt(2, '%')} ({points} points, one per"
        f" ~{on_steps / max(points, 1):,.0f} steps)",
        flush=True,
    )
    return {
        "batch": batch,
        "seconds": seconds,
        "limits": LIMITS,
        "on_steps_per_s": fig(ons, "steps_per_s").as_dict(),
        "off_steps_per_s": fig(offs, "steps_per_s").as_dict(),
        "on_steps_per_cpu_s": fig(ons, "steps_per_cpu_s").as_dict(),
        "off_steps_per_cpu_s": fig(offs, "steps_per_cpu_s").as_dict(),
        "ratio": wall.as_dict(),
        "ratio_per_cpu_s": per_cpu.as_dict(),
        "grad_pass_share": grad.as_dict(),
        "point_share": point.as_dict(),
        "grad_passes": passes,
        "points": points,
        "events_on": on.kinds,
    }


def rows(results: dict[str, Any]) -> list[tuple[str, str, str, bool | None]]:
    """(target, measured, limit, ok) for bench/report.py."""
    if "diag_cost" not in results:
        return []
    r = results["diag_cost"]["result"]
    lim = r["limits"]

    def f(d: dict[str, Any], digits: int, unit: str = "") -> str:
        return Figure(d["samples"]).fmt(digits, unit)

    return [
        (
            f"23 diagnostics on / off, batch {r['batch']}, default cadence: steps/s",
            f"{f(r['ratio'], 3)}× ({f(r['on_steps_per_s'], 0)} vs {f(r['off_steps_per_s'], 0)} steps/s)",
            f"≥ {lim['ratio']}×",
            r["ratio"]["median"] >= lim["ratio"],
        ),
        (
            "23 … steps per CPU second",
            f"{f(r['ratio_per_cpu_s'], 3)}× ({f(r['on_steps_per_cpu_s'], 0)} vs {f(r['off_steps_per_cpu_s'], 0)})",
            f"≥ {lim['ratio']}×",
            r["ratio_per_cpu_s"]["median"] >= lim["ratio"],
        ),
        (
            "23 the gradient-direction pass: share of the run's CPU time, default cadence",
            f"{100 * r['grad_pass_share']['median']:.2f}% ({100 * r['grad_pass_share']['min']:.2f}–"
            f"{100 * r['grad_pass_share']['max']:.2f}; {r['grad_passes']} passes); diagnostic points"
            f" {100 * r['point_share']['median']:.2f}% ({r['points']} points)",
            f"≤ {100 * lim['grad_share']:.0f}%",
            r["grad_pass_share"]["median"] <= lim["grad_share"],
        ),
    ]


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--pairs", type=int, default=3)
    a = parser.parse_args()
    diag_cost(32, a.seconds, a.pairs)
