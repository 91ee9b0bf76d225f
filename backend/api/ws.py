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

from backend.api.deps import RegistryDep, SettingsDep, batch_size_problem
from backend.api.schemas import ClientMessage, HParamsFields, PauseMessage, ResumeMessage, SetMessage
from backend.config import Settings
from backend.edge import origins
from backend.runs.registry import RunNotFoundError, RunRegistry
from backend.streaming.channel import Subscriber, ViewerEndedError
from backend.streaming.messages import error
from backend.training.protocol import ConflictError, Status, Update

log = logging.getLogger(__name__)
router = APIRouter()

MAX_MESSAGE_BYTES = 4096
POLICY_VIOLATION = 1008
MESSAGE_TOO_BIG = 1009
NOT_FOUND = 4404  # application close code: no such run
COMMANDS_QUEUED = 64  # a connection's commands waiting to be applied


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


def command_for(text: str, train_examples: int) -> Update:
    """Parse one client message; raise ValueError with the reason."""
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
            if (problem := batch_size_problem(msg.batch_size, train_examples)) is not None:
                raise ValueError(problem)
            update = msg.update()
            if not update.changes_hparams():
                raise ValueError(f"set: nothing to change; give any of {', '.join(HParamsFields.model_fields)}")
            return update
        case PauseMessage():
            return Update(status=Status.PAUSED)
        case ResumeMessage():
            return Update(status=Status.RUNNING)


async def _send_loop(ws: WebSocket, sub: Subscriber) -> None:
    while True:
        try:
            batch = await sub.next_batch()
        except ViewerEndedError as e:
            await ws.close(code=e.code, reason=e.reason)
            return
        for text in batch:
            await ws.send_text(text)


@router.websocket("/ws/runs/{run_id}")
async def run_socket(ws: WebSocket, run_id: str, registry: RegistryDep, settings: SettingsDep) -> None:
    """`current` follows the run a user last created, branched or resumed by hand (never a sweep's
    run): when that changes, a snapshot of the new one follows."""
    if not origin_allowed(ws, settings):
        await ws.close(code=POLICY_VIOLATION, reason="origin not allowed")
        return
    try:
        sub = await registry.subscribe(run_id)
    except RunNotFoundError:
        await ws.close(code=NOT_FOUND, reason=f"no run with id {run_id!r}")
        return
    await ws.accept()
    sender = asyncio.create_task(_send_loop(ws, sub))
    commands: asyncio.Queue[tuple[str, Update]] = asyncio.Queue(COMMANDS_QUEUED)
    steerer = asyncio.create_task(_steer_loop(registry, commands, sub))
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
            run = sub.channel.run_id
            ds = registry.datasets.record((await registry.record(run)).spec.dataset)
            try:
                update = command_for(text, ds.train_examples if ds is not None else 0)
                commands.put_nowait((run, update))
            except ValueError as e:
                sub.reply(error(str(e)))
            except asyncio.QueueFull:
                sub.reply(error(f"too many commands waiting ({COMMANDS_QUEUED}); this one was dropped"))
    except WebSocketDisconnect:
        pass
    finally:
        for task in (sender, steerer):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        registry.unsubscribe(sub)


@router.websocket("/ws/runs")
async def runs_socket(ws: WebSocket, registry: RegistryDep, settings: SettingsDep) -> None:
    """The overview of runs: a snapshot of the newest, then the runs whose state changed (at most
    twice a second in all). Nothing to send to it."""
    if not origin_allowed(ws, settings):
        await ws.close(code=POLICY_VIOLATION, reason="origin not allowed")
        return
    await ws.accept()
    sub = Subscriber(registry.overview, follow_current=False)
    sender = asyncio.create_task(_send_loop(ws, sub))
    try:
        while (await ws.receive())["type"] != "websocket.disconnect":
            sub.reply(error("this socket only sends; steer a run on /ws/runs/{id}"))
    except WebSocketDisconnect:
        pass
    finally:
        sender.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await sender
        sub.close()


async def _steer_loop(registry: RunRegistry, commands: asyncio.Queue[tuple[str, Update]], sub: Subscriber) -> None:
    """A connection's commands, applied one after the other in the order they came."""
    while True:
        run, update = await commands.get()
        await _steer(registry, run, update, sub)


async def _steer(registry: RunRegistry, run_id: str, update: Update, sub: Subscriber) -> None:
    """Apply a client's command; a refusal goes back to that client alone."""
    try:
        await registry.update(run_id, update)
    except (ConflictError, RunNotFoundError) as e:
        sub.reply(error(str(e)))
    except Exception as e:
        log.exception("a websocket command failed")
        sub.reply(error(f"the command failed: {e}"))
