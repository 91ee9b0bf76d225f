"""What every browser test stands on: a real server process per module (`python -m backend`
through harness/server.py, on the defaults whatever the shell's MAKEMORE_ variables say), Debian's
Chromium per module (harness/chromium.py), and browser contexts whose pages may load only from
127.0.0.1, watched for errors (`Watch`).

A module asks for other settings by defining a fixture of the same name:
`server_env` (variables on top of the defaults: `{"MAKEMORE_MAX_RUNNING": "2"}`), `server_args`
(flags after `python -m backend --port N`: `("--host", "0.0.0.0")`) and `context_options`
(Playwright's `new_context` options: a phone's viewport, `accept_downloads`)."""

from __future__ import annotations

import json
import os
import re
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from harness.chromium import CHROMIUM, CHROMIUM_ARGS, LOCAL_HOSTS
from harness.server import running_server

# every browser test module's `pytestmark`
MARKS = [
    pytest.mark.slow,
    pytest.mark.skipif(not CHROMIUM.exists(), reason=f"no Chromium at {CHROMIUM} (apt-get install chromium)"),
]
DESKTOP = {"viewport": {"width": 1440, "height": 900}, "device_scale_factor": 1}


# ---- the server ---------------------------------------------------------------------------------
@dataclass
class Server:
    base: str  # http://127.0.0.1:PORT
    log: Path

    def get(self, path: str) -> Any:
        with urllib.request.urlopen(self.base + path, timeout=10) as r:
            return json.load(r)

    def send(self, method: str, path: str, body: dict[str, Any]) -> Any:
        req = urllib.request.Request(
            self.base + path,
            data=json.dumps(body).encode(),
            method=method,
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(req, timeout=30) as r:
            return json.load(r)


def call(base: str, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
    """`method path` with a JSON body, if any; the answer's JSON (None for an empty answer)."""
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(base + path, data=data, method=method, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as r:
        text = r.read()
        return json.loads(text) if text else None


@pytest.fixture(scope="module")
def server_env() -> dict[str, str]:
    """Variables set on top of the defaults (a module overrides this fixture to change them)."""
    return {}


@pytest.fixture(scope="module")
def server_args() -> tuple[str, ...]:
    """Flags after `python -m backend --port N` (a module overrides this fixture to add some)."""
    return ()


@pytest.fixture(scope="module")
def server(
    tmp_path_factory: pytest.TempPathFactory, server_env: dict[str, str], server_args: tuple[str, ...]
) -> Iterator[Server]:
    """The module's server, its output in `log`."""
    log = tmp_path_factory.mktemp("server") / "server.log"
    env = {k: "" for k in os.environ if k.startswith("MAKEMORE_")}  # the defaults, whatever the shell says
    with running_server(*server_args, env={**env, **server_env}, log=log) as proc:
        yield Server(proc.url, log)


@pytest.fixture(scope="module")
def base(server: Server) -> str:
    """The module's server's address, http://127.0.0.1:PORT."""
    return server.base


# ---- the browser --------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Debian's Chromium, driven by Playwright (its own download does not work here), for a
    module's browser tests."""
    if not CHROMIUM.exists():
        pytest.skip(f"no Chromium at {CHROMIUM} (apt-get install chromium)")
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        try:
            yield b
        finally:
            b.close()


HTTP_ERROR = re.compile(r"^Failed to load resource: the server responded with a status of (\d+)")


@dataclass
class Watch:
    """What the pages of a context asked for and what went wrong in them. A 4xx answer that a
    test provokes on purpose (Chromium logs it as a console error) must be declared with
    `expect_http(status, path)`; any other is an error."""

    requests: list[str] = field(default_factory=list)
    blocked: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    http_errors: list[tuple[int, str]] = field(default_factory=list)
    expected_http: set[tuple[int, str]] = field(default_factory=set)

    def attach(self, page: Any) -> Any:
        page.on("request", lambda r: self.requests.append(r.url))
        page.on("pageerror", lambda e: self.errors.append(f"page error: {e}"))
        page.on("console", self._console)
        return page

    def _console(self, m: Any) -> None:
        if m.type != "error":
            return
        if match := HTTP_ERROR.match(m.text):
            self.http_errors.append((int(match[1]), urlsplit(m.location.get("url", "")).path))
        else:
            self.errors.append(f"console: {m.text}")

    def expect_http(self, status: int, path: str) -> None:
        """An error answer this test provokes: `status` from an address whose path contains `path`."""
        self.expected_http.add((status, path))

    def check(self) -> None:
        assert self.blocked == [], f"the page asked for non-local resources: {self.blocked}"
        assert self.errors == [], "\n".join(self.errors)
        unexpected = [
            (status, path)
            for status, path in self.http_errors
            if not any(status == s and p in path for s, p in self.expected_http)
        ]
        assert unexpected == [], f"unexpected error answers: {unexpected}"
        plotly = [u for u in self.requests if urlsplit(u).path == "/vendor/plotly.min.js"]
        assert plotly, f"plotly.js was not loaded from /vendor: {self.requests}"
        assert all(urlsplit(u).hostname in LOCAL_HOSTS for u in self.requests if u.startswith("http"))


def local_context(browser: Any, watch: Watch, **options: Any) -> Any:
    """A browser context whose pages may load only from 127.0.0.1 (the rest is blocked and noted)."""
    ctx = browser.new_context(**options)

    def route(r: Any) -> None:
        url = r.request.url
        if url.startswith(("data:", "blob:")) or urlsplit(url).hostname in LOCAL_HOSTS:
            r.continue_()
        else:
            watch.blocked.append(url)
            r.abort()

    ctx.route("**/*", route)
    return ctx


@pytest.fixture
def context_options() -> dict[str, Any]:
    """The `context` fixture's options (a module overrides this fixture to change them); downloads
    accepted (Playwright's default, said for the tests that save one)."""
    return {**DESKTOP, "accept_downloads": True}


@pytest.fixture
def context(browser: Any, context_options: dict[str, Any]) -> Iterator[tuple[Any, Watch]]:
    """A fresh local context and its Watch (a test calls `watch.check()` where it wants it)."""
    watch = Watch()
    ctx = local_context(browser, watch, **context_options)
    try:
        yield ctx, watch
    finally:
        ctx.close()


@pytest.fixture
def page(context: tuple[Any, Watch]) -> Iterator[Any]:
    """A page of a fresh context, watched: its Watch is checked once the test passed."""
    ctx, watch = context
    yield watch.attach(ctx.new_page())
    watch.check()
