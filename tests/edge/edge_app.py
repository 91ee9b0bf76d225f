"""A small ASGI application to put the edge's layers in front of, for their unit tests."""

from __future__ import annotations

import asyncio

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect


async def echo(request: Request) -> JSONResponse:
    body = await request.body()
    return JSONResponse({"method": request.method, "path": request.url.path, "bytes": len(body)})


async def socket(ws: WebSocket) -> None:
    """Answers every text message with {"echo": text}."""
    await ws.accept()
    try:
        while True:
            await ws.send_json({"echo": await ws.receive_text()})
    except WebSocketDisconnect:
        pass


class Gate:
    """Holds every request to /hold until `release` is set (to keep requests in flight)."""

    def __init__(self) -> None:
        self.release = asyncio.Event()
        self.waiting = 0

    async def hold(self, request: Request) -> JSONResponse:
        self.waiting += 1
        await self.release.wait()
        return JSONResponse({"held": True})


def edge_app(gate: Gate | None = None) -> Starlette:
    routes = [Route("/{path:path}", echo, methods=["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"])]
    if gate is not None:
        routes.insert(0, Route("/api/sample", gate.hold))
        routes.insert(0, Route("/api/runs/{run_id}/sample", gate.hold))
    return Starlette(routes=[WebSocketRoute("/ws", socket), *routes])
