"""Limits that hold under abuse, at the edge: request bodies, websockets per client address,
client messages per websocket, and the names being sampled at once. Each is a setting (config.py)
and each refusal says which limit it met."""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections import Counter
from collections.abc import Callable

from pydantic import TypeAdapter, ValidationError
from starlette.datastructures import QueryParams
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from backend.edge.refuse import refuse

TRY_AGAIN_LATER = 1013  # websocket close code: the server is at a limit, try again later


class BodyLimit:
    """413 for a request body over `max_bytes`: at once when Content-Length says so, else as soon
    as that many bytes came in (a chunked body). The application never sees more."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    def _detail(self) -> str:
        return f"the request body is over the {self.max_bytes:,} bytes allowed (MAKEMORE_MAX_BODY_BYTES)"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = dict(scope["headers"]).get(b"content-length")
        if length is not None and length.isdigit() and int(length) > self.max_bytes:
            await refuse(scope, send, 413, self._detail(), [(b"connection", b"close")])
            return
        received, refused, started = 0, False, False

        async def counted() -> Message:
            nonlocal received, refused
            if refused:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    refused = True
                    if not started:
                        await refuse(scope, send, 413, self._detail(), [(b"connection", b"close")])
                    return {"type": "http.disconnect"}  # the application stops reading
            return message

        async def sent(message: Message) -> None:
            nonlocal started
            if refused and not started:
                return  # the client has its 413; whatever the application says after it is dropped
            started = True
            await send(message)

        try:
            await self.app(scope, counted, sent)
        except Exception:
            if not refused:
                raise
            # the application may raise on the disconnect we gave it; the client has its answer


class TokenBucket:
    """At most `rate` events a second on average, bursts of up to `rate` (at least 1)."""

    def __init__(self, rate: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.rate = rate
        self.capacity = max(1.0, rate)
        self._clock = clock
        self._tokens = self.capacity
        self._at = clock()

    def _refill(self) -> None:
        now = self._clock()
        self._tokens = min(self.capacity, self._tokens + (now - self._at) * self.rate)
        self._at = now

    def take(self) -> bool:
        self._refill()
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return True
        return False

    def delay(self) -> float:
        """Seconds until `take` will succeed (0 if it would now)."""
        self._refill()
        return max(0.0, (1.0 - self._tokens) / self.rate)


READ_FACTOR = 5  # a websocket's messages read a second, at most: this many times those it may send


class WebSocketLimits:
    """At most `per_client` open websockets per client address (more are accepted and closed at
    once with 1013, "try again later", and the reason); at most `messages_per_s` client messages
    a second per connection: the excess is answered with an `error` message and dropped, the
    connection stays and the run never sees it.

    A flood is also slowed at its source: the server reads at most READ_FACTOR x `messages_per_s`
    messages a second from a connection and leaves the rest in the sockets, so the sender's
    writes block (the websocket protocol stops reading while its queue is unread). Answering every
    message of a client that sends as fast as it can took a core between the two of them, and
    half of a training run's steps on two cores."""

    def __init__(self, app: ASGIApp, per_client: int, messages_per_s: float) -> None:
        self.app = app
        self.per_client = per_client
        self.messages_per_s = messages_per_s
        self.open: Counter[str] = Counter()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "websocket":
            await self.app(scope, receive, send)
            return
        client = scope["client"][0] if scope.get("client") else "unknown"
        if self.open[client] >= self.per_client:
            await receive()  # websocket.connect
            await send({"type": "websocket.accept"})
            reason = f"too many connections from {client} (at most {self.per_client}: MAKEMORE_WS_PER_CLIENT)"
            await send({"type": "websocket.close", "code": TRY_AGAIN_LATER, "reason": reason[:120]})
            return
        self.open[client] += 1
        bucket, reads = TokenBucket(self.messages_per_s), TokenBucket(self.messages_per_s * READ_FACTOR)
        excess = json.dumps(
            {
                "type": "error",
                "detail": f"too many messages: at most {self.messages_per_s:g} a second "
                "(MAKEMORE_WS_MESSAGES_PER_S); this one was dropped",
            }
        )

        async def limited() -> Message:
            while True:
                if not reads.take():
                    await asyncio.sleep(reads.delay())  # the rate itself: unread frames wait in the sockets
                    reads.take()
                message = await receive()
                if message["type"] != "websocket.receive" or bucket.take():
                    return message
                await send({"type": "websocket.send", "text": excess})

        try:
            await self.app(scope, limited, send)
        finally:
            self.open[client] -= 1
            if self.open[client] <= 0:
                del self.open[client]


SAMPLE_PATH = re.compile(r"^/api/(?:runs/[^/]+/)?sample$")
DEFAULT_N = 20  # SampleQuery's default
_INT = TypeAdapter(int)  # the validation SampleQuery.n gets (lax: " 7", "1_000" and "7.0" are ints too)


class SampleBudget:
    """Drawing names is the heaviest read (n up to 1,000 per request, on a thread of its own):
    at most `budget` names are being drawn at once, over all requests (one request alone always
    goes through). A request that would go over waits up to `wait` seconds, first come first
    served, for the names in flight to be drawn; then, or when `max_waiting` requests wait
    already, it gets 503 with Retry-After. The wait is what holds a flood back: clients that asked
    again the moment their 503 came kept a core busy refusing them."""

    def __init__(self, app: ASGIApp, budget: int, wait: float = 1.0, max_waiting: int = 64) -> None:
        self.app = app
        self.budget = budget
        self.wait = wait
        self.max_waiting = max_waiting
        self.in_flight = 0
        self._queue: list[tuple[int, asyncio.Future[None]]] = []  # (cost, admitted), oldest first

    def _names(self, query_string: bytes) -> int:
        """The names the request will draw, read as the application reads them: Starlette's
        parser (percent-decoded keys and values, the last of repeated keys) and pydantic's int.
        Anything else could be outcounted: `?n=1&n=1000` or `?%6E=1000` drew 1,000 names while
        a pattern on the raw query counted 1 or 20."""
        value = QueryParams(query_string).get("n")
        if value is None:
            return DEFAULT_N
        try:
            return _INT.validate_python(value)
        except ValidationError:
            return self.budget  # the application answers 422; were it ever to differ, never count low

    def _fits(self, cost: int) -> bool:
        return not self.in_flight or self.in_flight + cost <= self.budget

    def _admit_waiting(self) -> None:
        while self._queue and self._fits(self._queue[0][0]):
            cost, admitted = self._queue.pop(0)
            self.in_flight += cost
            admitted.set_result(None)

    async def _admitted(self, cost: int) -> bool:
        """Whether the request may go; its names are then counted in flight."""
        if not self._queue and self._fits(cost):
            self.in_flight += cost
            return True
        if len(self._queue) >= self.max_waiting or self.wait <= 0:
            return False
        entry = (cost, asyncio.get_running_loop().create_future())
        self._queue.append(entry)
        try:
            async with asyncio.timeout(self.wait):
                await asyncio.shield(entry[1])
        except TimeoutError:
            return self._withdraw(entry)
        except asyncio.CancelledError:
            if self._withdraw(entry):
                self._release(cost)
            raise
        return True

    def _withdraw(self, entry: tuple[int, asyncio.Future[None]]) -> bool:
        """A waiting request's wait ended early: whether it had been admitted all the same."""
        if entry[1].done():
            return True
        self._queue.remove(entry)
        self._admit_waiting()  # it may have been the one too big for the names in flight
        return False

    def _release(self, cost: int) -> None:
        self.in_flight -= cost
        self._admit_waiting()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not SAMPLE_PATH.match(scope["path"]):
            await self.app(scope, receive, send)
            return
        cost = min(max(1, self._names(scope.get("query_string", b""))), self.budget)
        if not await self._admitted(cost):
            detail = (
                f"the server is drawing {self.in_flight:,} names for other requests "
                f"(at most {self.budget:,} at once: MAKEMORE_SAMPLE_BUDGET); try again in a moment"
            )
            await refuse(scope, send, 503, detail, [(b"retry-after", b"1")])
            return
        try:
            await self.app(scope, receive, send)
        finally:
            self._release(cost)
