"""The edge on the real server (`python -m backend`), every request to 127.0.0.1: the token off
loopback, rebinding and cross-site requests, and the floods and stalls each limit guards against."""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import signal
import socket
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil
import pytest
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import connect as ws_connect

from harness import rawclient
from harness.server import ServerProcess, running_server
from tests.conftest import wait_for

pytestmark = pytest.mark.slow


@dataclass
class Server:
    proc: ServerProcess
    log: Path

    @property
    def port(self) -> int:
        return int(self.proc.url.rsplit(":", 1)[1])

    def request(
        self, method: str, path: str, body: bytes | None = None, headers: dict[str, str] | None = None
    ) -> tuple[int, dict[str, str], bytes]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            conn.request(method, path, body=body, headers=headers or {})
            r = conn.getresponse()
            return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
        finally:
            conn.close()

    def ws(self, path: str = "/ws/runs/current", **kw: Any) -> Any:
        return ws_connect(f"ws://127.0.0.1:{self.port}{path}", proxy=None, open_timeout=30, **kw)

    def rss_mb(self) -> float:
        return float(psutil.Process(self.proc.pid).memory_info().rss) / 2**20

    def has_connection_from(self, local_port: int) -> bool:
        conns = psutil.Process(self.proc.pid).net_connections("tcp")
        return any(c.raddr and c.raddr.port == local_port for c in conns)


def clean_env(**extra: str) -> dict[str, str]:
    """The defaults whatever the shell says, then `extra`."""
    return {**{k: "" for k in os.environ if k.startswith("MAKEMORE_")}, **extra}


@contextmanager
def start(tmp_path_factory: pytest.TempPathFactory, name: str, *args: str, **env: str) -> Iterator[Server]:
    log = tmp_path_factory.mktemp(name) / "server.log"
    with running_server(*args, env=clean_env(**env), log=log) as proc:
        yield Server(proc, log)


# ---- bound to every interface: the token ---------------------------------------------------------
@pytest.fixture(scope="module")
def exposed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, str]]:
    with start(tmp_path_factory, "exposed", "--host", "0.0.0.0") as server:
        lines = wait_for(
            lambda: [line for line in server.log.read_text().splitlines() if "?token=" in line],
            what="the line with the token",
        )
        # one line per address of this machine's interfaces (IPv4: the socket is 0.0.0.0's), loopback first
        expected = [f"http://{a}:{server.port}/" for a in ipv4_addresses_up()]
        assert [line.split("open ", 1)[1].split("?token=")[0] for line in lines] == expected, lines
        tokens = {line.split("?token=")[1].strip() for line in lines}
        assert len(tokens) == 1, lines  # the same token in each
        yield server, tokens.pop()


def ipv4_addresses_up() -> list[str]:
    """What psutil (getifaddrs) finds, independently of the server's own enumeration."""
    stats = psutil.net_if_stats()
    found = [
        a.address
        for name, addrs in psutil.net_if_addrs().items()
        if name in stats and stats[name].isup
        for a in addrs
        if a.family == socket.AF_INET
    ]
    return sorted(dict.fromkeys(found), key=lambda a: not a.startswith("127."))


def test_exposed_needs_the_token(exposed: tuple[Server, str]) -> None:
    server, token = exposed
    assert server.request("GET", "/api/health")[0] == 200  # Docker's HEALTHCHECK
    status, headers, body = server.request("GET", "/api/runs/current")
    assert status == 401 and "token" in json.loads(body)["detail"] and headers["www-authenticate"] == "Bearer"
    assert server.request("POST", "/api/runs", b"{}", {"content-type": "application/json"})[0] == 401
    status, _, body = server.request("GET", "/api/runs/current", headers={"authorization": f"Bearer {token}"})
    assert status == 200 and json.loads(body)["status"] == "paused"
    status, headers, body = server.request("GET", "/")
    assert status == 401 and b'name="token"' in body  # the "enter the token" page


def test_exposed_cookie_after_the_token_address(exposed: tuple[Server, str]) -> None:
    server, token = exposed
    status, headers, _ = server.request("GET", f"/?token={token}")
    assert status == 303 and headers["location"] == "/"
    cookie = headers["set-cookie"].split(";")[0]
    assert cookie == f"makemore-token-{server.port}={token}"
    assert "HttpOnly" in headers["set-cookie"] and "SameSite=Strict" in headers["set-cookie"]
    status, _, page = server.request("GET", "/", headers={"cookie": cookie})
    assert status == 200 and b"/vendor/plotly.min.js" in page
    assert server.request("GET", "/api/runs/current", headers={"cookie": cookie})[0] == 200
    with server.ws(additional_headers={"cookie": cookie}) as ws:  # the page's websocket carries it
        assert json.loads(ws.recv(30))["type"] == "snapshot"


def test_exposed_websocket_needs_the_token(exposed: tuple[Server, str]) -> None:
    server, token = exposed
    for path in ["/ws/runs/current", "/ws/runs/current?token=not-the-token"]:
        with pytest.raises(InvalidStatus) as e:
            server.ws(path)
        assert e.value.response.status_code == 401  # refused before it is accepted
    with server.ws(f"/ws/runs/current?token={token}") as ws:
        assert json.loads(ws.recv(30))["type"] == "snapshot"


# ---- on loopback: no token, Host and Origin checks, limits -------------------------------------
@pytest.fixture(scope="module")
def local(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with start(
        tmp_path_factory,
        "local",
        MAKEMORE_HEADER_TIMEOUT="1",
        MAKEMORE_BODY_TIMEOUT="1",
        MAKEMORE_STALL_TIMEOUT="1",
        # long enough for a stalled viewer's buffers to fill (~35 KB/s of steps while training)
        MAKEMORE_WS_PING_INTERVAL="3",
        MAKEMORE_WS_PING_TIMEOUT="2",
        MAKEMORE_WS_PER_CLIENT="4",
        MAKEMORE_SAMPLE_BUDGET="1000",
    ) as server:
        yield server


def test_local_needs_no_token_but_refuses_a_rebinding_host(local: Server) -> None:
    assert local.request("GET", "/api/runs/current")[0] == 200
    status, _, body = local.request("GET", "/api/runs/current", headers={"host": "evil.example"})
    assert status == 400 and "evil.example" in json.loads(body)["detail"]
    sock, head = rawclient.handshake(local.port, host="evil.example:8000")
    sock.close()
    assert head.startswith(b"HTTP/1.1 400"), head


def test_local_refuses_cross_site_writes(local: Server) -> None:
    evil = {"origin": "http://evil.example", "content-type": "application/json"}
    status, _, body = local.request("POST", "/api/runs", b'{"start": false}', evil)
    assert status == 403 and "http://evil.example" in json.loads(body)["detail"]
    assert local.request("PATCH", "/api/runs/current", b'{"lr": 0.5}', evil)[0] == 403
    boundary = "x7MA4YWxkTrZu0gW"
    upload = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="w.txt"\r\n'
        f"Content-Type: text/plain\r\n\r\n" + "anna\nbob\ncarla\n" * 10 + f"\r\n--{boundary}--\r\n"
    ).encode()
    form = {"content-type": f"multipart/form-data; boundary={boundary}"}
    assert local.request("POST", "/api/datasets", upload, {**form, "origin": "http://evil.example"})[0] == 403
    assert len(json.loads(local.request("GET", "/api/datasets")[2])) == 1  # nothing was kept
    own = {**form, "origin": f"http://127.0.0.1:{local.port}"}
    assert local.request("POST", "/api/datasets", upload, own)[0] == 201  # the page's own upload
    assert json.loads(local.request("GET", "/api/runs/current")[2])["hparams"]["lr"] == 0.1
    with pytest.raises(InvalidStatus) as e:
        local.ws(origin="http://evil.example")
    assert e.value.response.status_code == 403  # at the handshake


def test_slowloris_heads_get_408_and_are_closed(local: Server) -> None:
    half = rawclient.connect(local.port)
    half.sendall(b"GET /api/runs HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")  # and nothing more
    silent = rawclient.connect(local.port)  # sends nothing at all
    for sock in (half, silent):
        with sock:
            head = rawclient.read_head(sock)  # within the 1 s deadline (the socket allows 30 s)
            assert head.startswith(b"HTTP/1.1 408"), head
            assert b"request head took more than 1 s" in sock.recv(1000)
            assert sock.recv(1000) == b""  # closed


def test_a_silent_body_is_dropped(local: Server) -> None:
    with rawclient.connect(local.port) as sock:
        sock.sendall(b"POST /api/runs HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 1000\r\n\r\n{")
        with contextlib.suppress(ConnectionResetError):  # aborted: either way the connection is gone
            assert sock.recv(1000) == b""


def test_an_answer_left_unread_is_abandoned(local: Server) -> None:
    """plotly.js is 3.5 MB: far more than the buffers hold for a client that reads nothing."""
    with rawclient.connect(local.port, rcvbuf=4096) as sock:
        sock.sendall(b"GET /vendor/plotly.min.js HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        assert rawclient.read_head(sock).startswith(b"HTTP/1.1 200")  # the answer has begun; read no more
        local_port = sock.getsockname()[1]
        wait_for(lambda: not local.has_connection_from(local_port), what="the unread answer to be abandoned")


def test_a_body_flood_gets_413_and_memory_stays(local: Server) -> None:
    status, _, body = local.request(
        "POST", "/api/datasets", b"", {"content-length": "60000000", "content-type": "text/plain"}
    )
    assert status == 413 and "MAKEMORE_MAX_BODY_BYTES" in json.loads(body)["detail"]
    rss0 = local.rss_mb()
    with rawclient.connect(local.port) as sock:  # chunked: no length to refuse it by
        sock.sendall(
            b"POST /api/runs HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\n"
            b"Content-Type: application/json\r\n\r\n"
        )
        chunk = b"%x\r\n" % 65536 + b"a" * 65536 + b"\r\n"
        sent = rawclient.send_until_blocked(sock, chunk, 100_000_000, stuck_for=3, until_answered=True)
        head = rawclient.read_head(sock)
    assert head.startswith(b"HTTP/1.1 413"), head
    assert sent < 50_000_000  # cut off near the 6 MB limit, not after the 100 MB sent
    assert local.rss_mb() - rss0 < 40


def test_deep_nesting_on_the_real_server(local: Server) -> None:
    with local.ws() as ws:
        ws.recv(30)
        ws.send("[" * 1000)
        while (msg := json.loads(ws.recv(30)))["type"] != "error":
            pass
        assert "nested too deeply" in msg["detail"]
    assert "Traceback" not in local.log.read_text()


def test_websockets_per_client_address(local: Server) -> None:
    with contextlib.ExitStack() as stack:
        opened = [stack.enter_context(local.ws()) for _ in range(4)]
        with local.ws() as extra, pytest.raises(ConnectionClosed) as e:
            while True:
                extra.recv(30)
        assert e.value.rcvd is not None and e.value.rcvd.code == 1013
        assert "at most 4" in e.value.rcvd.reason
        assert json.loads(opened[0].recv(30))["type"] == "snapshot"  # the others are untouched
    wait_for(lambda: local.request("GET", "/api/health")[0] == 200 and _viewers(local) == 0, what="all closed")


def _viewers(server: Server) -> int:
    """Open connections to the server other than listening ones (the health check's is closed)."""
    conns = psutil.Process(server.proc.pid).net_connections("tcp")
    return sum(1 for c in conns if c.status == psutil.CONN_ESTABLISHED)


def test_a_sample_flood_is_bounded(local: Server) -> None:
    """16 requests of 1,000 names at once, with a budget of 1,000 names: the rest get 503."""

    def sample() -> tuple[int, dict[str, str]]:
        status, headers, _ = local.request("GET", "/api/sample?n=1000&temperature=1")
        return status, headers

    with ThreadPoolExecutor(16) as pool:
        answers = list(pool.map(lambda _: sample(), range(16)))
    statuses = [s for s, _ in answers]
    assert set(statuses) <= {200, 503} and 200 in statuses, statuses
    assert all(h["retry-after"] == "1" for s, h in answers if s == 503)
    assert local.request("GET", "/api/health")[0] == 200


def test_a_ping_flood_is_stopped_by_flow_control(exposed: tuple[Server, str]) -> None:
    """Pings, never reading the pongs: the server stops reading from this client (its pings pile
    up in its own socket) instead of buffering pongs without bound. On the server with the
    default keepalive (a ping every 20 s, 100 s to answer), so that only flow control stops it."""
    server, token = exposed
    # measured once start-up's own growth is over (torch loaded, the default run's step-0
    # evaluation made in the server): run alone, this test measured that growth (~200 MB)
    auth = {"authorization": f"Bearer {token}"}
    wait_for(
        lambda: json.loads(server.request("GET", "/api/runs/current", headers=auth)[2]).get("last_eval"),
        timeout=60,
        what="the default run's step-0 evaluation",
    )
    rss0 = server.rss_mb()
    with rawclient.websocket(server.port, f"/ws/runs/current?token={token}", rcvbuf=16384, sndbuf=16384) as sock:
        ping = rawclient.frame(rawclient.PING, b"p" * 125)
        sent = rawclient.send_until_blocked(sock, ping * 500, 300_000_000, stuck_for=3)
        grew = server.rss_mb() - rss0
        assert sent < 20_000_000, f"the server read {sent / 1e6:.0f} MB of pings"
        assert grew < 30, f"RSS grew {grew:.0f} MB"


def test_a_viewer_that_never_reads_is_dropped(local: Server) -> None:
    """Training streams steps; this viewer reads none of them and cannot answer pings: dropped
    when the ping deadline passes (5 s here), though the server holds data it will never flush
    (the kernel's buffers, ~140 KB, are full by then): closing it would wait for ever."""
    auth = {"content-type": "application/json"}
    assert local.request("PATCH", "/api/runs/current", b'{"status": "running"}', auth)[0] == 200
    try:
        sock = rawclient.websocket(local.port, rcvbuf=4096)
        local_port = sock.getsockname()[1]
        with sock:
            wait_for(lambda: not local.has_connection_from(local_port), what="the stalled viewer to be dropped")
    finally:
        local.request("PATCH", "/api/runs/current", b'{"status": "paused"}', auth)


# ---- shutdown ----------------------------------------------------------------------------------
def test_sigterm_never_waits_for_ever(tmp_path_factory: pytest.TempPathFactory) -> None:
    """A half-sent body and a viewer that reads nothing used to keep SIGTERM waiting for ever."""
    with start(
        tmp_path_factory,
        "shutdown",
        MAKEMORE_BODY_TIMEOUT="600",  # only the shutdown deadline may end them
        MAKEMORE_WS_PING_TIMEOUT="600",
        MAKEMORE_SHUTDOWN_TIMEOUT="2",
    ) as server:
        half = rawclient.connect(server.port)
        half.sendall(b"POST /api/runs HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 1000\r\n\r\n{")
        json_ct = {"content-type": "application/json"}
        assert server.request("PATCH", "/api/runs/current", b'{"status": "running"}', json_ct)[0] == 200
        stalled = rawclient.websocket(server.port, rcvbuf=4096)
        proc = psutil.Process(server.proc.pid)
        wait_for(lambda: len(proc.net_connections("tcp")) >= 3, what="both connections open")
        t0 = time.monotonic()
        os.kill(server.proc.pid, signal.SIGTERM)
        proc.wait(60)  # psutil.TimeoutExpired if it hangs
        took = time.monotonic() - t0
        assert took < 30, f"shutdown took {took:.1f} s"
        for sock in (half, stalled):
            sock.close()
        assert "timeout graceful shutdown exceeded" in server.log.read_text()
