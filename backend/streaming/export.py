"""A run's history as a file: JSON or CSV, produced chunk by chunk (a 2,000,000-step run is never
one giant string). Runs on a thread (StreamingResponse iterates a sync generator in the
threadpool); the data comes already read from the store."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from backend.store.diagnostics import SCALARS, columns
from backend.store.records import Eval, StepChunk
from backend.streaming.history import LossHistory


@dataclass(frozen=True)
class HistoryData:
    chunks: list[StepChunk]
    evals: list[Eval]
    changes: list[dict[str, Any]]
    # past the steps stored one by one (store.MAX_STORED_STEPS): the run's bucketed history, which
    # overlays draw from there on (the files here hold the stored steps only)
    buckets: LossHistory | None = None
    # the diagnostic points' scalars (step, store/diagnostics.py SCALARS): the JSON has them
    diagnostics: list[tuple[int, list[float | int | None]]] = field(default_factory=list)


def _numbers(values: np.ndarray, digits: int = 7) -> list[str]:
    """float32 values as short text (7 significant digits); NaN and infinity as null."""
    out = [f"{v:.{digits}g}" for v in values.tolist()]
    return [s if s not in ("nan", "inf", "-inf") else "null" for s in out]


def json_chunks(data: HistoryData) -> Iterator[str]:
    yield '{"steps":{"step":['
    first = True
    for c in data.chunks:
        yield ("" if first else ",") + ",".join(map(str, range(c.first, c.first + c.n)))
        first = first and c.n == 0
    for name, digits in (("loss", 7), ("lr", 6)):
        yield f'],"{name}":['
        first = True
        for c in data.chunks:
            values = c.losses if name == "loss" else c.lrs
            yield ("" if first else ",") + ",".join(_numbers(values, digits))
            first = first and c.n == 0
    yield '],"batch_size":['
    first = True
    for c in data.chunks:
        yield ("" if first else ",") + ",".join([str(c.batch_size)] * c.n)
        first = first and c.n == 0
    yield "]},"
    evals = [{"step": s, "train_loss": t, "dev_loss": d, "b_noise": b} for s, t, d, b in data.evals]
    yield '"evals":' + json.dumps(evals) + ',"changes":' + json.dumps(data.changes)
    diag = {"scalars": list(SCALARS), "points": columns(data.diagnostics)}
    yield ',"diagnostics":' + json.dumps(diag, separators=(",", ":")) + "}"


def csv_rows(data: HistoryData) -> Iterator[str]:
    evals = {s: (t, d) for s, t, d, _ in data.evals}
    yield "step,loss,lr,batch_size,train_loss,dev_loss\n"
    end = 0
    for c in data.chunks:
        losses, lrs = _numbers(c.losses), _numbers(c.lrs, 6)
        lines = []
        for i in range(c.n):
            step = c.first + i
            t, d = evals.get(step, (None, None))
            lines.append(f"{step},{_cell(losses[i])},{_cell(lrs[i])},{c.batch_size},{_cell(t)},{_cell(d)}\n")
        end = c.first + c.n
        yield "".join(lines)
    for step in sorted(s for s in evals if s >= end):  # evaluations after the last stored step
        t, d = evals[step]
        yield f"{step},,,,{_cell(t)},{_cell(d)}\n"


def _cell(v: object) -> str:
    return "" if v is None or v == "null" else str(v)


LONG_COLUMNS = ("run_id", "run_name", "kind", "step", "loss", "lr", "batch_size", "train_loss", "dev_loss")


def _long_rows(runs: list[tuple[str, str, HistoryData]]) -> Iterator[list[list[str]]]:
    """Each run's steps (kind "step"), then its evaluations (kind "eval"), as text cells; a batch
    of rows per chunk. Names are quoted by the caller's format."""
    for run_id, name, data in runs:
        for c in data.chunks:
            losses, lrs = _numbers(c.losses), _numbers(c.lrs, 6)
            yield [
                [run_id, name, "step", str(c.first + i), losses[i], lrs[i], str(c.batch_size), "null", "null"]
                for i in range(c.n)
            ]
        yield [[run_id, name, "eval", str(s), "null", "null", "null", _num(t), _num(d)] for s, t, d, _ in data.evals]


def _num(v: float | None) -> str:
    return "null" if v is None else repr(v)


TEXT_COLUMNS = 3  # run_id, run_name, kind: the rest are numbers


def long_csv(runs: list[tuple[str, str, HistoryData]]) -> Iterator[str]:
    yield ",".join(LONG_COLUMNS) + "\n"
    for rows in _long_rows(runs):
        yield "".join(
            ",".join([*map(_text_cell, row[:TEXT_COLUMNS]), *map(_csv_cell, row[TEXT_COLUMNS:])]) + "\n" for row in rows
        )


FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _text_cell(x: str) -> str:
    """Text as a spreadsheet will show it, never run it: one that starts like a formula (a run
    named `=HYPERLINK(...)`) gets a leading single quote, as OWASP advises against CSV injection.
    Numbers never pass here: a quoted number would be text to the spreadsheet."""
    return _quoted("'" + x if x.startswith(FORMULA_START) else x)


def _csv_cell(x: str) -> str:
    """A number's cell: null (NaN, none) is empty."""
    return "" if x == "null" else _quoted(x)


def _quoted(x: str) -> str:
    if any(ch in x for ch in ',"\n\r'):
        return '"' + x.replace('"', '""') + '"'
    return x


def long_json(runs: list[tuple[str, str, HistoryData]]) -> Iterator[str]:
    """{"columns": [...], "rows": [[...], ...]}: the long form, one array per row."""
    yield '{"columns":' + json.dumps(list(LONG_COLUMNS)) + ',"rows":['
    first = True
    for rows in _long_rows(runs):
        for row in rows:
            run_id, name, kind, *numbers = row
            cells = [json.dumps(run_id), json.dumps(name), json.dumps(kind), *numbers]
            yield ("" if first else ",") + "[" + ",".join(cells) + "]"
            first = False
    yield "]}"
