"""The token (Jupyter's convention): which one is in force, and where a request may carry it.

A request shows the token in an `Authorization: Bearer` header, in the cookie the page gets when
it is opened with `?token=`, or (a websocket, which cannot set headers from a browser) in
`?token=` on its URL. Compared in constant time.
"""

from __future__ import annotations

import hmac
import logging
import secrets
from collections.abc import Mapping
from urllib.parse import parse_qsl, urlencode

from starlette.requests import cookie_parser

from backend.edge.origins import UNSPECIFIED, is_loopback
from backend.server.config import Settings

log = logging.getLogger(__name__)

QUERY = "token"


def cookie_name(port: int | None) -> str:
    """Cookies ignore ports: two servers on one machine must not overwrite each other's."""
    return f"makemore-token-{port}" if port else "makemore-token"


def url_host(host: str) -> str:
    """An address to put in a URL for a server bound to `host`."""
    if host in UNSPECIFIED:
        return "127.0.0.1"  # every interface includes this one; with `docker run -p` too
    return f"[{host}]" if ":" in host else host


def token_in_force(settings: Settings) -> str | None:
    """The token every request must show, or None. Logs what it decided."""
    if settings.auth == "none":
        log.warning(
            "MAKEMORE_AUTH=none: no token; anyone who can reach %s:%d can drive this server",
            settings.host,
            settings.port,
        )
        return None
    if settings.token is not None:
        return settings.token
    if is_loopback(settings.host):
        return None  # only this machine can connect; Host and Origin checks guard the browser
    token = secrets.token_urlsafe(32)
    log.info("open http://%s:%d/?token=%s", url_host(settings.host), settings.port, token)
    return token


def matches(candidate: str | None, token: str) -> bool:
    return candidate is not None and hmac.compare_digest(candidate.encode(), token.encode())


def from_query(query_string: bytes) -> str | None:
    for key, value in parse_qsl(query_string.decode("latin-1"), keep_blank_values=True):
        if key == QUERY:
            return value
    return None


def without_token(query_string: bytes) -> str:
    """The query string with `token` removed (for the redirect after the cookie is set)."""
    pairs = [(k, v) for k, v in parse_qsl(query_string.decode("latin-1"), keep_blank_values=True) if k != QUERY]
    return urlencode(pairs)


def from_headers(headers: Mapping[str, str], port: int | None) -> tuple[str | None, str | None]:
    """(the bearer token, the cookie's token), each None if absent."""
    bearer = None
    scheme, _, value = headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        bearer = value.strip()
    cookie = cookie_parser(headers.get("cookie", "")).get(cookie_name(port))
    return bearer, cookie


def set_cookie(token: str, port: int | None, secure: bool) -> str:
    """A session cookie the page's own requests (and its websocket) carry and its scripts cannot
    read; SameSite=Strict keeps it off every request another site starts."""
    parts = [f"{cookie_name(port)}={token}", "Path=/", "HttpOnly", "SameSite=Strict"]
    if secure:
        parts.append("Secure")
    return "; ".join(parts)
