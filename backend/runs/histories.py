"""Reads of runs' histories: their checkpoints, what a live run's channel holds, and everything
stored of several runs at once (the export, the compare view's points)."""

from __future__ import annotations

import asyncio
import math
from typing import cast

from backend.runs.stored import saved_buckets
from backend.runs.table import Table
from backend.store.records import CheckpointRecord, Eval, RunRecord
from backend.streaming.export import HistoryData


class Histories:
    def __init__(self, table: Table) -> None:
        self.table = table
        self.store = table.store

    async def checkpoints(self, run_id: str) -> list[CheckpointRecord]:
        await asyncio.to_thread(self.store.flush)
        return await asyncio.to_thread(self.store.checkpoints, run_id)

    def live_history(self, run_id: str) -> HistoryData | None:
        """What the channel of a run live here holds of its history (its buckets, evaluations and
        changes; no stored steps), or None: as it stands now, to be read before the next await."""
        live = self.table.runs.get(run_id)
        if live is None:
            return None
        ch = live.channel
        # its [step, train loss, dev loss, b_noise] lists, in place: the fields of an Eval, in order
        # (copying 4,000 of them into tuples at each open of the compare view held the loop ~10 ms)
        return HistoryData([], cast(list[Eval], ch.evals), ch.changes, ch.history)

    async def history_data(self, record: RunRecord) -> HistoryData:
        """Everything stored of a run's history, read at once (the export streams it)."""
        return (await self.histories([record], diagnostics=True))[0]

    async def histories(
        self, records: list[RunRecord], buckets: bool = False, diagnostics: bool = False
    ) -> list[HistoryData]:
        """history_data of several runs, read in one go (one thread hop, one flush); with
        `buckets`, those of runs past the steps stored one by one too (what overlays draw there;
        the history files hold the stored steps only); with `diagnostics`, their points' scalars."""
        cap = self.store.max_stored_steps if buckets else math.inf
        live = {  # the buckets of live runs past the stored steps, as they stand now (here, on the loop)
            r.id: x.channel.history.copy()
            for r in records
            if r.step > cap and (x := self.table.runs.get(r.id)) is not None
        }

        def read() -> list[HistoryData]:
            self.store.flush()
            out = []
            for r in records:
                h = self.store.history(r.id)
                past = live.get(r.id) or (saved_buckets(self.store, r) if r.step > cap else None)
                diag = self.store.diagnostics.scalars(r.id) if diagnostics else []
                out.append(HistoryData(list(self.store.steps(r.id)), h.evals, h.changes, past, diag))
            return out

        return await asyncio.to_thread(read)
