"""The edge in a real browser (Chromium through Playwright): /docs works offline under the
Content-Security-Policy, and a server off loopback is opened with its token, as a person would.
(The page itself runs under the policy in every test of tests/browser/test_browser.py, which fail on any
console error, a policy violation included.)"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import pytest

from harness.chromium import LOCAL_HOSTS
from tests.browser.conftest import MARKS, Server

pytestmark = MARKS

sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
expect = sync_api.expect

TOKEN = "browser-test-token-0123456789"


@pytest.fixture(scope="module")
def server_env() -> dict[str, str]:
    return {"MAKEMORE_TOKEN": TOKEN}


@pytest.fixture(scope="module")
def server_args() -> tuple[str, ...]:
    return ("--host", "0.0.0.0")  # bound to every interface (so the token is asked); the browser talks to 127.0.0.1


@pytest.fixture
def page(browser: Any) -> Iterator[tuple[Any, list[str]]]:
    """A fresh browser context (no cookie yet) and page, and what went wrong in it (console
    errors, page errors, requests that would leave this machine)."""
    problems: list[str] = []
    ctx = browser.new_context()

    def route(r: Any) -> None:
        url = r.request.url
        if url.startswith(("data:", "blob:")) or urlsplit(url).hostname in LOCAL_HOSTS:
            r.continue_()
        else:
            problems.append(f"non-local request: {url}")
            r.abort()

    ctx.route("**/*", route)
    pg = ctx.new_page()
    pg.on("pageerror", lambda e: problems.append(f"page error: {e}"))
    pg.on("console", lambda m: m.type == "error" and problems.append(f"console: {m.text}"))
    try:
        yield pg, problems
    finally:
        ctx.close()


def test_docs_work_offline_under_the_policy(server: Server, page: tuple[Any, list[str]]) -> None:
    pg, problems = page
    pg.goto(f"{server.base}/?token={TOKEN}")  # the cookie, then /docs with it
    pg.goto(f"{server.base}/docs")
    expect(pg.locator(".swagger-ui .info .title")).to_contain_text("makemore live", timeout=20_000)
    pg.locator("#operations-meta-health_api_health_get").click()
    pg.get_by_role("button", name="Try it out").click()
    pg.get_by_role("button", name="Execute").click()
    expect(pg.locator(".live-responses-table tbody td.response-col_status").first).to_have_text("200", timeout=20_000)
    assert problems == []


def test_opened_with_the_token_as_the_log_says(server: Server, page: tuple[Any, list[str]]) -> None:
    pg, problems = page
    pg.goto(f"{server.base}/")
    expect(pg.locator("h1")).to_have_text("makemore live")  # the token page, nothing else
    assert pg.locator("#chart").count() == 0
    problems.remove(next(p for p in problems if "401" in p))  # Chromium logs the page's own 401
    pg.goto(f"{server.base}/?token={TOKEN}")
    assert urlsplit(pg.url).path == "/" and "token" not in pg.url  # redirected without it
    expect(pg.locator("#connection")).to_have_text("live", timeout=20_000)  # the websocket, by the cookie
    assert TOKEN not in pg.evaluate("() => document.cookie")  # HttpOnly: no script can read it
    assert problems == []


def test_the_token_page_form(server: Server, page: tuple[Any, list[str]]) -> None:
    pg, problems = page
    pg.goto(f"{server.base}/")
    pg.locator("input[name=token]").fill(TOKEN)
    pg.get_by_role("button", name="Open").click()
    expect(pg.locator("#connection")).to_have_text("live", timeout=20_000)
    assert "token" not in pg.url
    problems.remove(next(p for p in problems if "401" in p))
    assert problems == []
