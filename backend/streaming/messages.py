"""Trainer events as websocket messages (JSON-ready dicts). Losses are rounded to 5 decimals
(4 in snapshots, which must stay small), rates to 6 significant digits; a non-finite number (a
diverging step) is sent as null, since JSON has no NaN."""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np

from backend.core.gradcos import predicted_cos
from backend.core.lrfind import LrFindResult
from backend.training.protocol import (
    Diagnostics,
    Divergence,
    EmbeddingsChanged,
    EvalResult,
    Event,
    GradDirection,
    HParamsChanged,
    LrFindDone,
    LrFindProgress,
    LrFindStarted,
    NoiseEstimate,
    StatusChanged,
    Steps,
)

Message = dict[str, Any]


def loss_list(values: list[float], digits: int = 5) -> list[float | None]:
    a = np.asarray(values, dtype=np.float64)
    ok = np.isfinite(a)
    rounded: list[float] = np.round(np.where(ok, a, 0.0), digits).tolist()
    return [v if good else None for v, good in zip(rounded, ok.tolist(), strict=True)]


def sig_list(values: list[float], digits: int = 6) -> list[float | None]:
    if len(values) > 1 and all(v == values[0] for v in values):  # a constant rate: round once
        return sig_list(values[:1], digits) * len(values)
    return [float(f"{v:.{digits}g}") if math.isfinite(v) else None for v in values]


def finite(value: float | None, digits: int = 5) -> float | None:
    return round(value, digits) if value is not None and math.isfinite(value) else None


def eval_row(step: int, train: float | None, dev: float | None, b_noise: float | None) -> list[float | None]:
    """An evaluation as the pages get it, live or stored: [step, train loss, dev loss, b_noise],
    the losses to 4 decimals (a snapshot carries every evaluation), b_noise to 1."""
    return [step, finite(train, 4), finite(dev, 4), finite(b_noise, 1)]


def divergence_public(d: Divergence | None) -> dict[str, Any] | None:
    """Where a run diverged, as the page reads it (no number from its detail): losses that are not
    finite (the step's, often) are null."""
    if d is None:
        return None
    return {
        "step": d.step,
        "lr": d.lr,
        "loss": finite(d.loss),
        "smoothed": finite(d.smoothed),
        "best_smoothed": finite(d.best_smoothed),
        "restored_step": d.restored_step,
        "restored_dev_loss": finite(d.restored_dev_loss),
    }


def lrfind_message(r: LrFindResult) -> Message:
    return {
        "type": "lrfind_done",
        "lr": sig_list(r.lr),
        "loss": loss_list(r.loss),
        "smoothed": loss_list(r.smoothed),
        "suggestion": r.suggestion,
        "method": r.method,
        "step": r.step,
        "batch_size": r.batch_size,
        "seconds": round(r.seconds, 3),
        "stopped_early": r.stopped_early,
    }


def embeddings_message(
    step: int, chars: tuple[str, ...] | list[str], x: list[float], y: list[float], method: str
) -> Message:
    return {
        "type": "embeddings",
        "step": step,
        "chars": list(chars),
        "x": loss_list(x, 4),
        "y": loss_list(y, 4),
        "method": method,
    }


def gradcos_message(d: GradDirection) -> Message:
    """The gradient-direction pass; `predicted`: the cosine the noise scale predicts per size."""
    return {
        "type": "gradcos",
        "step": d.step,
        "batch_sizes": d.batch_sizes,
        "mean": d.mean,
        "std": d.std,
        "min": d.min,
        "max": d.max,
        "predicted": [finite(predicted_cos(B, d.b_noise), 4) for B in d.batch_sizes],
        "b_noise": finite(d.b_noise, 1),
        "current": d.current,
    }


def event_message(event: Event) -> Message:
    match event:
        case Steps():
            return {
                "type": "steps",
                "step": list(range(event.first, event.first + len(event.losses))),
                "loss": loss_list(event.losses),
                "lr": sig_list(event.lrs),
                "time": round(event.time, 3),
                "steps_per_s": round(event.steps_per_s, 1),
                "examples_per_s": round(event.examples_per_s, 1),
            }
        case EvalResult():
            return {
                "type": "eval",
                "step": event.step,
                "train_loss": finite(event.train_loss),
                "dev_loss": finite(event.dev_loss),
                "ms": round(event.ms, 2),
            }
        case HParamsChanged():
            return {
                "type": "hparams",
                "step": event.step,
                **event.hparams.model_dump(mode="json"),
            }
        case StatusChanged():
            return {  # `cause` and `divergence` for programs, `detail` for people
                "type": "status",
                "status": event.status.value,
                "step": event.step,
                "detail": event.detail,
                "cause": event.cause.value if event.cause is not None else None,
                "divergence": divergence_public(event.divergence),
                "checkpoint_held": event.checkpoint_held,
            }
        case NoiseEstimate():
            return {"type": "noise", "step": event.step, "b_noise": finite(event.b_noise, 1)}
        case EmbeddingsChanged():
            return embeddings_message(event.step, event.chars, event.x, event.y, event.method)
        case LrFindStarted():
            sp = event.spec
            return {
                "type": "lrfind_start",
                "step": event.step,
                "min_lr": sp.min_lr,
                "max_lr": sp.max_lr,
                "steps": sp.steps,
                "batch_size": event.batch_size,
            }
        case LrFindProgress():
            return {"type": "lrfind", "lr": sig_list(event.lr), "loss": loss_list(event.loss)}
        case LrFindDone():
            return lrfind_message(event.result)
        case Diagnostics():
            return {"type": "diag", **event.point, "step": event.step}
        case GradDirection():
            return gradcos_message(event)
    raise TypeError(f"not an event: {event!r}")


def encode(message: Message) -> str:
    return json.dumps(message, separators=(",", ":"), allow_nan=False)


def error(detail: str) -> str:
    return encode({"type": "error", "detail": detail})
