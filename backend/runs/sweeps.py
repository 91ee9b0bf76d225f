"""Sweeps: many runs from one request, the lecture's "try many learning rates and plot the loss
against them" done with real runs. A grid of values (a Cartesian product of lists) or a
log-spaced range of learning rates, laid over base settings; at most MAX_RUNS runs.

Pure: from the request to the runs' settings and names. The registry creates and queues them.
"""

from __future__ import annotations

import itertools
import math
from typing import Any, Literal

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
