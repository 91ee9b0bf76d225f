"""Reading a run's model: names it makes up, its next-character probabilities, its test loss, its
embedding map, its weights. Answered by the run's worker between two steps, or from the run's
latest checkpoint when it has none (a finished run from last week can still be sampled)."""

from __future__ import annotations

import asyncio
import secrets
from typing import Annotated

from fastapi import APIRouter, Query, Response

from backend.api.deps import RegistryDep, invalid
from backend.api.responses import NOT_FOUND
from backend.api.schemas import (
    EmbeddingsPublic,
    NextPublic,
    NextQuery,
    SamplePublic,
    SampleQuery,
    TestEvalPublic,
)
from backend.core.embeddings import embedding_map
from backend.runtime.handle import WorkerError
from backend.runtime.reads import NextAnswer, SampleAnswer, TestAnswer, WeightsAnswer
from backend.runtime.wire import NextRead, SampleRead, TestRead, WeightsRead
from backend.streaming import diagread

router = APIRouter(prefix="/api", tags=["reading the model"])


async def _sample(registry: RegistryDep, run_id: str, q: SampleQuery) -> SamplePublic:
    seed = q.seed if q.seed is not None else secrets.randbits(48)
    answer = await registry.read(run_id, SampleRead(q.n, q.temperature, seed))
    assert isinstance(answer, SampleAnswer)
    s = answer.samples
    return SamplePublic(names=s.names, new=s.new, split=s.split, new_share=s.new_share, seed=seed, step=answer.step)


@router.get("/runs/{run_id}/sample", responses=NOT_FOUND)
async def sample_run(registry: RegistryDep, run_id: str, q: Annotated[SampleQuery, Query()]) -> SamplePublic:
    """Names drawn from the run's weights as they are now, each with the split it is a word of
    (`split`), or marked new if it is not in the dataset at all. The same seed gives the same
    names from the same weights; `step` is theirs (a run without a worker: its checkpoint's)."""
    return await _sample(registry, run_id, q)


@router.get("/sample", responses=NOT_FOUND)
async def sample_current(registry: RegistryDep, q: Annotated[SampleQuery, Query()]) -> SamplePublic:
    """As /api/runs/current/sample."""
    return await _sample(registry, "current", q)


@router.get("/runs/{run_id}/next", responses=NOT_FOUND)
async def next_char(registry: RegistryDep, run_id: str, q: Annotated[NextQuery, Query()]) -> NextPublic:
    """The probability of each next character after `context` (its last block_size characters,
    padded with '.' as in training). Capitals are read in lower case when the dataset has none
    (`read_as`, `folded`); a character the dataset does not have is a 422 naming it."""
    record = await registry.record(run_id)
    try:
        answer = await registry.read(record.id, NextRead(q.context))
    except (WorkerError, ValueError) as e:
        if isinstance(e, WorkerError) and e.kind != "invalid":
            raise
        raise invalid(("query",), "context", str(e), q.context) from None
    assert isinstance(answer, NextAnswer)
    ds = await registry.datasets.dataset(record.spec.dataset)
    return NextPublic(
        context=q.context,
        read_as=answer.read_as,
        folded=answer.read_as != q.context,
        window=answer.window,
        chars=list(ds.vocab.chars),
        probs=answer.probs,
        step=answer.step,
    )


@router.post("/runs/{run_id}/evaluate-test", responses=NOT_FOUND)
async def evaluate_test(registry: RegistryDep, run_id: str) -> TestEvalPublic:
    """The exact loss on the test split, for the end of an experiment (the test split plays no
    part in training or in the evaluations). Kept with the run (`test` in RunPublic)."""
    answer = await registry.read(run_id, TestRead())
    assert isinstance(answer, TestAnswer)
    result = TestEvalPublic(
        step=answer.step, test_loss=answer.test_loss, test_examples=answer.test_examples, ms=round(answer.ms, 2)
    )
    await registry.set_test(run_id, result.model_dump())
    return result


@router.get("/runs/{run_id}/diagnostics", responses=NOT_FOUND, response_model_by_alias=True)
async def diagnostics(
    registry: RegistryDep,
    run_id: str,
    start: Annotated[int, Query(alias="from", ge=0, le=2**53)] = 0,
    stop: Annotated[int | None, Query(alias="to", ge=0, le=2**53)] = None,
) -> diagread.DiagnosticsPublic:
    """Inside the network: the run's diagnostic points from step `from` to `to` (inclusive) as
    columns of their scalars (at most 2,000, thinned evenly), the latest one with its histograms,
    and the gradient-direction passes of its evaluations. Also pushed over the websocket
    (`diag`, `gradcos`)."""
    record = await registry.record(run_id)
    return await asyncio.to_thread(diagread.read, registry.store, record.id, start, stop)


@router.get("/runs/{run_id}/embeddings", responses=NOT_FOUND)
async def embeddings(registry: RegistryDep, run_id: str) -> EmbeddingsPublic:
    """Each character's embedding in 2-D: raw when n_embd is 2, else the first two principal
    components. As of the last evaluation; also pushed over the websocket at each one."""
    live = await registry.live(run_id)
    m = live.channel.embeddings
    if m is not None:
        return EmbeddingsPublic.model_validate({k: v for k, v in m.items() if k != "type"})
    model, reader, step = await registry.stored_model(live.record)
    e = embedding_map(model.C)
    return EmbeddingsPublic(step=step, chars=list(reader.dataset.vocab.chars), x=e.x, y=e.y, method=e.method)


_SAFETENSORS = {
    "content": {"application/octet-stream": {}},
    "description": "a safetensors file",
    "headers": {"X-Step": {"description": "the step of these weights", "schema": {"type": "integer"}}},
}


@router.get("/runs/{run_id}/weights", responses=NOT_FOUND | {200: _SAFETENSORS})
async def weights(registry: RegistryDep, run_id: str) -> Response:
    """The model's parameters (C, W1, b1, W2, b2) as a safetensors file, with the run's settings,
    step and vocabulary in its metadata; `safetensors.torch.load_file` reads it. The step of
    these weights is in its name and in `X-Step` too: that of the checkpoint read, when the run
    has no worker (not the run's own step, if its checkpoint there was damaged)."""
    answer = await registry.read(run_id, WeightsRead())
    assert isinstance(answer, WeightsAnswer)
    record = await registry.record(run_id)
    name = f"makemore-{record.id}-step{answer.step}.safetensors"
    return Response(
        answer.data,
        media_type="application/octet-stream",
        headers={"Content-Disposition": f'attachment; filename="{name}"', "X-Step": str(answer.step)},
    )
