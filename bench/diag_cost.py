"""Issue 23's speed targets on the trainer itself: a run at batch 32 with its diagnostics on at the
default cadence trains at >= 0.95x the steps/s of the same run with them off, and its
gradient-direction passes take <= 5% of its time.

Two runs of the lecture's model (the built-in names, batch 32, an evaluation every 1,000 steps)
train side by side, at the same time, as two runs on a real server do: each in its own process
(spawned) with the torch threads the server gives each of two runs training at once, its Trainer
on a thread, its events crossing to another thread that encodes each one as the server does for
its viewers (the diag and gradcos messages included). One takes its diagnostic points and
gradient-direction passes as diagnosing.py's budgets say (the default cadence); the other never
does: its Diagnoser's cadence is never due (the trainer has no switch for them; the bench swaps
the two budgets of its `_diag`). Both start together, settle (a cadence sizes itself from the
costs it measured), then train on without a pause through windows back to back, as a long run
does; a barrier between the two processes bounds each window, so both measure the same seconds.

Side by side, because on a shared machine the CPU a process gets moves from second to second far
more than the diagnostics cost (a few %): two runs measured in turn see different machines, two
measured at once see the same one. And the two processes trade cores ten times a second (the
parent sets their threads' affinity): a shared machine's cores do not run at the same speed from
moment to moment (neighbours on the host), and left to the scheduler one run may sit on the
slower core for most of a window. Both without diagnostics (`--control`, an A/A run), windows
differed by up to 25% left to the scheduler, by 3-5% trading cores. Per window, on over off:

- steps/s from each trainer's step counter over the window (wall time);
- steps per CPU second of each process (its trainer's thread, its torch threads, its encoding
  thread), which does not care how the two processes shared the cores;
- the share of the diagnosed run's CPU time in its gradient-direction passes and in its
  diagnostic points, timed in its trainer's thread (CPU seconds) around diagnosing.py's calls.

`--control` runs both without diagnostics: its ratios are the method's noise floor.

    python -m bench.diag_cost [--seconds 4] [--windows 14] [--control]
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import multiprocessing
import os
import queue
import threading
import time
import traceback
from collections.abc import Callable
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from multiprocessing.synchronize import Barrier
from typing import Any

import torch

from backend.config import DEFAULT_DATA
from backend.core.data import Dataset, Splits
from backend.runtime.runtime import LocalRuntime
from backend.streaming.messages import encode, event_message
from backend.training.diagnosing import Cadence, Diagnoser, GradBudget
from backend.training.protocol import CheckpointTaken, Event, Status, Update
from backend.training.spec import RunSpec
from backend.training.trainer import Trainer
from bench.stats import Figure

LIMITS = {"ratio": 0.95, "grad_share": 0.05}
SETTLE_S = 5.0  # both runs' first stretch, together and unmeasured: a cadence sizes itself from its costs
SWAP_S = 0.1  # how often the two processes trade cores (see _swap_cores)
REPLY_S = 120.0  # the longest a child may take to start, or past its windows to end


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
    """One run's Trainer on a thread, as bench/worker.py's InThread, with its diagnostics on or off
    and the torch threads of one of two runs training at once."""

    def __init__(self, splits: Splits, chars: tuple[str, ...], batch: int, diagnostics: bool) -> None:
        self.events: queue.SimpleQueue[Event | None] = queue.SimpleQueue()
        self.kinds: dict[str, int] = {}
        self.consumer = threading.Thread(target=self._consume, name="event-loop-stand-in")
        self.consumer.start()
        spec = RunSpec(max_steps=100_000_000, batch_size=batch)
        self.trainer = Trainer(spec, splits, chars, self.events.put, max_threads=LocalRuntime().share(2))
        self.timed = _Timed()
        d: Diagnoser = self.trainer._diag  # the trainer's only handle on them
        if diagnostics:
            self.timed.wrap(d, "direction", "grad_pass")
            self.timed.wrap(d, "before", "point")
            self.timed.wrap(d, "point", "point")
        else:
            d.points, d.grads = _Never(), _NoPasses()
        self.trainer.start(running=False)  # evaluates step 0 and waits, as a new run's worker does

    def _consume(self) -> None:  # the event loop's share of the work: every event encoded once
        while (event := self.events.get()) is not None:
            kind = type(event).__name__
            self.kinds[kind] = self.kinds.get(kind, 0) + 1
            if not isinstance(event, CheckpointTaken):
                encode(event_message(event))

    def run(self, seconds: float, windows: int, bounds: Barrier) -> list[dict[str, Any]]:
        """Resume, settle, then `windows` windows of `seconds` back to back, each bounded by
        `bounds` (the other run's process waits there too, so both windows start and end at the
        same moment), then pause: per window, steps/s (wall and per CPU second of this process)
        and the CPU seconds of the diagnostics' calls."""
        t = self.trainer
        t.submit(Update(status=Status.RUNNING)).result(60)
        try:
            time.sleep(SETTLE_S)
            bounds.wait(REPLY_S)
            marks = [(t.step, time.perf_counter(), time.process_time(), *self.timed.totals())]
            for _ in range(windows):
                time.sleep(seconds)  # the measurement window
                bounds.wait(REPLY_S)
                marks.append((t.step, time.perf_counter(), time.process_time(), *self.timed.totals()))
        finally:
            t.submit(Update(status=Status.PAUSED)).result(60)
        out = []
        for (s0, t0, c0, d0, n0), (s1, t1, c1, d1, n1) in itertools.pairwise(marks):
            out.append(
                {
                    "steps_per_s": (s1 - s0) / (t1 - t0),
                    "steps_per_cpu_s": (s1 - s0) / (c1 - c0),
                    "cpu_s": c1 - c0,
                    "spent": {k: d1[k] - d0.get(k, 0.0) for k in d1},
                    "calls": {k: n1[k] - n0.get(k, 0) for k in n1},
                }
            )
        return out

    def close(self) -> None:
        self.trainer.stop()
        self.events.put(None)
        self.consumer.join()


def _child(conn: Connection, bounds: Barrier, batch: int, diagnostics: bool) -> None:
    """One run's process: build its Trainee, say "ready", wait for (seconds, windows), train
    through them, and answer with each window's figures and the kinds of event it sent."""
    torch.set_num_threads(1)  # as a worker process starts (its trainer sets its own per batch)
    try:
        ds = Dataset.from_file(DEFAULT_DATA)
        trainee = Trainee(ds.splits(3), ds.vocab.chars, batch, diagnostics)
    except Exception:
        conn.send(("error", traceback.format_exc()))
        return
    try:
        conn.send(("ready", None))
        seconds, windows = conn.recv()
        figures = trainee.run(seconds, windows, bounds)
    except Exception:
        bounds.abort()  # the other run's process may be waiting for this one
        conn.send(("error", traceback.format_exc()))
        return
    finally:
        trainee.close()
    conn.send(("done", (figures, trainee.kinds)))


class _Pair:
    """The two runs' processes (spawned, as the server's workers are separate processes)."""

    def __init__(self, batch: int, diagnostics: tuple[bool, bool]) -> None:
        ctx = multiprocessing.get_context("spawn")
        self.bounds = ctx.Barrier(2)  # held here: a child unpickles it after its start
        self.conns: list[Connection] = []
        self.procs: list[BaseProcess] = []
        for on in diagnostics:
            mine, theirs = ctx.Pipe()
            name = f"diag-{'on' if on else 'off'}-{len(self.procs)}"
            proc = ctx.Process(target=_child, args=(theirs, self.bounds, batch, on), name=name, daemon=True)
            proc.start()
            theirs.close()
            self.conns.append(mine)
            self.procs.append(proc)

    def _replies(self, kind: str, wait_s: float) -> list[Any]:
        out = []
        for conn, proc in zip(self.conns, self.procs, strict=True):
            try:
                if not conn.poll(wait_s):
                    raise RuntimeError(f"{proc.name} did not answer in {wait_s:g} s")
                got, value = conn.recv()
            except EOFError:
                proc.join(5)
                raise RuntimeError(f"{proc.name} exited ({proc.exitcode})") from None
            if got != kind:
                raise RuntimeError(f"{proc.name}: {value}")
            out.append(value)
        return out

    def run(self, seconds: float, windows: int) -> list[Any]:
        """Both start training when both are ready (their windows line up at the barrier)."""
        self._replies("ready", REPLY_S)
        for conn in self.conns:
            conn.send((seconds, windows))
        stop = threading.Event()
        swapper = threading.Thread(target=self._swap_cores, args=(stop,), name="core-swapper", daemon=True)
        swapper.start()
        try:
            return self._replies("done", SETTLE_S + windows * (seconds + 1) + REPLY_S)
        finally:
            stop.set()
            swapper.join()

    def _swap_cores(self, stop: threading.Event) -> None:
        """Every SWAP_S, the two processes (all their threads) trade halves of the cores, each
        moved first in turn: within a window each has as much time on either half."""
        cores = sorted(os.sched_getaffinity(0))
        halves = [set(cores[: len(cores) // 2]), set(cores[len(cores) // 2 :])]
        if not halves[0]:
            return  # one core: nothing to trade
        k = 0
        while not stop.wait(SWAP_S):
            k += 1
            order = list(enumerate(self.procs))
            for i, proc in order if k % 2 else reversed(order):
                with contextlib.suppress(OSError):  # a process or thread gone meanwhile
                    for tid in os.listdir(f"/proc/{proc.pid}/task"):
                        with contextlib.suppress(OSError):
                            os.sched_setaffinity(int(tid), halves[(i + k) % 2])

    def end(self) -> None:
        for proc in self.procs:
            proc.join(10)
            if proc.is_alive():
                proc.terminate()
                proc.join(5)


def diag_cost(batch: int = 32, seconds: float = 4.0, windows: int = 14, control: bool = False) -> dict[str, Any]:
    """`windows` windows of `seconds`, a run with diagnostics (or, with `control`, another run
    without) beside one without, both training at once."""
    load0 = os.getloadavg()[0]
    pair = _Pair(batch, (not control, False))
    try:
        (ons, on_kinds), (offs, off_kinds) = pair.run(seconds, windows)
    finally:
        pair.end()
    load1 = os.getloadavg()[0]
    for name, kinds, want in (("with", on_kinds, not control), ("without", off_kinds, False)):
        sent = [k for k in ("Diagnostics", "GradDirection") if kinds.get(k)]
        if (want and len(sent) < 2) or (not want and sent):
            raise RuntimeError(f"the run {name} diagnostics sent {kinds}")

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
    a, b = ("A", "B") if control else ("diagnostics on", "off")
    print(
        f"  batch {batch}, {windows} window{'s' * (windows != 1)} of {seconds:g} s side by side"
        f"{' (A/A control)' if control else ''},"
        f" load {load0:.2f} -> {load1:.2f}: {a} {fig(ons, 'steps_per_s').fmt(0)} vs {b}"
        f" {fig(offs, 'steps_per_s').fmt(0)} steps/s -> {wall.fmt(3)}x (>= {LIMITS['ratio']});"
        f" per CPU second {fig(ons, 'steps_per_cpu_s').fmt(0)} vs {fig(offs, 'steps_per_cpu_s').fmt(0)}"
        f" -> {per_cpu.fmt(3)}x",
        flush=True,
    )
    if not control:
        print(
            f"  the diagnosed run's CPU time: gradient-direction passes {grad_pct.fmt(2, '%')}"
            f" ({passes} passes), diagnostic points {point_pct.fmt(2, '%')} ({points} points, one per"
            f" ~{on_steps / max(points, 1):,.0f} steps)",
            flush=True,
        )
    return {
        "batch": batch,
        "seconds": seconds,
        "windows": windows,
        "control": control,
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
        "events_on": on_kinds,
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
            f"23 diagnostics on / off (side by side), batch {r['batch']}, default cadence: steps/s",
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
    parser.add_argument("--seconds", type=float, default=4.0, help="each window's length")
    parser.add_argument("--windows", type=int, default=14)
    parser.add_argument("--control", action="store_true", help="both runs without diagnostics: the noise floor")
    a = parser.parse_args()
    diag_cost(32, a.seconds, a.windows, a.control)
