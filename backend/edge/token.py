"""The token (Jupyter's convention): which one is in force, and where a request may carry it.

A request shows the token in an `Authorization: Bearer` header, in the cookie the page gets when
it is opened with `?token=`, or (a websocket, which cannot set headers from a browser) in
`?token=` on its URL. Compared in constant time.
"""

from __future__ import annotations

import contextlib
import hmac
import logging
import os
import re
import secrets
from collections.abc import Mapping
from pathlib import Path
from urllib.parse import parse_qsl, urlencode

from starlette.requests import cookie_parser

from backend.config import Settings
from backend.edge.origins import is_loopback

log = logging.getLogger(__name__)

QUERY = "token"
TOKEN_FILE = "token"  # in the home, beside the database
_VALID = re.compile(r"[A-Za-z0-9._~-]{8,}")  # what Settings.token accepts


def cookie_name(port: int | None) -> str:
    """Cookies ignore ports: two servers on one machine must not overwrite each other's."""
    return f"makemore-token-{port}" if port else "makemore-token"


class TokenFileError(Exception):
    """The token file cannot be read or written, in one line."""


def token_path(home: Path) -> Path:
    return home / TOKEN_FILE


def token_in_force(settings: Settings) -> str | None:
    """The token every request must show, or None: a given one (--token, MAKEMORE_TOKEN) wins;
    off loopback, else, the one kept in the home, made the first time (so that a restart, of a
    container too, keeps the address handed out and the browsers' cookies working)."""
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
    return stored_token(settings.home)


def stored_token(home: Path) -> str:
    """The token in `home`'s token file, made (mode 0600) if there is none."""
    path = token_path(home)
    try:
        text = path.read_text(encoding="ascii").strip()
    except FileNotFoundError:
        return rotate_token(home)
    except (OSError, UnicodeDecodeError) as e:
        raise TokenFileError(f"cannot read the token file {path}: {_reason(e)}") from None
    if not _VALID.fullmatch(text):
        raise TokenFileError(
            f"the token file {path} holds no token (8 or more of A-Z a-z 0-9 . _ ~ -): "
            "delete it or run `python -m backend --rotate-token` for a new one"
        )
    try:
        if path.stat().st_mode & 0o077:
            path.chmod(0o600)  # someone else on this machine could read it and drive the server
    except OSError as e:
        raise TokenFileError(f"cannot make the token file {path} private: {_reason(e)}") from None
    log.info("the token is kept in %s (`python -m backend --rotate-token` replaces it)", path)
    return text


def rotate_token(home: Path) -> str:
    """A new token in `home`'s token file, written whole (a temporary file, mode 0600 from its
    creation, renamed over the old one). A server that runs keeps its token until it restarts."""
    path = token_path(home)
    token = secrets.token_urlsafe(32)
    temporary = path.with_name(f".{TOKEN_FILE}.{secrets.token_hex(4)}")
    try:
        home.mkdir(parents=True, exist_ok=True)
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="ascii") as f:
            f.write(token + "\n")
            f.flush()
            os.fsync(f.fileno())
        os.replace(temporary, path)
    except OSError as e:
        with contextlib.suppress(OSError):  # never created, or the home refuses that too
            temporary.unlink(missing_ok=True)
        raise TokenFileError(f"cannot write the token file {path}: {_reason(e)}") from None
    log.info("a new token, kept in %s (`python -m backend --rotate-token` replaces it)", path)
    return token


def _reason(e: Exception) -> str:
    return (e.strerror if isinstance(e, OSError) else None) or str(e)


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
