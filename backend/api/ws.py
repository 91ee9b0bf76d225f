"""The websocket: a snapshot, then every event of the run; the client may steer it.

Client -> server: {"type": "set", ...any of lr, batch_size, eval_every, max_steps},
{"type": "pause"}, {"type": "resume"}. A bad message gets {"type": "error", "detail": ...} and the
connection stays open; a message over 4 KiB closes it with 1009.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging

from fastapi import APIRouter, WebSocket
from pydantic import ValidationError
from starlette.websockets import WebSocketDisconnect

from backend.api.deps import RegistryDep, SettingsDep, batch_size_error
from backend.edge import origins
from backend.server.channel import Subscriber
from backend.server.config import Settings
from backend.server.messages import error
from backend.server.registry import Run
from backend.server.schemas import ClientMessage, HParamsFields, PauseMessage, ResumeMessage, SetMessage
from backend.training.trainer import ConflictError, Status, Update, check_update

log = logging.getLogger(__name__)
router = APIRouter()

MAX_MESSAGE_BYTES = 4096
POLICY_VIOLATION = 1008
MESSAGE_TOO_BIG = 1009
NOT_FOUND = 4404  # application close code: no such run


def origin_allowed(ws: WebSocket, settings: Settings) -> bool:
    """A page from another site must not drive this server (no CORS applies to websockets). The
    edge checks this too (backend/edge/access.py), with the same function."""
    return origins.origin_allowed(ws.headers.get("origin"), ws.headers.get("host"), settings.allowed_origins)


def describe_errors(e: ValidationError) -> str:
    parts = []
    for err in e.errors():
        loc = [str(x) for x in err["loc"][2:]] or [str(x) for x in err["loc"][1:]]  # drop ("msg", tag)
        parts.append(f"{'.'.join(loc) or 'message'}: {err['msg']}")
    return "; ".join(parts)


def command_for(text: str, run: Run) -> Update:
    """Parse and check one client message; raise ValueError with the reason."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        raise ValueError(f"not JSON: {e}") from None
    except RecursionError:  # "[" x 1000 fits in 4 KiB
        raise ValueError("not a message: nested too deeply") from None
    try:
        msg = ClientMessage.model_validate({"msg": data}).msg
    except ValidationError as e:
        raise ValueError(describe_errors(e)) from None
    match msg:
        case SetMessage():
            if (bad := batch_size_error(msg.batch_size, run, ())) is not None:
                raise ValueError(f"batch_size: {bad.errors()[0]['msg']}")
            update = msg.update()
            if not update.changes_hparams():
                raise ValueError(f"set: nothing to change; give any of {', '.join(HParamsFields.model_fields)}")
        case PauseMessage():
            update = Update(status=Status.PAUSED)
        case ResumeMessage():
            update = Update(status=Status.RUNNING)
    t = run.trainer
    check_update(t.status, t.step, t.max_steps, update)
    return update


async def _send_loop(ws: WebSocket, sub: Subscriber) -> None:
    while True:
        for text in await sub.next_batch():
            await ws.send_text(text)


@router.websocket("/ws/runs/{run_id}")
async def run_socket(ws: WebSocket, run_id: str, registry: RegistryDep, settings: SettingsDep) -> None:
    """`current` follows the newest run: when a new run is created, a snapshot of it follows."""
    if not origin_allowed(ws, settings):
        await ws.close(code=POLICY_VIOLATION, reason="origin not allowed")
        return
    run = await registry.find(run_id)
    if run is None:
        await ws.close(code=NOT_FOUND, reason=f"no run with id {run_id!r}")
        return
    await ws.accept()
    follow = run_id == "current"
    sub = registry.subscribe(run, follow_current=follow)
    sender = asyncio.create_task(_send_loop(ws, sub))
    try:
        while True:
            message = await ws.receive()
            if message["type"] == "websocket.disconnect":
                break
            text = message.get("text")
            if text is None:
                sub.reply(error("send JSON text messages, not binary"))
                continue
            if len(text.encode()) > MAX_MESSAGE_BYTES:
                sender.cancel()
                await ws.close(code=MESSAGE_TOO_BIG, reason=f"messages are limited to {MAX_MESSAGE_BYTES} bytes")
                break
            target = (registry.current() if follow else None) or run
            try:
                target.trainer.submit(command_for(text, target))
            except (ValueError, ConflictError) as e:
                sub.reply(error(str(e)))
    except WebSocketDisconnect:
        pass
    finally:
        sender.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await sender
        registry.unsubscribe(sub)
