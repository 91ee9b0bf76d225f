"""python -m backend [--host H] [--port P] [--data FILE] [--home DIR] [--token T] [--rotate-token]"""

from __future__ import annotations

import argparse
import logging
import socket
import sys
from pathlib import Path
from types import FrameType

import uvicorn
from pydantic import ValidationError
from starlette.types import ASGIApp

from backend.app.boot import Boot
from backend.config import Settings
from backend.core.words import DatasetError, read_words
from backend.edge.addresses import announce
from backend.edge.protocols import WebSocketProtocol, http_protocol
from backend.edge.redact import drop_health_checks, redact_tokens
from backend.edge.stack import guarded
from backend.edge.token import TokenFileError, rotate_token, token_in_force, token_path
from backend.store.preflight import StartError, prepare_home

SEND_BUFFER = 64 * 1024  # bytes of kernel send buffer per connection (Linux doubles it)


def listening_socket(host: str, port: int) -> socket.socket:
    """The server's socket, with a small send buffer that its connections inherit.

    By default the kernel lets megabytes pile up for a viewer that stopped reading: a minute of
    messages it would read, stale, when it came back. With a small buffer its sends block within
    a second or two; its queue then overflows and it gets a fresh snapshot instead (streaming/channel.py).
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SEND_BUFFER)
    sock.bind((host, port))
    sock.set_inheritable(True)
    return sock


def address(host: str, port: int) -> str:
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


class Server(uvicorn.Server):
    """uvicorn's server, telling Boot the moment a signal asks it to stop: uvicorn first gives
    open connections up to MAKEMORE_SHUTDOWN_TIMEOUT seconds and only then shuts the application
    down; the runs are paused meanwhile (a viewer that never reads no longer delays that)."""

    def __init__(self, config: uvicorn.Config, boot: Boot) -> None:
        super().__init__(config)
        self._boot = boot

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        super().handle_exit(sig, frame)
        self._boot.begin_shutdown()  # a signal handler runs on the loop's thread, between callbacks


def serve(server: uvicorn.Server, sock: socket.socket) -> int:
    """Run until a signal stops the server; 130 after Ctrl-C (as a shell reports a process that
    SIGINT ended), without the KeyboardInterrupt traceback. uvicorn shuts down gracefully on
    SIGINT, then raises the signal again for the default handler, which Python turns into a
    KeyboardInterrupt out of `run`: a clean stop that looked like a crash."""
    try:
        server.run(sockets=[sock])
    except KeyboardInterrupt:
        return 130
    return 0


def describe_settings_error(e: ValidationError) -> str:
    return "; ".join(f"MAKEMORE_{'.'.join(map(str, err['loc'])).upper()}: {err['msg']}" for err in e.errors())


def rotate_stored_token(settings: Settings) -> int:
    """--rotate-token: a new token in the home's file. Safe beside a running server (`docker exec`),
    which keeps its token until it restarts."""
    if settings.token is not None:
        sys.stderr.write(
            "makemore live: cannot rotate: a token is given (--token or MAKEMORE_TOKEN); it wins over the file\n"
        )
        return 2
    try:
        rotate_token(settings.home)
    except TokenFileError as e:
        sys.stderr.write(f"makemore live: cannot rotate: {e}\n")
        return 2
    path = token_path(settings.home)
    sys.stdout.write(f"a new token is in {path}; restart the server to use it (the old one works till then)\n")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m backend", description="makemore live: the server")
    parser.add_argument("--host", help="address to bind (env MAKEMORE_HOST, default 127.0.0.1)")
    parser.add_argument("--port", type=int, help="port (env MAKEMORE_PORT, default 8000)")
    parser.add_argument(
        "--data", type=Path, help="word list, one per line (env MAKEMORE_DATA, default: built-in names)"
    )
    parser.add_argument(
        "--home", type=Path, help="where runs are kept (env MAKEMORE_HOME, default ~/.local/share/makemore-live)"
    )
    parser.add_argument(
        "--token", help="the token requests need (env MAKEMORE_TOKEN; off loopback, else, one kept in the home)"
    )
    parser.add_argument(
        "--rotate-token",
        action="store_true",
        help="replace the token kept in the home with a new one, and exit; a running server uses it once restarted",
    )
    args = parser.parse_args(argv)
    rotate = args.__dict__.pop("rotate_token")
    overrides = {k: v for k, v in vars(args).items() if v is not None}
    try:
        settings = Settings(**overrides)
    except ValidationError as e:
        sys.stderr.write(f"makemore live: cannot start: {describe_settings_error(e)}\n")
        return 2
    if rotate:
        return rotate_stored_token(settings)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        words = read_words(settings.data)
    except DatasetError as e:
        sys.stderr.write(f"makemore live: cannot start: {e}\n")
        return 2

    try:
        # before the port and torch: a second server on this home stops here, at once
        home_lock = prepare_home(settings.home, address(settings.host, settings.port))
    except StartError as e:
        sys.stderr.write(f"makemore live: cannot start: {e}\n")
        return 2
    try:
        token = token_in_force(settings)
    except TokenFileError as e:
        sys.stderr.write(f"makemore live: cannot start: {e}\n")
        return 2

    def load() -> ASGIApp:
        """On Boot's worker thread: torch loads only now, while the server already answers."""
        from backend.app.main import create_app  # noqa: PLC0415
        from backend.core.data import Dataset  # noqa: PLC0415

        return create_app(settings, Dataset(settings.data.name, words))

    def give_up() -> None:
        """The application failed to start (Boot logged why): stop serving, exit non-zero."""
        server.should_exit = True

    boot = Boot(load, on_failure=give_up)
    config = uvicorn.Config(
        guarded(boot, settings, token),
        host=settings.host,
        port=settings.port,
        # slowloris, unread answers (edge/protocols.py); pongs with flow control, dead peers dropped
        http=http_protocol(settings.header_timeout, settings.body_timeout, settings.stall_timeout),
        ws=WebSocketProtocol,
        timeout_graceful_shutdown=settings.shutdown_timeout,  # SIGTERM never waits for ever
        ws_max_size=4096,  # our control messages are tiny; bigger frames are refused (1009)
        # No compression: it is per connection, so 100 viewers meant compressing every message
        # 100 times (a third of the event loop's time); the messages are small JSON anyway.
        ws_per_message_deflate=False,
        # A viewer that stops reading (a frozen tab) cannot answer pings; it keeps its connection
        # for up to two minutes (and gets a fresh snapshot if it reads again), then is dropped.
        ws_ping_interval=settings.ws_ping_interval,
        ws_ping_timeout=settings.ws_ping_timeout,
        log_level="info",
    )
    redact_tokens()  # after the Config, which configures uvicorn's loggers: no ?token= in their lines
    drop_health_checks()
    try:
        sock = listening_socket(settings.host, settings.port)
    except OSError as e:
        sys.stderr.write(f"makemore live: cannot listen on {settings.host}:{settings.port}: {e.strerror}\n")
        return 2
    home_lock.describe(address(settings.host, sock.getsockname()[1]))  # the port, if 0 chose one
    announce(settings, sock, token)
    server = Server(config, boot)
    code = serve(server, sock)
    if boot.error_id is not None:
        sys.stderr.write(f"makemore live: cannot start: the application failed (error {boot.error_id}, logged above)\n")
        return 1
    return code  # the home stays locked until the process has ended


if __name__ == "__main__":
    raise SystemExit(main())
