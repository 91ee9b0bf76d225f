"""Sweeps: many runs from one request, the lecture's "try many learning rates and plot the loss
against them" done with real runs. A grid of values (a Cartesian product of lists) or a
log-spaced range of learning rates, laid over base settings; at most MAX_RUNS runs.

From the request to the runs' settings and names (pure functions), then `Sweeps`: the runs
created and queued, listed, stopped.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import math
import secrets
import time
from dataclasses import replace
from typing import Any, Literal

from backend.runs.create import Creator
from backend.runs.steering import Steering
from backend.runs.table import RunNotFoundError, Table
from backend.store.records import RunRecord, SweepRecord
from backend.training.protocol import ConflictError, Status, Update
from backend.training.spec import RunSpec

MAX_RUNS = 64
SWEPT = ("lr", "batch_size", "optimizer", "init", "n_embd", "n_hidden", "block_size", "schedule", "seed")
SHORT = {"lr": "lr", "batch_size": "b", "optimizer": "", "init": "init", "n_embd": "embd", "n_hidden": "hidden",
         "block_size": "block", "schedule": "", "seed": "seed"}  # fmt: skip


def lr_values(lo: float, hi: float, n: int) -> list[float]:
    """n rates spaced evenly in log10 from lo to hi (both included), to 4 significant digits."""
    if n == 1:
        return [lo]
    a, b = math.log10(lo), math.log10(hi)
    return [float(f"{10 ** (a + (b - a) * i / (n - 1)):.4g}") for i in range(n)]


def combinations(grid: dict[str, list[Any]]) -> list[dict[str, Any]]:
    """Every combination of the listed values, the first parameter varying slowest."""
    names = [n for n in SWEPT if grid.get(n)]
    return [dict(zip(names, values, strict=True)) for values in itertools.product(*(grid[n] for n in names))]


def label(values: dict[str, Any]) -> str:
    """A run's name in a sweep: the values that set it apart, e.g. "lr 0.0316 · b 64"."""
    parts = []
    for name, value in values.items():
        v = value["kind"] if name == "schedule" and isinstance(value, dict) else value
        text = f"{v:g}" if isinstance(v, float) else str(v)
        parts.append(f"{SHORT[name]} {text}".strip())
    return " · ".join(parts)


def run_name(values: dict[str, Any], spec: RunSpec, sweep_name: str, dataset: str | None = None) -> str:
    """A sweep's run: its swept values, what else sets the sweep apart from the lecture's run, and
    the sweep's name (two sweeps of the same rates give their runs different names)."""
    rest = [] if "lr" in values else [f"lr {spec.lr:g}"]
    rest += spec.differences(dataset, skip=frozenset(values))
    return " · ".join([label(values), *rest, sweep_name])


def unique(name: str, taken: set[str]) -> str:
    """The name, or with " #2", " #3"... when another sweep has it."""
    n = 1
    out = name
    while out in taken:
        n += 1
        out = f"{name} #{n}"
    return out


def expand(base: RunSpec, grid: dict[str, list[Any]]) -> list[tuple[dict[str, Any], RunSpec]]:
    """(the values swept, the run's settings) for each run; raises ValueError past MAX_RUNS."""
    runs = combinations(grid)
    if len(runs) > MAX_RUNS:
        raise ValueError(f"{len(runs)} runs: at most {MAX_RUNS} in a sweep")
    out = []
    for values in runs:
        spec = RunSpec.model_validate({**base.model_dump(), **values})
        out.append((values, spec))
    return out


SweepStatus = Literal["running", "finished", "paused", "stopped"]


def status(stopped: bool, run_statuses: list[str]) -> SweepStatus:
    """running while any run trains or waits; finished when all did; stopped once deleted."""
    if stopped:
        return "stopped"
    if any(s in ("running", "queued") for s in run_statuses):
        return "running"
    if run_statuses and all(s == "finished" for s in run_statuses):
        return "finished"
    return "paused"


def default_name(grid: dict[str, list[Any]]) -> str:
    parts = []
    for name in SWEPT:
        values = grid.get(name)
        if not values:
            continue
        if name == "lr" and len(values) > 2:
            parts.append(f"lr {min(values):g}…{max(values):g} ×{len(values)}")
        else:
            parts.append(f"{name} ×{len(values)}")
    return "sweep: " + ", ".join(parts)


class Sweeps:
    def __init__(self, table: Table, creator: Creator, steering: Steering) -> None:
        self.table = table
        self.creator = creator
        self.steering = steering

    async def create_sweep(
        self, base: RunSpec, grid: dict[str, list[Any]], name: str | None, request: dict[str, Any]
    ) -> tuple[SweepRecord, list[RunRecord]]:
        """Its runs, created in order and started as slots free (queued first come, first served).
        ValueError: too many runs; KeyError: no such dataset."""
        planned = expand(base, grid)
        ds = self.table.datasets.record(base.dataset)
        if ds is None:
            raise KeyError(base.dataset)
        if name is None:
            taken = {s.name for s in await asyncio.to_thread(self.table.store.sweeps, 10_000, 0)}
            name = unique(default_name(grid), taken)
        record = SweepRecord(secrets.token_hex(6), name, request, list(grid), False, time.time())
        await asyncio.to_thread(self.table.store.put_sweep, record)
        shown = None if ds.id == self.table.datasets.builtin_id else ds.name
        runs = []
        for v, spec in planned:
            runs.append(await self.creator.create(spec, True, name=run_name(v, spec, name, shown), sweep_id=record.id))
        return record, runs

    async def sweep(self, sweep_id: str) -> tuple[SweepRecord, list[RunRecord]]:
        record = await asyncio.to_thread(self.table.store.sweep, sweep_id)
        if record is None:
            raise RunNotFoundError(f"no sweep with id {sweep_id!r}")
        runs = await self.table.listed(None, MAX_RUNS, 0, sweep_id=sweep_id)
        return record, sorted(runs, key=lambda r: (r.created_at, r.id))

    async def sweep_list(self, limit: int, offset: int) -> list[tuple[SweepRecord, list[RunRecord]]]:
        records = await asyncio.to_thread(self.table.store.sweeps, limit, offset)
        return [await self.sweep(s.id) for s in records]

    async def stop_sweep(self, sweep_id: str) -> None:
        """Pause its runs and take the waiting ones out of the queue; they stay stored."""
        record, runs = await self.sweep(sweep_id)
        for r in runs:
            if r.status in (Status.RUNNING, Status.QUEUED):
                with contextlib.suppress(ConflictError, RunNotFoundError):
                    await self.steering.update(r.id, Update(status=Status.PAUSED))
        await asyncio.to_thread(self.table.store.put_sweep, replace(record, stopped=True))
