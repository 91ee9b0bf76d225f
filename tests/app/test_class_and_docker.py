"""A class joins, Docker as a user meets it: the addresses the server logs (one per interface
address, the token with each; the container's port named in the image), the token kept in the home
across restarts (0600), rotated by a command, a given one winning; health checks out of the access
log; a home the container's user cannot write in named with its fix."""

from __future__ import annotations

import errno
import ipaddress
import logging
import os
import re
import socket
import stat
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from backend.config import Settings
from backend.edge import addresses
from backend.edge import token as tokens
from backend.edge.redact import DropHealthChecks
from backend.store import preflight
from harness.server import ROOT, running_server
from tests.conftest import wait_for

TOKEN = "given-token-for-tests"
LINE = re.compile(r"open (http://\S+)")


def up_addresses(family: int) -> list[str]:
    """This machine's addresses, found by psutil rather than by the server's own code."""
    stats = psutil.net_if_stats()
    found = [
        a.address.split("%")[0]
        for name, addrs in psutil.net_if_addrs().items()
        if name in stats and stats[name].isup
        for a in addrs
        if a.family == family
    ]
    return [a for a in dict.fromkeys(found) if not ipaddress.ip_address(a).is_link_local]


def loopback_first(found: list[str]) -> list[str]:
    return sorted(found, key=lambda a: not ipaddress.ip_address(a).is_loopback)


def bracketed(address: str) -> str:
    return f"[{address}]" if ":" in address else address


@pytest.fixture
def bound(request: pytest.FixtureRequest) -> Iterator[socket.socket]:
    host = request.param
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
    try:
        sock.bind((host, 0))
    except OSError:
        sock.close()
        pytest.skip(f"cannot bind {host} here")
    yield sock
    sock.close()


@pytest.fixture(autouse=True)
def not_in_a_container(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MAKEMORE_IN_CONTAINER", raising=False)


# ---- the addresses to open ----------------------------------------------------------------------
@pytest.mark.parametrize("bound", ["0.0.0.0"], indirect=True)
def test_every_ipv4_address_with_the_token_loopback_first(bound: socket.socket) -> None:
    port = bound.getsockname()[1]
    lines = addresses.open_lines(Settings(host="0.0.0.0"), bound, "T0KEN-made-here")
    expected = [f"http://{a}:{port}/?token=T0KEN-made-here" for a in loopback_first(up_addresses(socket.AF_INET))]
    assert lines == [f"open {u}" for u in expected]
    assert expected[0].startswith("http://127.0.0.1:")


@pytest.mark.parametrize("bound", ["::"], indirect=True)
def test_ipv6_any_lists_both_families_in_brackets(bound: socket.socket) -> None:
    port = bound.getsockname()[1]
    lines = addresses.open_lines(Settings(host="::"), bound, "T0KEN-made-here")
    dual = not bound.getsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY)
    found = up_addresses(socket.AF_INET6) + (up_addresses(socket.AF_INET) if dual else [])
    assert sorted(lines) == sorted(f"open http://{bracketed(a)}:{port}/?token=T0KEN-made-here" for a in found)
    loopbacks = [ipaddress.ip_address(a).is_loopback for a in found]
    assert [("127.0.0.1" in line or "[::1]" in line) for line in lines] == sorted(loopbacks, reverse=True)


@pytest.mark.parametrize("bound", ["127.0.0.1"], indirect=True)
def test_one_address_bound_names_that_one_only(bound: socket.socket) -> None:
    port = bound.getsockname()[1]
    assert addresses.open_lines(Settings(host="127.0.0.1"), bound, None) == [f"open http://127.0.0.1:{port}/"]


@pytest.mark.parametrize("bound", ["0.0.0.0"], indirect=True)
def test_a_given_token_stays_out_of_the_log(bound: socket.socket) -> None:
    lines = addresses.open_lines(Settings(host="0.0.0.0", token=TOKEN), bound, TOKEN)
    assert not any(TOKEN in line for line in lines)
    assert len(lines) == len(up_addresses(socket.AF_INET)) + 1 and "MAKEMORE_TOKEN" in lines[-1]


@pytest.mark.parametrize("bound", ["0.0.0.0"], indirect=True)
def test_without_a_token_only_the_names_the_host_check_answers(bound: socket.socket) -> None:
    port = bound.getsockname()[1]
    others = [a for a in up_addresses(socket.AF_INET) if not a.startswith("127.")]
    if not others:
        pytest.skip("no address but loopback here")
    assert addresses.open_lines(Settings(host="0.0.0.0", auth="none"), bound, None) == [
        f"open http://127.0.0.1:{port}/"
    ]
    allowed = Settings(host="0.0.0.0", auth="none", allowed_hosts=others[0])
    assert f"open http://{others[0]}:{port}/" in addresses.open_lines(allowed, bound, None)


@pytest.mark.parametrize("bound", ["0.0.0.0"], indirect=True)
def test_in_the_container_the_line_says_which_port_it_means(
    bound: socket.socket, monkeypatch: pytest.MonkeyPatch
) -> None:
    port = bound.getsockname()[1]
    monkeypatch.setenv("MAKEMORE_IN_CONTAINER", "1")
    (line,) = addresses.open_lines(Settings(host="0.0.0.0"), bound, "T0KEN-made-here")
    assert line == (
        f"open http://127.0.0.1:{port}/?token=T0KEN-made-here "
        f"(the container's port {port}: open the host port that `docker run -p HOST:{port}` maps)"
    )


# ---- the token kept in the home -----------------------------------------------------------------
def test_a_given_token_wins_and_is_not_written(tmp_path: Path) -> None:
    assert tokens.token_in_force(Settings(host="0.0.0.0", token=TOKEN, home=tmp_path)) == TOKEN
    assert not (tmp_path / "token").exists()
    kept = tokens.token_in_force(Settings(host="0.0.0.0", home=tmp_path))
    assert tokens.token_in_force(Settings(host="0.0.0.0", token=TOKEN, home=tmp_path)) == TOKEN
    assert (tmp_path / "token").read_text().strip() == kept  # untouched


def test_no_token_file_on_loopback(tmp_path: Path) -> None:
    assert tokens.token_in_force(Settings(host="127.0.0.1", home=tmp_path)) is None
    assert not (tmp_path / "token").exists()


def test_the_file_is_private_and_a_readable_one_is_made_so(tmp_path: Path) -> None:
    token = tokens.stored_token(tmp_path)
    assert stat.S_IMODE((tmp_path / "token").stat().st_mode) == 0o600
    (tmp_path / "token").chmod(0o644)
    assert tokens.stored_token(tmp_path) == token
    assert stat.S_IMODE((tmp_path / "token").stat().st_mode) == 0o600
    assert sorted(p.name for p in tmp_path.iterdir()) == ["token"]  # no temporary file left


def test_a_damaged_token_file_stops_the_start_with_one_line(tmp_path: Path) -> None:
    (tmp_path / "token").write_text("short\n")
    result = subprocess.run(
        [sys.executable, "-m", "backend", "--host", "0.0.0.0", "--port", "0", "--home", str(tmp_path)],
        cwd=ROOT,
        env={k: v for k, v in os.environ.items() if not k.startswith("MAKEMORE_")},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    (line,) = result.stderr.strip().splitlines()  # one line, no traceback
    assert f"the token file {tmp_path / 'token'} holds no token" in line and "--rotate-token" in line


def rotate(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MAKEMORE_")}
    return subprocess.run(
        [sys.executable, "-m", "backend", "--rotate-token", "--home", str(home), *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_rotate_token_replaces_the_kept_one(tmp_path: Path) -> None:
    old = tokens.stored_token(tmp_path)
    result = rotate(tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().startswith(f"a new token is in {tmp_path / 'token'}; restart the server")
    new = (tmp_path / "token").read_text().strip()
    assert new != old and len(new) >= 40 and new not in result.stdout + result.stderr
    assert stat.S_IMODE((tmp_path / "token").stat().st_mode) == 0o600
    assert tokens.token_in_force(Settings(host="0.0.0.0", home=tmp_path)) == new  # the next start's


def test_rotate_token_refused_when_a_token_is_given(tmp_path: Path) -> None:
    result = rotate(tmp_path, "--token", TOKEN)
    assert result.returncode == 2 and "a token is given" in result.stderr
    assert not (tmp_path / "token").exists()


# ---- the real server: restarts keep the token; health checks out of the access log --------------
def opened(log: Path) -> list[str]:
    return [m[1] for m in LINE.finditer(log.read_text()) if "?token=" in m[1]]


def logged(log: Path, needle: str) -> str | None:
    text = log.read_text()
    return text if needle in text else None


def status_of(url: str, token: str | None = None) -> int:
    headers = {"authorization": f"Bearer {token}"} if token else {}
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=30) as r:
            return int(r.status)
    except urllib.error.HTTPError as e:
        return e.code


def serve_once(home: Path, log: Path) -> str:
    """Start the server bound to every interface on `home`, check it, stop it: its token."""
    env = {**{k: "" for k in os.environ if k.startswith("MAKEMORE_")}, "MAKEMORE_HOME": str(home)}
    with running_server("--host", "0.0.0.0", env=env, log=log) as server:
        urls = opened(log)  # logged before the server answered
        token = urls[0].split("?token=")[1]
        assert {u.split("?token=")[1] for u in urls} == {token}
        assert (home / "token").read_text().strip() == token
        assert stat.S_IMODE((home / "token").stat().st_mode) == 0o600
        for _ in range(3):
            assert status_of(f"{server.url}/api/health") == 200
        assert status_of(f"{server.url}/api/runs/current", token) == 200
        assert status_of(f"{server.url}/api/runs/current") == 401
        text = wait_for(lambda: logged(log, '"GET /api/runs/current HTTP/1.1" 401'), what="the access lines")
        assert '"GET /api/runs/current HTTP/1.1" 200' in text
        assert '"GET /api/health' not in text  # polled by running_server and above, never logged
    return token


@pytest.mark.slow
def test_a_restart_keeps_the_token_and_health_checks_stay_out_of_the_log(tmp_path: Path) -> None:
    first = serve_once(tmp_path / "home", tmp_path / "first.log")
    second = serve_once(tmp_path / "home", tmp_path / "second.log")
    assert first == second  # the address handed out, and the browsers' cookies, still work


# ---- uvicorn's access lines ---------------------------------------------------------------------
def access_record(method: str, path: str, status: int) -> logging.LogRecord:
    args = ("10.0.0.7:51234", method, path, "1.1", status)
    return logging.LogRecord("uvicorn.access", logging.INFO, __file__, 1, '%s - "%s %s HTTP/%s" %d', args, None)


def test_only_answered_health_checks_are_dropped() -> None:
    keep = DropHealthChecks().filter
    assert not keep(access_record("GET", "/api/health", 200))
    assert keep(access_record("GET", "/api/health", 503))  # loading failed, or not yet
    assert keep(access_record("GET", "/api/health?token=x", 200))  # not a health check's request
    assert keep(access_record("POST", "/api/health", 405))
    assert keep(access_record("GET", "/api/runs", 200))


# ---- a home the container's user cannot write in -------------------------------------------------
def test_an_unwritable_home_names_the_uid_and_the_fix_in_the_container(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refused(*args: object, **kwargs: object) -> None:
        raise PermissionError(errno.EACCES, "Permission denied")

    monkeypatch.setattr(preflight.tempfile, "TemporaryFile", refused)
    with pytest.raises(preflight.StartError) as outside:
        preflight.check_writable(tmp_path)
    assert str(outside.value) == f"cannot write in the home {tmp_path}: Permission denied"
    monkeypatch.setenv("MAKEMORE_IN_CONTAINER", "1")
    with pytest.raises(preflight.StartError) as inside:
        preflight.check_writable(tmp_path)
    uid = os.getuid()
    assert str(inside.value) == (
        f"cannot write in the home {tmp_path}: Permission denied (the container runs as uid {uid}: on the host, "
        f"`chown -R {uid} DIR` for the directory mounted at {tmp_path}, or use a named volume: -v makemore:{tmp_path})"
    )
