"""A run's diagnostics in the store (issue 23): every point's scalars, its latest HIST_KEEP
points whole (with their histograms, as they were sent), and every gradient-direction pass.

A point's scalars are SCALARS, in that order, as float32 (NaN: none): 104 bytes a point. The
order is part of the format: a new scalar is a new migration (a new column or table), never a
new order. float32 holds the points' 4 significant digits (and update_data's 4 decimals)
exactly enough that `num` and `num_log` give back the very figures that were sent.

Budget (tests/runs/test_diagnostics_api.py measures it): a 200,000-step run at the defaults has a
point at each of its 201 evaluations and at most one per diagnosing.MIN_EVERY steps besides:
~2,000 points, ~250 KB of scalars and keys, 200 whole points (~1.5 KB each compressed), 201
passes (~0.4 KB each): under 1 MB.

`Store.diagnostics` holds the reads and writes; `cut` and `copy` run inside the store's own
transactions, and a deleted run's rows go with TABLES.
"""

from __future__ import annotations

import json
import math
import sqlite3
import zlib
from collections.abc import Callable
from typing import Any

import numpy as np

from backend.core.diagnostics import NAMES, num, num_log
from backend.store.writer import Op

HIDDEN = ("saturated", "dead", "preact_mean", "preact_std", "tanh_mean", "tanh_std")
PARAM = ("std", "norm", "grad_data", "update_data")
SCALARS: tuple[str, ...] = (*HIDDEN, *(f"{n}.{k}" for n in NAMES for k in PARAM))
HIST_KEEP = 200  # the latest points are kept whole; older ones keep their scalars only

Columns = dict[str, list[Any]]  # "step" and each of SCALARS: one value per point


def scalars(point: dict[str, Any]) -> list[float | None]:
    """A point's SCALARS, in order."""
    h, p = point["hidden"], point["params"]
    hidden = [h["saturated"], h["dead"], h["preact"]["mean"], h["preact"]["std"], h["tanh"]["mean"], h["tanh"]["std"]]
    return [*hidden, *(p[n][k] for n in NAMES for k in PARAM)]


def _figure(key: str, x: float) -> float | int | None:
    if math.isnan(x):
        return None
    if key == "dead":
        return int(x)
    return num_log(x) if key.endswith("update_data") else num(x)


def encode_scalars(values: list[float | None]) -> bytes:
    return np.array([math.nan if v is None else v for v in values], dtype="<f4").tobytes()


def decode_scalars(blob: bytes) -> list[float | int | None]:
    values = np.frombuffer(blob, dtype="<f4").astype(np.float64).tolist()
    return [_figure(k, x) for k, x in zip(SCALARS, values, strict=True)]


def columns(rows: list[tuple[int, list[float | int | None]]], keys: tuple[str, ...] = SCALARS) -> Columns:
    """Points as columns: "step", then one list per scalar (`keys`: what each point's values are)."""
    out: Columns = {"step": [s for s, _ in rows]}
    for i, key in enumerate(keys):
        out[key] = [v[i] for _, v in rows]
    return out


def whole(point: dict[str, Any]) -> bytes:
    """A point as sent (less its type), compressed: ~1.5 KB."""
    body = {k: v for k, v in point.items() if k != "type"}
    return zlib.compress(json.dumps(body, separators=(",", ":")).encode(), 6)


def unpacked(blob: bytes) -> dict[str, Any]:
    point: dict[str, Any] = json.loads(zlib.decompress(blob))
    return point


def thinned(n: int, limit: int) -> list[int]:
    """Indices of `limit` of n items, evenly spread, the first and the last among them."""
    if n <= limit:
        return list(range(n))
    if limit < 2:
        return [n - 1][:limit]
    return sorted({round(i * (n - 1) / (limit - 1)) for i in range(limit)})


class DiagnosticsStore:
    """`Store.diagnostics`: writes go through the store's writer queue, reads through its
    per-thread connections."""

    def __init__(self, queue: Callable[[Op], None], reader: Callable[[], sqlite3.Connection]) -> None:
        self._queue, self._reader = queue, reader

    def add(self, run_id: str, step: int, point: dict[str, Any]) -> None:
        """A point: its scalars, and whole; all but the latest HIST_KEEP keep their scalars only."""
        blob, hist = encode_scalars(scalars(point)), whole(point)

        def op(c: sqlite3.Connection) -> None:
            c.execute(
                "INSERT OR REPLACE INTO diagnostics (run_id, step, scalars, point) VALUES (?, ?, ?, ?)",
                (run_id, step, blob, hist),
            )
            c.execute(
                "UPDATE diagnostics SET point = NULL WHERE run_id = ?1 AND point IS NOT NULL AND step < ("
                " SELECT MIN(step) FROM (SELECT step FROM diagnostics WHERE run_id = ?1 AND point IS NOT NULL"
                " ORDER BY step DESC LIMIT ?2))",
                (run_id, HIST_KEEP),
            )

        self._queue(op)

    def add_gradcos(self, run_id: str, message: dict[str, Any]) -> None:
        """A gradient-direction pass (its websocket message, less its type)."""
        body = json.dumps({k: v for k, v in message.items() if k != "type"}, separators=(",", ":"))
        self._queue(
            lambda c: c.execute(
                "INSERT OR REPLACE INTO gradcos (run_id, step, result) VALUES (?, ?, ?)",
                (run_id, message["step"], body),
            )
        )

    def scalars(
        self, run_id: str, start: int = 0, stop: int | None = None, latest: int | None = None
    ) -> list[tuple[int, list[float | int | None]]]:
        """(step, SCALARS) of the points from `start` to `stop` (inclusive), in step order; with
        `latest`, only the latest that many. Blocking."""
        end = stop if stop is not None else 2**62
        sql = "SELECT step, scalars FROM diagnostics WHERE run_id = ? AND step >= ? AND step <= ? ORDER BY step"
        if latest is not None:
            sql += f" DESC LIMIT {int(latest)}"
        rows = self._reader().execute(sql, (run_id, start, end)).fetchall()
        if latest is not None:
            rows.reverse()
        return [(s, decode_scalars(b)) for s, b in rows]

    def latest(self, run_id: str, stop: int | None = None) -> dict[str, Any] | None:
        """The latest point at or before `stop` that has its histograms, whole. Blocking."""
        row = (
            self._reader()
            .execute(
                "SELECT point FROM diagnostics WHERE run_id = ? AND step <= ? AND point IS NOT NULL"
                " ORDER BY step DESC LIMIT 1",
                (run_id, stop if stop is not None else 2**62),
            )
            .fetchone()
        )
        return None if row is None else unpacked(row[0])

    def gradcos(self, run_id: str, start: int = 0, stop: int | None = None) -> list[dict[str, Any]]:
        """The gradient-direction passes from `start` to `stop` (inclusive), in step order. Blocking."""
        rows = self._reader().execute(
            "SELECT result FROM gradcos WHERE run_id = ? AND step >= ? AND step <= ? ORDER BY step",
            (run_id, start, stop if stop is not None else 2**62),
        )
        return [json.loads(r) for (r,) in rows]

    def latest_gradcos(self, run_id: str) -> dict[str, Any] | None:
        row = (
            self._reader()
            .execute("SELECT result FROM gradcos WHERE run_id = ? ORDER BY step DESC LIMIT 1", (run_id,))
            .fetchone()
        )
        return None if row is None else dict(json.loads(row[0]))

    def bytes(self, run_id: str) -> int:
        """What a run's diagnostics take: their rows' payloads and keys (~40 bytes a row)."""
        (n,) = (
            self._reader()
            .execute(
                "SELECT (SELECT COALESCE(SUM(LENGTH(scalars) + COALESCE(LENGTH(point), 0) + LENGTH(run_id) + 8), 0)"
                " FROM diagnostics WHERE run_id = ?1) + (SELECT COALESCE(SUM(LENGTH(result) + LENGTH(run_id) + 8), 0)"
                " FROM gradcos WHERE run_id = ?1)",
                (run_id,),
            )
            .fetchone()
        )
        return int(n)


def cut(c: sqlite3.Connection, run_id: str, step: int) -> None:
    """A run cut back to its checkpoint at `step`: the points of the steps it takes again go (a
    point is its step's: the weights after it), and the passes of evaluations after it."""
    c.execute("DELETE FROM diagnostics WHERE run_id = ? AND step >= ?", (run_id, step))
    c.execute("DELETE FROM gradcos WHERE run_id = ? AND step > ?", (run_id, step))


def copy(c: sqlite3.Connection, parent_id: str, child_id: str, upto: int) -> None:
    """A branch at `upto` starts with its parent's points before it and its passes up to it."""
    c.execute(
        "INSERT INTO diagnostics SELECT ?, step, scalars, point FROM diagnostics WHERE run_id = ? AND step < ?",
        (child_id, parent_id, upto),
    )
    c.execute(
        "INSERT INTO gradcos SELECT ?, step, result FROM gradcos WHERE run_id = ? AND step <= ?",
        (child_id, parent_id, upto),
    )


TABLES = ("diagnostics", "gradcos")  # a run's rows go with it (Store.delete_run)
