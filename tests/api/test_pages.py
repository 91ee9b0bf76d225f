"""backend/api/pages.py: the gzip middleware Boot and the application share."""

from __future__ import annotations

import json
from typing import Any

import anyio.to_thread
import pytest
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.testclient import TestClient

from backend.api.pages import GZIP_ON_LOOP_BYTES, gzipped


def _body(size: int) -> bytes:
    """JSON numbers, as the compare view's points are: `size` bytes or a little more."""
    numbers = [round(2.0 + (i * 7919 % 1000) / 997, 4) for i in range(size // 7 + 1)]
    return json.dumps(numbers).encode()


@pytest.mark.parametrize(("size", "hops"), [(700_000, 0), (GZIP_ON_LOOP_BYTES + 1, 1)])
def test_the_points_are_compressed_on_the_event_loop(monkeypatch: pytest.MonkeyPatch, size: int, hops: int) -> None:
    """The compare view's points (~700 KB) are compressed where they are answered: a worker
    thread (Starlette's choice from 128 KiB) cost the answer 0.1-0.4 s while two runs trained.
    Bigger bodies still go to a thread."""
    body = _body(size)
    threads: list[Any] = []
    run_sync = anyio.to_thread.run_sync

    async def counted(func: Any, *args: Any, **kwargs: Any) -> Any:
        threads.append(func)
        return await run_sync(func, *args, **kwargs)

    monkeypatch.setattr(anyio.to_thread, "run_sync", counted)

    async def answer(request: Request) -> Response:
        return Response(body, media_type="application/json")

    app = Starlette(routes=[Route("/points", answer)], middleware=[Middleware(gzipped)])
    with TestClient(app) as client:
        got = client.get("/points", headers={"Accept-Encoding": "gzip"})
    assert got.headers["content-encoding"] == "gzip"
    assert int(got.headers["content-length"]) < len(body) / 2
    assert got.content == body  # decompressed by the client
    assert len(threads) == hops
