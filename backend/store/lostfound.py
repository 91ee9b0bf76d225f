"""`<home>/lost+found/`: where the store puts what it will not use and must not destroy.

At start-up (and when a run is cut back to a checkpoint) the store finds checkpoint files it
cannot use: a file without a row (written just before a crash, or its row lost with the
database's WAL: then it may be the only copy of a run the database no longer lists), a file whose
checksum fails. None is deleted: each is moved here under its own relative path
(lost+found/checkpoints/<run>/<file>), atomically (a rename within the home, then the directories
fsynced). A row whose file is gone is dropped from the table and recorded here too. Every item is
one JSON line of `index.jsonl`: what it was, where it is now, why, and when.
"""

from __future__ import annotations

import json
import logging
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from backend.store import files

log = logging.getLogger(__name__)

DIR = "lost+found"
INDEX = "index.jsonl"
README = """\
Checkpoint files the makemore server did not use, kept instead of deleted: each was moved here
from the same path under the home directory (checkpoints/<run>/<step>.safetensors) at a start-up
or when a run was cut back to an earlier checkpoint. index.jsonl has one JSON line per item:
path (where it is now; null when its file was already gone), file (where it was), run_id, step,
bytes, reason and when (seconds since 1970). A file here can be read with
safetensors.torch.load_file; nothing here is read by the server, and deleting it is safe.
"""


@dataclass(frozen=True)
class LostItem:
    path: str | None  # where it is now, relative to the home; None: its file was gone already
    file: str  # where it was, relative to the home
    run_id: str
    step: int | None  # None: a file whose name is not a step's
    bytes: int | None
    reason: str  # its first word says what was wrong: damaged, missing, unreadable, no (checkpoint row)
    when: float

    @property
    def why(self) -> str:
        return self.reason.split(":", 1)[0]


# why a checkpoint could not be used (the first word is the `why` of a run's timeline entry)
REASONS = {
    "damaged": "damaged: its sha256 is not its row's (a damaged or half-written file)",
    "missing": "missing: its file was gone; its row is dropped",
    "unreadable": "unreadable: its sha256 holds, but it is not a checkpoint this server reads",
}
NO_ROW = "no checkpoint row"


def step_of(name: str) -> int | None:
    """The step a checkpoint file's name says (000000012600.safetensors), if any."""
    stem = name.split(".", 1)[0]
    return int(stem) if stem.isdigit() else None


class LostFound:
    """Called by the store's writer, inside the transaction that drops the rows: a transaction
    that fails is run again (writer.py), and finds the rows as they were but the files moved; what
    this process moved or recorded is answered as it was then, once."""

    def __init__(self, home: Path) -> None:
        self.home = home
        self.dir = home / DIR
        self._done: dict[str, LostItem] = {}  # by the file's old path
        self._indexed: set[LostItem] = set()

    def move(self, rel: str, run_id: str, step: int | None, reason: str) -> LostItem:
        """Move the file at `rel` (relative to the home) here, keeping its relative path, and
        record it. A file that is not there is recorded as gone (unless this process moved it)."""
        src = self.home / rel
        try:
            size = src.stat().st_size
        except FileNotFoundError:
            return self.record(rel, run_id, step, None, REASONS["missing"])
        dest_rel = self._free(f"{DIR}/{rel}")
        dest = self.home / dest_rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        os.replace(src, dest)
        files.fsync_dir(dest.parent)
        files.fsync_dir(src.parent)
        log.warning("moved %s to %s: %s", rel, dest_rel, reason)
        item = self._done[rel] = LostItem(dest_rel, rel, run_id, step, size, reason, time.time())
        return self._add(item)

    def record(self, rel: str, run_id: str, step: int | None, size: int | None, reason: str) -> LostItem:
        """A checkpoint whose file is gone: only its record is kept."""
        item = self._done.get(rel)
        if item is None:
            log.warning("%s is gone: %s", rel, reason)
            item = self._done[rel] = LostItem(None, rel, run_id, step, size, reason, time.time())
        return self._add(item)

    def items(self) -> list[LostItem]:
        """Everything recorded, oldest first (a line a crash cut short is skipped)."""
        try:
            text = (self.dir / INDEX).read_text(encoding="utf-8")
        except FileNotFoundError:
            return []
        out = []
        for line in text.splitlines():
            try:
                out.append(LostItem(**json.loads(line)))
            except (ValueError, TypeError):
                continue
        return out

    def _free(self, rel: str) -> str:
        """`rel`, or rel.1, rel.2, ... if an earlier item holds that name."""
        candidate, n = rel, 0
        while (self.home / candidate).exists():
            n += 1
            candidate = f"{rel}.{n}"
        return candidate

    def _add(self, item: LostItem) -> LostItem:
        if item in self._indexed:
            return item
        self.dir.mkdir(parents=True, exist_ok=True)
        readme = self.dir / "README"
        if not readme.exists():
            readme.write_text(README, encoding="utf-8")
        with open(self.dir / INDEX, "a", encoding="utf-8") as f:
            f.write(json.dumps(asdict(item)) + "\n")
            f.flush()
            os.fsync(f.fileno())
        self._indexed.add(item)
        return item


def why(e: ValueError) -> str:
    """What was wrong with a checkpoint that could not be used, in a word or two."""
    if isinstance(e, files.MissingCheckpointError):
        return "missing"
    return "damaged" if isinstance(e, files.CorruptCheckpointError) else "unreadable"


def restored(step: int, damaged: int, why: str, hparams: dict[str, Any]) -> dict[str, Any]:
    """The timeline's entry of a run cut back to its newest sound checkpoint. Every entry of the
    timeline says the hyperparameters in effect from its step on (the page and the overlays read
    them so): this one does too, those of the checkpoint it stands at, so it reads as a
    confirmation of them where only those are looked at."""
    return {"step": step, **hparams, "kind": "restored", "restored": step, "damaged": damaged, "why": why}


def cut_detail(detail: str | None, step: int, damage: tuple[int, str] | None, sound: bool) -> str:
    """A cut run's detail: the caller's (naming {step}), and what was lost on the way."""
    if damage is None:
        return (detail or "it stands at step {step:,}").format(step=step)
    bad, what = damage
    if detail is not None:
        return f"{detail.format(step=step)} (its checkpoint at step {bad:,} was {what})"
    where = "its newest sound one" if sound else "from its settings: no sound checkpoint was left"
    return f"its checkpoint at step {bad:,} was {what}; it stands at step {step:,}, {where}"
