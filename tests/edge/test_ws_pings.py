"""A websocket client's pings answered at a bounded rate (backend/edge/pings.py): the budget on a
fake clock, then on the real server (`python -m backend`): a flooder is answered a few pongs and
closed with 1008; a client pinging well within the rate is answered every time and kept."""

from __future__ import annotations

import contextlib
import json
import select
import socket
import struct
import time
from collections.abc import Iterator

import pytest
from websockets.sync.client import connect as ws_connect

from backend.edge.pings import PingBudget
from backend.edge.protocols import WebSocketProtocol
from harness import rawclient
from harness.server import ServerProcess, running_server

RATE, BURST = WebSocketProtocol.ping_rate, WebSocketProtocol.ping_burst


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_the_budget_answers_a_burst_then_the_rate_then_calls_a_flood() -> None:
    clock = Clock()
    budget = PingBudget(rate=10, burst=20, flood_seconds=5, clock=clock)
    assert [budget.take() for _ in range(20)] == ["answer"] * 20
    assert budget.take() == "drop"
    clock.now += 1.0  # 10 more, less the one owed
    assert [budget.take() for _ in range(9)] == ["answer"] * 9
    assert budget.take() == "drop"
    # up to 5 s of the allowance owed (50 pings, the one above included), then flooding
    assert [budget.take() for _ in range(49)] == ["drop"] * 49
    assert budget.take() == "flood"


def test_the_budget_never_drops_a_client_within_the_rate() -> None:
    clock = Clock()
    budget = PingBudget(rate=10, burst=20, flood_seconds=5, clock=clock)
    for _ in range(1000):  # 9.5 a second, for 100 s
        clock.now += 1 / 9.5
        assert budget.take() == "answer"
    clock.now += 60.0  # then quiet: the whole burst again, no more
    assert [budget.take() for _ in range(21)] == ["answer"] * 20 + ["drop"]


# ---- on the real server --------------------------------------------------------------------------
@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    log = tmp_path_factory.mktemp("pings") / "server.log"
    with running_server(log=log) as proc:
        yield proc


def port_of(server: ServerProcess) -> int:
    return int(server.url.rsplit(":", 1)[1])


def read_frames(sock: socket.socket, buffer: bytearray) -> Iterator[tuple[int, bytes]]:
    """The server's complete (unmasked) frames in `buffer`, taken out of it."""
    while len(buffer) >= 2:
        opcode, length, at = buffer[0] & 0x0F, buffer[1] & 0x7F, 2
        if length == 126:
            if len(buffer) < 4:
                return
            length, at = struct.unpack("!H", buffer[2:4])[0], 4
        elif length == 127:
            if len(buffer) < 10:
                return
            length, at = struct.unpack("!Q", buffer[2:10])[0], 10
        if len(buffer) < at + length:
            return
        payload = bytes(buffer[at : at + length])
        del buffer[: at + length]
        yield opcode, payload


@pytest.mark.slow
@pytest.mark.timeout(60)
def test_a_ping_flood_gets_a_few_pongs_then_1008(server: ServerProcess) -> None:
    """Pings as fast as the socket takes them, reading all the while: at most the burst and the
    rate's worth of pongs, then the close (1008) instead of a pong for every ping."""
    sock, head = rawclient.handshake(port_of(server))
    assert head.startswith(b"HTTP/1.1 101"), head
    ping = rawclient.frame(rawclient.PING, b"p")
    pongs, closed, buffer, sent, pending = 0, None, bytearray(), 0, b""
    start = time.monotonic()
    sock.setblocking(False)
    with sock:
        while closed is None and time.monotonic() - start < 20:
            readable, writable, _ = select.select([sock], [sock], [], 1.0)
            if writable:
                pending = pending or ping * 100
                with contextlib.suppress(BlockingIOError, BrokenPipeError, ConnectionResetError):
                    n = sock.send(pending)  # the rest of a frame cut in two goes first
                    pending, sent = pending[n:], sent + n
            if readable:
                try:
                    data = sock.recv(65536)
                except ConnectionResetError:
                    data = b""
                if not data:
                    break
                buffer += data
                for opcode, payload in read_frames(sock, buffer):
                    if opcode == 0xA:
                        pongs += 1
                    elif opcode == 0x8:
                        closed = payload
        took = time.monotonic() - start
    assert closed is not None, f"not closed after {took:.1f} s ({sent // len(ping)} pings sent, {pongs} pongs)"
    code, reason = struct.unpack("!H", closed[:2])[0], closed[2:].decode()
    assert (code, reason) == (1008, "policy violation: ping flood")
    assert sent // len(ping) > BURST + RATE * 5  # it did flood: more than the budget lets through
    assert pongs <= BURST + RATE * took, (pongs, took)


@pytest.mark.slow
@pytest.mark.timeout(60)
def test_a_client_pinging_within_the_rate_is_answered_and_kept(server: ServerProcess) -> None:
    """A burst of pings at once, then the client library's own keepalive five times a second for
    three seconds (it closes the connection if a pong is late): every ping answered, the
    connection open and serving messages after it."""
    with ws_connect(
        f"ws://127.0.0.1:{port_of(server)}/ws/runs/current", proxy=None, ping_interval=0.2, ping_timeout=2
    ) as ws:
        assert json.loads(ws.recv(30))["type"] == "snapshot"
        answered = [ws.ping() for _ in range(int(BURST) - 2)]  # the keepalive may take a token or two
        assert all(pong.wait(10) for pong in answered)
        deadline = time.monotonic() + 3.0
        while time.monotonic() < deadline:  # keepalive pings go out meanwhile
            try:
                ws.recv(deadline - time.monotonic())
            except TimeoutError:
                break
        ws.send(json.dumps({"type": "set", "lr": 0.07}))
        for _ in range(100):
            msg = json.loads(ws.recv(10))
            if msg["type"] == "hparams":
                assert msg["lr"] == 0.07
                break
        else:
            raise AssertionError("no hparams answer")
        assert ws.ping().wait(10)
