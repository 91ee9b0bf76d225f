"""Who may talk to the server: the Host check (DNS rebinding), the Origin check (cross-site
writes and websockets) and the token. One ASGI layer around everything the server serves,
Boot's early page included (see __main__.py)."""

from __future__ import annotations

import html
from collections.abc import Iterable

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Receive, Scope, Send

from backend.edge import token as tokens
from backend.edge.origins import host_allowed, origin_allowed
from backend.edge.refuse import refuse

STATE_CHANGING = frozenset({"POST", "PUT", "PATCH", "DELETE"})
TOKEN_PAGE_STYLE = "/static/css/app.css"  # the page's own stylesheet: nothing in it is secret
OPEN = frozenset({"/api/health", TOKEN_PAGE_STYLE})  # Docker's HEALTHCHECK has no token; nor has the token page


def token_page(message: str) -> bytes:
    """The one page a browser without the token gets: a form that opens `/?token=...`, styled as
    the app by its stylesheet (open without the token: the Content-Security-Policy allows no
    inline style), no script."""
    return f"""<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>makemore live: token</title><link rel="icon" href="data:,">
<link rel="stylesheet" href="{TOKEN_PAGE_STYLE}"></head>
<body>
<main class="panel token-page">
<h1>makemore <span class="accent">live</span></h1>
<p>{html.escape(message)}</p>
<p class="muted">The server printed the address to open, with its token, when it started: look in its log
(<code>docker logs</code> for the image), or ask whoever started it.</p>
<form method="get" action="/">
<label for="token">Token</label>
<input id="token" name="token" type="password" autocomplete="off" required autofocus>
<button type="submit" class="primary">Open</button>
</form>
</main>
</body>
</html>
""".encode()


class AccessGuard:
    """Refuses, in this order: an unknown Host when no token is in force (400); a foreign Origin
    on a websocket or a state-changing request (403); a missing or wrong token when one is in
    force (401; a websocket is refused before it is accepted)."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        token: str | None,
        bound_host: str,
        allowed_hosts: Iterable[str] = (),
        allowed_origins: Iterable[str] = (),
    ) -> None:
        self.app = app
        self.token = token
        self.bound_host = bound_host
        self.allowed_hosts = tuple(allowed_hosts)
        self.allowed_origins = tuple(allowed_origins)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        host = headers.get("host")
        if self.token is None and not host_allowed(host, self.bound_host, self.allowed_hosts):
            detail = f"this server does not answer to the host {host!r}; add it to MAKEMORE_ALLOWED_HOSTS to allow it"
            await refuse(scope, send, 400, detail)
            return
        origin = headers.get("origin")
        writes = scope["type"] == "websocket" or scope["method"] in STATE_CHANGING
        if writes and not origin_allowed(origin, host, self.allowed_origins):
            detail = f"pages from {origin} may not use this server; add it to MAKEMORE_ALLOWED_ORIGINS to allow it"
            await refuse(scope, send, 403, detail)
            return
        if self.token is None or self._shows_token(scope, headers, self.token):
            await self.app(scope, receive, send)
            return
        await self._without_token(scope, receive, send, self.token)

    @staticmethod
    def _shows_token(scope: Scope, headers: Headers, token: str) -> bool:
        server = scope.get("server")
        bearer, cookie = tokens.from_headers(headers, server[1] if server else None)
        # ?token= on a websocket URL: a browser cannot set a websocket's headers
        query = tokens.from_query(scope.get("query_string", b"")) if scope["type"] == "websocket" else None
        # every candidate is compared, so that the time taken says nothing about which one matched
        found = [tokens.matches(candidate, token) for candidate in (bearer, cookie, query)]
        return any(found)

    async def _without_token(self, scope: Scope, receive: Receive, send: Send, token: str) -> None:
        path, method = scope["path"], scope.get("method", "GET")
        reading = scope["type"] == "http" and method in ("GET", "HEAD")
        query = tokens.from_query(scope.get("query_string", b"")) if reading else None
        if query is not None and tokens.matches(query, token):
            await self._remember(scope, send, token)
            return
        if reading and path in OPEN:
            await self.app(scope, receive, send)
            return
        wrong = "that token is not the server's" if query is not None else "this server needs its token"
        if reading and path == "/":
            await self._token_page(send, wrong)
            return
        detail = f"{wrong}: send the header 'Authorization: Bearer <token>', or open /?token=<token> in the browser"
        await refuse(scope, send, 401, detail, [(b"www-authenticate", b"Bearer")])

    @staticmethod
    async def _remember(scope: Scope, send: Send, token: str) -> None:
        """Set the cookie and send the browser to the same address without the token, so that it
        stays out of the address bar, the history and bookmarks."""
        server = scope.get("server")
        cookie = tokens.set_cookie(token, server[1] if server else None, secure=scope.get("scheme") == "https")
        rest = tokens.without_token(scope.get("query_string", b""))
        path = scope.get("raw_path", scope["path"].encode()).decode("latin-1")
        # one leading slash: "//evil.example" would send the browser to another site
        location = "/" + path.lstrip("/") + (f"?{rest}" if rest else "")
        headers = [
            (b"location", location.encode("latin-1")),
            (b"set-cookie", cookie.encode("latin-1")),
            (b"cache-control", b"no-store"),
            (b"content-length", b"0"),
        ]
        await send({"type": "http.response.start", "status": 303, "headers": headers})
        await send({"type": "http.response.body", "body": b""})

    @staticmethod
    async def _token_page(send: Send, message: str) -> None:
        body = token_page(f"{message[0].upper()}{message[1:]}.")
        headers = [
            (b"content-type", b"text/html; charset=utf-8"),
            (b"content-length", str(len(body)).encode()),
            (b"cache-control", b"no-store"),
            (b"www-authenticate", b"Bearer"),
        ]
        await send({"type": "http.response.start", "status": 401, "headers": headers})
        await send({"type": "http.response.body", "body": body})
