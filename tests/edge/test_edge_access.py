"""The token, Host and Origin checks (backend/edge/access.py, token.py), in front of a small app."""

from __future__ import annotations

import hmac
import logging
from collections.abc import Callable
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from pydantic import ValidationError
from starlette.testclient import WebSocketDenialResponse

from backend.config import Settings
from backend.edge import token as tokens
from backend.edge.access import TOKEN_PAGE_STYLE, AccessGuard
from tests.edge.edge_app import edge_app

TOKEN = "s3cret-token-for-tests"
LOCAL = "http://127.0.0.1:8000"
WS = "ws://127.0.0.1:8000/ws"  # TestClient sends Host "testserver" unless the URL names one

Client = Callable[..., TestClient]


@pytest.fixture
def guard() -> Client:
    def make(token: str | None = None, base_url: str = LOCAL, **kw: object) -> TestClient:
        app = AccessGuard(edge_app(), token=token, bound_host=str(kw.pop("bound", "127.0.0.1")), **kw)  # type: ignore[arg-type]
        return TestClient(app, base_url=base_url, follow_redirects=False)

    return make


# ---- without a token: Host (DNS rebinding) and Origin (cross-site writes) ------------------------
@pytest.mark.parametrize("host", ["127.0.0.1:8000", "localhost:8000", "[::1]:8000", "localhost"])
def test_loopback_hosts_are_answered(guard: Client, host: str) -> None:
    assert guard().get("/api/runs", headers={"host": host}).status_code == 200


def test_a_rebinding_host_gets_400(guard: Client) -> None:
    r = guard().get("/api/runs", headers={"host": "evil.example:8000"})
    assert r.status_code == 400
    assert "evil.example" in r.json()["detail"] and "MAKEMORE_ALLOWED_HOSTS" in r.json()["detail"]
    with pytest.raises(WebSocketDenialResponse) as e, guard().websocket_connect(WS, headers={"host": "evil.example"}):
        pass
    assert e.value.status_code == 400


def test_allowed_hosts_and_the_bound_address(guard: Client) -> None:
    client = guard(allowed_hosts=["*.class.example.org"], bound="192.168.1.5")
    assert client.get("/", headers={"host": "room1.class.example.org"}).status_code == 200
    assert client.get("/", headers={"host": "192.168.1.5:8000"}).status_code == 200
    assert client.get("/", headers={"host": "192.168.1.6:8000"}).status_code == 400


@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH", "DELETE"])
def test_a_cross_site_write_gets_403(guard: Client, method: str) -> None:
    client = guard(allowed_origins=["http://localhost:5173"])
    r = client.request(method, "/api/runs", headers={"origin": "http://evil.example"})
    assert r.status_code == 403 and "http://evil.example" in r.json()["detail"]
    assert client.request(method, "/api/runs", headers={"origin": LOCAL}).status_code == 200  # its own page
    assert client.request(method, "/api/runs", headers={"origin": "http://localhost:5173"}).status_code == 200
    assert client.request(method, "/api/runs").status_code == 200  # no Origin: curl, a script


def test_a_cross_site_upload_gets_403(guard: Client) -> None:
    """A multipart form needs no preflight: a page anywhere could post one."""
    files = {"file": ("words.txt", b"anna\nbob\n" * 10, "text/plain")}
    r = guard().post("/api/datasets", files=files, headers={"origin": "http://evil.example"})
    assert r.status_code == 403
    assert guard().post("/api/datasets", files=files, headers={"origin": LOCAL}).status_code == 200


def test_reads_need_no_origin_check(guard: Client) -> None:
    # a foreign page cannot read the answer (no CORS headers); the Host check covers rebinding
    assert guard().get("/api/runs", headers={"origin": "http://evil.example"}).status_code == 200


def test_a_cross_site_websocket_is_refused_with_403(guard: Client) -> None:
    client = guard()
    with (
        pytest.raises(WebSocketDenialResponse) as e,
        client.websocket_connect(WS, headers={"origin": "http://evil.example"}),
    ):
        pass
    assert e.value.status_code == 403 and "evil.example" in e.value.json()["detail"]
    with client.websocket_connect(WS, headers={"origin": LOCAL}) as ws:
        ws.send_text("hi")
        assert ws.receive_json() == {"echo": "hi"}


# ---- with a token ----------------------------------------------------------------------------
def test_no_token_gets_401_with_a_json_detail(guard: Client) -> None:
    r = guard(TOKEN).get("/api/runs")
    assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer"
    assert "Authorization: Bearer" in r.json()["detail"]
    r = guard(TOKEN).post("/api/runs", headers={"authorization": "Bearer wrong-token"})
    assert r.status_code == 401


def test_health_stays_open(guard: Client) -> None:
    assert guard(TOKEN).get("/api/health").status_code == 200
    assert guard(TOKEN).post("/api/health").status_code == 401  # only reading it


def test_the_bearer_header(guard: Client) -> None:
    client = guard(TOKEN)
    assert client.get("/api/runs", headers={"authorization": f"Bearer {TOKEN}"}).status_code == 200
    assert client.get("/api/runs", headers={"authorization": f"bearer {TOKEN}"}).status_code == 200
    assert client.get("/api/runs", headers={"authorization": f"Basic {TOKEN}"}).status_code == 401
    assert client.get("/api/runs", headers={"authorization": f"Bearer {TOKEN}x"}).status_code == 401


def test_the_page_without_a_token_asks_for_it(guard: Client) -> None:
    r = guard(TOKEN).get("/")
    assert r.status_code == 401 and r.headers["content-type"].startswith("text/html")
    assert '<form method="get" action="/">' in r.text and 'name="token"' in r.text
    assert "<script" not in r.text and "style=" not in r.text  # nothing the CSP would block
    r = guard(TOKEN).get("/", params={"token": "wrong-token"})
    assert r.status_code == 401 and "not the server" in r.text


def test_the_token_page_has_its_stylesheet_and_nothing_else(guard: Client) -> None:
    """The token page is styled as the app (issue 22): its one stylesheet passes without the
    token; the page's other files do not."""
    client = guard(TOKEN)
    assert f'<link rel="stylesheet" href="{TOKEN_PAGE_STYLE}">' in client.get("/").text
    assert client.get(TOKEN_PAGE_STYLE).status_code != 401  # the small app has no such file: its 404
    assert client.get("/static/js/main.js").status_code == 401
    assert client.post(TOKEN_PAGE_STYLE).status_code == 401  # only reading it


def test_token_in_the_address_sets_a_cookie_and_redirects_without_it(guard: Client) -> None:
    client = guard(TOKEN)
    r = client.get("/", params={"token": TOKEN, "x": "1"})
    assert r.status_code == 303 and r.headers["location"] == "/?x=1"
    assert r.headers["cache-control"] == "no-store"
    cookie = r.headers["set-cookie"]
    assert cookie.startswith(f"makemore-token-8000={TOKEN};")
    assert {"HttpOnly", "SameSite=Strict", "Path=/"} <= {p.strip() for p in cookie.split(";")}
    assert "Secure" not in cookie  # plain http: a Secure cookie would never come back
    # the browser keeps the cookie: the page, the API and the websocket now work without the token
    assert client.get("/").status_code == 200
    assert client.post("/api/runs").status_code == 200
    with client.websocket_connect(WS) as ws:
        ws.send_text("hi")
        assert ws.receive_json() == {"echo": "hi"}


def test_the_cookie_is_secure_over_https_and_per_port(guard: Client) -> None:
    r = guard(TOKEN, base_url="https://127.0.0.1:8443").get("/docs", params={"token": TOKEN})
    assert r.status_code == 303 and r.headers["location"] == "/docs"
    assert "Secure" in r.headers["set-cookie"] and "makemore-token-8443=" in r.headers["set-cookie"]
    other_port = guard(TOKEN)
    other_port.cookies.set("makemore-token-8443", TOKEN)
    assert other_port.get("/api/runs").status_code == 401  # another server's cookie
    other_port.cookies.set("makemore-token-8000", TOKEN)
    assert other_port.get("/api/runs").status_code == 200


def test_the_redirect_stays_on_this_site(guard: Client) -> None:
    r = guard(TOKEN).get(f"{LOCAL}//evil.example", params={"token": TOKEN})
    assert r.status_code == 303 and r.headers["location"] == "/evil.example"  # not "//evil.example"


def test_websocket_token_in_the_url_or_a_header(guard: Client) -> None:
    client = guard(TOKEN)
    for path, headers in [(f"{WS}?token={TOKEN}", {}), (WS, {"authorization": f"Bearer {TOKEN}"})]:
        with client.websocket_connect(path, headers=headers) as ws:
            ws.send_text("hi")
            assert ws.receive_json() == {"echo": "hi"}
    for path in [WS, f"{WS}?token=wrong-token"]:  # refused before it is accepted
        with pytest.raises(WebSocketDenialResponse) as e, client.websocket_connect(path):
            pass
        assert e.value.status_code == 401 and "token" in e.value.json()["detail"]


def test_with_a_token_any_host_but_still_no_foreign_origin(guard: Client) -> None:
    auth = {"authorization": f"Bearer {TOKEN}"}
    client = guard(TOKEN)
    assert client.get("/api/runs", headers={**auth, "host": "my-laptop.example:8000"}).status_code == 200
    assert client.post("/api/runs", headers={**auth, "origin": "http://evil.example"}).status_code == 403


def test_tokens_are_compared_in_constant_time(guard: Client, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[bytes, bytes]] = []
    real = hmac.compare_digest

    def compare(a: bytes, b: bytes) -> bool:
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(tokens.hmac, "compare_digest", compare)
    assert guard(TOKEN).get("/api/runs", headers={"authorization": "Bearer wrong-token"}).status_code == 401
    assert (b"wrong-token", TOKEN.encode()) in calls


# ---- which token is in force -------------------------------------------------------------------
def test_no_token_on_loopback(caplog: pytest.LogCaptureFixture) -> None:
    assert tokens.token_in_force(Settings(host="127.0.0.1")) is None
    assert tokens.token_in_force(Settings(host="::1")) is None
    assert tokens.token_in_force(Settings(host="127.0.0.1", token=TOKEN)) == TOKEN  # asked for: in force


def test_a_token_is_generated_off_loopback_and_kept_in_the_home(tmp_path: Path) -> None:
    token = tokens.token_in_force(Settings(host="0.0.0.0", port=8123, home=tmp_path))
    assert token is not None and len(token) >= 40
    assert tokens.token_in_force(Settings(host="0.0.0.0", home=tmp_path)) == token  # the next start's
    assert tokens.token_in_force(Settings(host="0.0.0.0", home=tmp_path / "other")) != token  # each home its own
    assert tokens.token_in_force(Settings(host="0.0.0.0", token=TOKEN, home=tmp_path)) == TOKEN


def test_auth_none_turns_it_off_with_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="backend.edge.token"):
        assert tokens.token_in_force(Settings(host="0.0.0.0", auth="none", token=TOKEN)) is None
    assert any(r.levelno == logging.WARNING and "MAKEMORE_AUTH=none" in r.getMessage() for r in caplog.records)


def test_token_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MAKEMORE_TOKEN", TOKEN)
    monkeypatch.setenv("MAKEMORE_ALLOWED_HOSTS", "class.example.org, *.lab.example")
    s = Settings()
    assert s.token == TOKEN and s.allowed_hosts == ["class.example.org", "*.lab.example"]
    for bad in ["short", "has space in it", "semi;colon-token"]:  # too short; not URL- and cookie-safe
        with pytest.raises(ValidationError):
            Settings(token=bad)
    with pytest.raises(ValidationError):
        Settings(auth="maybe")
