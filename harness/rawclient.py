"""Clients that misbehave on purpose, for the edge's tests: raw sockets, on 127.0.0.1 only."""

from __future__ import annotations

import base64
import os
import select
import socket
import struct
import time


def connect(port: int, rcvbuf: int | None = None, sndbuf: int | None = None) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if rcvbuf is not None:  # set before connecting: the window is agreed at the handshake
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    if sndbuf is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, sndbuf)
    sock.settimeout(30)
    sock.connect(("127.0.0.1", port))
    return sock


def read_head(sock: socket.socket) -> bytes:
    """The status line and headers of an answer (no more than that)."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(1)
        if not chunk:
            break
        data += chunk
    return data


def handshake(
    port: int, path: str = "/ws/runs/current", host: str | None = None, **bufs: int
) -> tuple[socket.socket, bytes]:
    """A raw socket that asked for a websocket, and the head of the answer."""
    sock = connect(port, **bufs)
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall(
        f"GET {path} HTTP/1.1\r\nHost: {host or f'127.0.0.1:{port}'}\r\nUpgrade: websocket\r\n"
        f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n".encode()
    )
    return sock, read_head(sock)


def websocket(port: int, path: str = "/ws/runs/current", **bufs: int) -> socket.socket:
    """A raw socket past the websocket handshake (101), the server's frames left unread."""
    sock, head = handshake(port, path, **bufs)
    assert head.startswith(b"HTTP/1.1 101"), head
    first = sock.recv(1)  # the first frame's first byte: accepted for good, not closed at once
    assert first == b"\x81", f"the server sent {first!r} (0x88: closed), not its snapshot"
    return sock


def frame(opcode: int, payload: bytes) -> bytes:
    """One masked client frame (payload under 126 bytes)."""
    assert len(payload) < 126
    mask = os.urandom(4)
    masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    return struct.pack("!BB", 0x80 | opcode, 0x80 | len(payload)) + mask + masked


PING = 0x9


def send_until_blocked(
    sock: socket.socket,
    data: bytes,
    limit: int,
    stuck_for: float,
    until_answered: bool = False,
    seconds: float = 600.0,
) -> int:
    """Send `data` over and over until the peer stops reading (nothing more can be sent for
    `stuck_for` seconds), `limit` bytes or `seconds` have gone by, or (`until_answered`) the peer
    answers; return the bytes sent."""
    sock.setblocking(False)
    sent, deadline = 0, time.monotonic() + seconds
    try:
        while sent < limit and time.monotonic() < deadline:
            readable, writable, _ = select.select([sock] if until_answered else [], [sock], [], stuck_for)
            if readable or not writable:
                break
            at = sent % len(data)  # a partial send must not cut a frame in two
            try:
                sent += sock.send(data[at:])
            except BlockingIOError:
                continue
            except (ConnectionResetError, BrokenPipeError):
                break  # the peer dropped us
    finally:
        sock.setblocking(True)
    return sent
