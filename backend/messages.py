"""Trainer events as websocket messages (JSON-ready dicts). Losses are rounded to 5 decimals
(4 in snapshots, which must stay small); a non-finite loss (a diverging step) is sent as null,
since JSON has no NaN."""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np

from backend.trainer import EvalResult, Event, HParamsChanged, StatusChanged, Steps

Message = dict[str, Any]


def loss_list(values: list[float], digits: int = 5) -> list[float | None]:
    rounded: list[float] = np.round(np.asarray(values, dtype=np.float64), digits).tolist()
    return [v if math.isfinite(v) else None for v in rounded]


def finite(value: float, digits: int = 5) -> float | None:
    return round(value, digits) if math.isfinite(value) else None


def eval_message(e: EvalResult) -> Message:
    return {
        "type": "eval",
        "step": e.step,
        "train_loss": finite(e.train_loss),
        "dev_loss": finite(e.dev_loss),
        "ms": round(e.ms, 2),
    }


def event_message(event: Event) -> Message:
    match event:
        case Steps():
            return {
                "type": "steps",
                "step": list(range(event.first, event.first + len(event.losses))),
                "loss": loss_list(event.losses),
                "steps_per_s": round(event.steps_per_s, 1),
                "examples_per_s": round(event.examples_per_s, 1),
            }
        case EvalResult():
            return eval_message(event)
        case HParamsChanged():
            h = event.hparams
            return {
                "type": "hparams",
                "step": event.step,
                "lr": h.lr,
                "batch_size": h.batch_size,
                "eval_every": h.eval_every,
                "max_steps": event.max_steps,
            }
        case StatusChanged():
            return {"type": "status", "status": event.status.value, "step": event.step, "detail": event.detail}
    raise TypeError(f"not an event: {event!r}")


def encode(message: Message) -> str:
    return json.dumps(message, separators=(",", ":"), allow_nan=False)


def error(detail: str) -> str:
    return encode({"type": "error", "detail": detail})
