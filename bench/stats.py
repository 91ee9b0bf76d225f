"""Medians, ranges and ratios, and the A B A B ... alternation every comparison uses."""

from __future__ import annotations

import statistics
from collections.abc import Awaitable, Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Figure:
    samples: list[float]

    @property
    def median(self) -> float:
        return statistics.median(self.samples)

    def fmt(self, digits: int = 0, unit: str = "") -> str:
        lo, hi = min(self.samples), max(self.samples)
        return f"{self.median:,.{digits}f}{unit} ({lo:,.{digits}f}–{hi:,.{digits}f})"

    def as_dict(self) -> dict[str, object]:
        return {"median": self.median, "min": min(self.samples), "max": max(self.samples), "samples": self.samples}


def alternate(a: Callable[[], float], b: Callable[[], float], pairs: int) -> tuple[Figure, Figure, Figure]:
    """Run a, b, a, b, ... `pairs` times; return both figures and the per-pair ratios b/a."""
    xs, ys = [], []
    for _ in range(pairs):
        xs.append(a())
        ys.append(b())
    return Figure(xs), Figure(ys), Figure([y / x for x, y in zip(xs, ys, strict=True)])


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def alternate_async(
    a: Callable[[], Awaitable[float]], b: Callable[[], Awaitable[float]], pairs: int
) -> tuple[Figure, Figure, Figure]:
    """`alternate` for coroutines."""
    xs, ys = [], []
    for _ in range(pairs):
        xs.append(await a())
        ys.append(await b())
    return Figure(xs), Figure(ys), Figure([y / x for x, y in zip(xs, ys, strict=True)])
