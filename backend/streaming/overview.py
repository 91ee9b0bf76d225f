"""The overview of runs, for the runs list and the compare view: one websocket (/ws/runs) instead
of one per run. A new viewer gets the newest runs in a snapshot; after that, a compact message
with the runs whose state changed, at most FLUSHES_PER_S times a second in all, whatever the
number of runs training.

Lives on the event loop; the registry tells it what changed. Each viewer reads through a
Subscriber of its own (channel.py): a bounded queue, a fresh snapshot when it lags.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import OrderedDict
from typing import Any

from backend.streaming.channel import Subscriber
from backend.streaming.messages import Message, encode

FLUSH_SECONDS = 0.5  # changes go out at most twice a second
KEPT = 100  # runs in a snapshot: the newest


class Overview:
    def __init__(self) -> None:
        self.run_id = ""  # (a Subscriber asks its feed which run it is)
        self.rows: OrderedDict[str, Message] = OrderedDict()  # newest first
        self.subscribers: set[Subscriber] = set()
        self._dirty: set[str] = set()
        self._flush: asyncio.TimerHandle | None = None

    def load(self, rows: list[Message]) -> None:
        """The newest runs, newest first (at start-up)."""
        self.rows = OrderedDict((r["id"], r) for r in rows[:KEPT])

    def update(self, row: Message, new: bool = False) -> None:
        """A run's state now; a `new` run goes first (the others keep their places)."""
        rid = row["id"]
        if new:
            self.rows[rid] = row
            self.rows.move_to_end(rid, last=False)
            while len(self.rows) > KEPT:
                self.rows.popitem()
        elif rid in self.rows:
            self.rows[rid] = row
        self._dirty.add(rid)
        if self._flush is None:
            self._flush = asyncio.get_running_loop().call_later(FLUSH_SECONDS, self.flush)

    def remove(self, rid: str) -> None:
        self.rows.pop(rid, None)
        self._dirty.discard(rid)
        self._send({"type": "run_deleted", "id": rid})

    def flush(self) -> None:
        self._flush = None
        rows = [self.rows[r] for r in self._dirty if r in self.rows]
        self._dirty.clear()
        if rows:
            self._send({"type": "runs_changed", "runs": rows})

    def _send(self, msg: Message) -> None:
        text = encode(msg)
        for sub in list(self.subscribers):
            sub.put(text)

    def snapshot(self, reason: str) -> str:
        return encode({"type": "runs", "reason": reason, "runs": list(self.rows.values())})

    def close(self) -> None:
        if self._flush is not None:
            with contextlib.suppress(Exception):
                self._flush.cancel()
            self._flush = None


def summary(public: dict[str, Any], loss: float | None) -> Message:
    """A run in a few fields: what a list or an overlay needs to stay live."""
    e = public["last_eval"]
    return {
        "id": public["id"],
        "name": public["name"],
        "status": public["status"],
        "detail": public["detail"],
        "cause": public["cause"],  # why the status is what it is (the page's text comes from it)
        "checkpoint_held": public["checkpoint_held"],  # its latest checkpoint is not written yet
        "step": public["step"],
        "loss": loss,  # the mean minibatch loss of its last ~0.1 s of steps
        "eval": None if e is None else [e["step"], e["train_loss"], e["dev_loss"]],
        "best_dev_loss": public["best_dev_loss"],
        "lr": public["hparams"]["lr"],
        "batch_size": public["hparams"]["batch_size"],
        "max_steps": public["hparams"]["max_steps"],
        "worker": public["worker"],
        "queue_position": public["queue_position"],
        "created_at": public["created_at"],
        "parent": public["parent"],
        "sweep": public["sweep"],
        "train_seconds": public["train_seconds"],
    }
