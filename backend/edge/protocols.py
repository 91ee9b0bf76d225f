"""uvicorn's HTTP and websocket protocols, with deadlines and flow control for hostile peers.

uvicorn bounds none of these on its own (0.54):
- a connection that sends half a request head, or stops in the middle of a body, holds its
  socket and task for ever, and a graceful shutdown waits for it (slowloris);
- a client that does not read an HTTP answer holds it for ever once the buffers are full;
- websockets-sansio (the implementation uvicorn picks when `websockets` is installed) answers
  every ping with a pong written without flow control: a client that sends pings and reads
  nothing grows the server's write buffer without limit (~30 MB/s measured), and one that reads
  its pongs takes as much of the CPU as it likes (pings.py);
- a websocket closed on a peer that reads nothing waits for ever to flush its write buffer.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, ClassVar, cast

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from websockets.frames import CloseCode, Frame, Opcode

from backend.edge.pings import PingBudget

log = logging.getLogger(__name__)


def _timeout_answer(detail: str) -> bytes:
    body = f'{{"detail": "{detail}"}}'.encode()
    head = (
        "HTTP/1.1 408 Request Timeout\r\ncontent-type: application/json\r\n"
        f"content-length: {len(body)}\r\nconnection: close\r\n\r\n"
    )
    return head.encode() + body


class HttpProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with three deadlines: a request's head must arrive within
    `header_timeout` seconds of its first byte (or of the connection); a body may not fall silent
    for `body_timeout` seconds; an answer the client does not read for `stall_timeout` seconds is
    abandoned."""

    header_timeout: ClassVar[float] = 10.0
    body_timeout: ClassVar[float] = 30.0
    stall_timeout: ClassVar[float] = 60.0

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._deadline: asyncio.TimerHandle | None = None
        self._reading_head = False
        self._stall: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._head_deadline()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel()
        self._cancel_stall()
        super().connection_lost(exc)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        if not self._reading_head:  # the deadline set at the connection's start runs on
            self._head_deadline()

    def on_headers_complete(self) -> None:
        super().on_headers_complete()
        self._reading_head = False
        self._arm(self.body_timeout, self._body_silent)  # a request without a body completes at once

    def on_body(self, body: bytes) -> None:
        super().on_body(body)
        self._arm(self.body_timeout, self._body_silent)

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self._cancel()

    def handle_websocket_upgrade(self) -> None:
        self._cancel()
        self._cancel_stall()
        super().handle_websocket_upgrade()

    def pause_writing(self) -> None:
        super().pause_writing()
        if self._stall is None:
            self._stall = self.loop.call_later(self.stall_timeout, self._stalled)

    def resume_writing(self) -> None:
        super().resume_writing()
        self._cancel_stall()

    # ---- deadlines ------------------------------------------------------------------------
    def _head_deadline(self) -> None:
        self._reading_head = True
        self._arm(self.header_timeout, self._head_late)

    def _arm(self, seconds: float, callback: Any) -> None:
        self._cancel()
        self._deadline = self.loop.call_later(seconds, callback)

    def _cancel(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _cancel_stall(self) -> None:
        if self._stall is not None:
            self._stall.cancel()
            self._stall = None

    def _head_late(self) -> None:
        self._deadline = None
        if self.transport.is_closing():
            return
        if self.cycle is not None and not self.cycle.response_complete:
            return  # a request is being answered (this one was pipelined behind it): its turn comes
        log.info("%s: no complete request head within %g s: closed", self._peer(), self.header_timeout)
        self.transport.write(_timeout_answer(f"the request head took more than {self.header_timeout:g} s"))
        self.transport.close()

    def _body_silent(self) -> None:
        self._deadline = None
        if self.transport.is_closing():
            return
        if self.flow.read_paused:  # we stopped reading (the application is busy): not the client's fault
            self._arm(self.body_timeout, self._body_silent)
            return
        log.info("%s: request body silent for %g s: closed", self._peer(), self.body_timeout)
        self.transport.abort()

    def _stalled(self) -> None:
        self._stall = None
        log.info("%s: read nothing of its answer for %g s: closed", self._peer(), self.stall_timeout)
        self.transport.abort()

    def _peer(self) -> str:
        return f"{self.client[0]}:{self.client[1]}" if self.client else "a client"


class PingFloodError(Exception):
    pass


class WebSocketProtocol(WebSocketsSansIOProtocol):
    """uvicorn's websockets-sansio protocol that stops reading from a peer while the peer is not
    reading what it is sent (so its pings pile up in its own socket, not in our memory), that
    answers a peer's pings at a bounded rate and closes a peer that floods them (1008), and that
    drops (aborts) a peer that fails the keepalive or does not finish a close, instead of waiting
    for ever to flush what it will never read."""

    ping_rate: ClassVar[float] = 10.0  # a client's pings (and pongs) answered a second
    ping_burst: ClassVar[float] = 20.0  # and at once
    ping_flood_seconds: ClassVar[float] = 5.0  # its allowance it may run behind, unanswered, before it is closed

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._writes_paused = False
        self._pings = PingBudget(self.ping_rate, self.ping_burst, self.ping_flood_seconds)
        self._abort_timer: asyncio.TimerHandle | None = None
        # websockets' parser hands every frame to conn.recv_frame, which queues a pong for each ping:
        # the pings past the budget must not get that far (set as websockets sets its own hooks)
        self._conn_recv_frame = self.conn.recv_frame
        setattr(self.conn, "recv_frame", self._recv_frame)  # noqa: B010

    def _recv_frame(self, frame: Frame) -> None:
        if frame.opcode is Opcode.PING or frame.opcode is Opcode.PONG:
            verdict = self._pings.take()
            if verdict == "drop":
                return  # no pong, no event
            if verdict == "flood":
                log.info("%s: pings past %g a second: closed", self._peer(), self.ping_rate)
                self.conn.fail(CloseCode.POLICY_VIOLATION, "policy violation: ping flood")
                # uvicorn's data_received then tells the application, sends the close frame and
                # closes (handle_parser_exception); websockets discards the rest of what was read
                self.conn.parser_exc = PingFloodError()
                return
        self._conn_recv_frame(frame)

    def handle_parser_exception(self) -> None:
        super().handle_parser_exception()
        # the close waits to flush what was written, for ever if the peer reads nothing
        if self._abort_timer is None:
            self._abort_timer = self.loop.call_later(self.close_timeout, self.transport.abort)

    def connection_lost(self, exc: Exception | None) -> None:
        if self._abort_timer is not None:
            self._abort_timer.cancel()
            self._abort_timer = None
        super().connection_lost(exc)

    def pause_writing(self) -> None:
        super().pause_writing()
        self._writes_paused = True
        self.transport.pause_reading()

    def resume_writing(self) -> None:
        super().resume_writing()
        self._writes_paused = False
        if not self.read_paused:
            self.transport.resume_reading()

    async def receive(self) -> Any:
        # as uvicorn's, but reading stays paused while writes are
        message = await self.queue.get()
        if self.read_paused and self.queue.empty():
            self.read_paused = False
            if not self._writes_paused:
                self.transport.resume_reading()
        return message

    def keepalive_timeout(self) -> None:
        super().keepalive_timeout()
        log.info("%s: no answer to a ping within %g s: dropped", self._peer(), self.ping_timeout or 0)
        self.transport.abort()

    async def send(self, message: Any) -> None:
        await super().send(message)
        if message["type"] == "websocket.close" and self.close_timer is not None:
            # uvicorn's timer closes the transport, which then waits to flush, for ever if the
            # peer reads nothing: abort instead
            self.close_timer.cancel()
            self.close_timer = self.loop.call_later(self.close_timeout, self.transport.abort)

    def _peer(self) -> str:
        return f"{self.client[0]}:{self.client[1]}" if self.client else "a client"


def http_protocol(header_timeout: float, body_timeout: float, stall_timeout: float) -> type[HttpProtocol]:
    """HttpProtocol with these deadlines, for uvicorn.Config(http=...)."""
    attrs = {"header_timeout": header_timeout, "body_timeout": body_timeout, "stall_timeout": stall_timeout}
    return cast(type[HttpProtocol], type("HttpProtocol", (HttpProtocol,), attrs))
