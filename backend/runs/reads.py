"""Reads of a run's model (samples, the test split, the embedding map...): by its worker if it
has one, else from its latest checkpoint, a few of which stay loaded."""

from __future__ import annotations

import asyncio
import contextlib
from collections import OrderedDict
from typing import Any

from backend.runs.table import Table, alive
from backend.runtime.handle import WorkerGoneError
from backend.runtime.reads import Answer, Reader
from backend.runtime.wire import Read
from backend.store.records import RunRecord
from backend.training.checkpoint import decode

CACHED_MODELS = 4  # runs without a worker whose weights stay loaded for reads


class Reads:
    def __init__(self, table: Table) -> None:
        self.table = table
        # reads from checkpoints: run id -> (its record's step, model, reader, the step of the weights)
        self.models: OrderedDict[str, tuple[int, Any, Reader, int]] = OrderedDict()

    async def read(self, run_id: str, read: Read) -> Answer:
        """A read of the run's model: by its worker if it has one, else from its latest checkpoint."""
        live = self.table.runs.get(await self.table.resolve(run_id))
        if live is not None and alive(live.worker):
            assert live.worker is not None
            with contextlib.suppress(WorkerGoneError):
                answer: Answer = await live.worker.ask(read)
                return answer
        record = await self.table.record(run_id)
        model, reader, step = await self.stored_model(record)
        return await asyncio.to_thread(reader.answer, read, model, step)

    async def stored_model(self, record: RunRecord) -> tuple[Any, Reader, int]:
        """The run's latest weights from its checkpoint (or its initial ones when it has none yet),
        with a reader and the step of those weights (the checkpoint's, which an answer names: it
        is not the record's when that checkpoint was damaged); a few are kept loaded."""
        cached = self.models.get(record.id)
        if cached is not None and cached[0] == record.step:
            self.models.move_to_end(record.id)
            return cached[1], cached[2], cached[3]
        dataset = await self.table.datasets.dataset(record.spec.dataset)
        live = self.table.runs.get(record.id)
        found = live.checkpoint if live is not None and live.checkpoint is not None else None
        if found is None:
            found = await asyncio.to_thread(self.table.store.load_checkpoint, record.id)
        if found is not None:
            model = (await asyncio.to_thread(decode, found[1])).state.model
        else:
            model = await asyncio.to_thread(record.spec.init_model, dataset.vocab.size)
        reader = cached[2] if cached is not None else Reader(record.spec, dataset)
        step = found[0] if found is not None else 0
        self.models[record.id] = (record.step, model, reader, step)
        while len(self.models) > CACHED_MODELS:
            self.models.popitem(last=False)
        return model, reader, step

    async def set_test(self, run_id: str, test: dict[str, Any]) -> None:
        live = self.table.runs.get(await self.table.resolve(run_id))
        record = live.record if live is not None else await self.table.record(run_id)
        record.test = test
        self.table.store.put_run(record)
