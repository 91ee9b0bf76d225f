"""Answering a request the edge refuses: JSON `{"detail": ...}`, for HTTP and websockets alike."""

from __future__ import annotations

import json
from collections.abc import Sequence

from starlette.types import Scope, Send

POLICY_VIOLATION = 1008  # websocket close code when the server cannot answer with an HTTP status


def json_body(detail: str) -> bytes:
    return json.dumps({"detail": detail}).encode()


async def refuse(
    scope: Scope, send: Send, status: int, detail: str, headers: Sequence[tuple[bytes, bytes]] = ()
) -> None:
    """An HTTP answer `status` with the detail. A websocket is refused before it is accepted: with
    that HTTP answer where the server can send one (uvicorn can: the ASGI "websocket.http.response"
    extension), else closed with 1008 (the client then sees HTTP 403)."""
    body = json_body(detail)
    head = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()), *headers]
    if scope["type"] == "http":
        await send({"type": "http.response.start", "status": status, "headers": head})
        await send({"type": "http.response.body", "body": body})
    elif "websocket.http.response" in (scope.get("extensions") or {}):
        await send({"type": "websocket.http.response.start", "status": status, "headers": head})
        await send({"type": "websocket.http.response.body", "body": body})
    else:
        await send({"type": "websocket.close", "code": POLICY_VIOLATION, "reason": detail[:120]})
