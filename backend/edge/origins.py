"""Which Host and Origin headers the server trusts.

Host: a page on another site can rebind its own domain to 127.0.0.1; it is then same-origin with
itself, may send no Origin at all, and only the Host header still names the attacker's domain.
Without a token, the server answers only the names it is known by (REFERENCE §6: Jupyter, Vite).

Origin: browsers send it with every websocket handshake and every POST/PATCH/DELETE. Neither CORS
nor Starlette checks it for a websocket or for a form post (a multipart upload needs no
preflight), so a page on any site could drive the server without this check.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

LOOPBACK_NAMES = frozenset({"localhost"})
UNSPECIFIED = frozenset({"", "0.0.0.0", "::"})  # "every interface": no one address to name


def split_host(value: str) -> str:
    """The name in a Host header, without its port and brackets, lower-cased: "[::1]:8000" -> "::1"."""
    value = value.strip().lower()
    if value.startswith("["):
        return value[1 : value.find("]")] if "]" in value else value[1:]
    if value.count(":") == 1:  # name:port (an unbracketed IPv6 address has several colons)
        value = value.split(":")[0]
    return value.rstrip(".")


def is_loopback(host: str) -> bool:
    """localhost, *.localhost (RFC 6761 keeps it on this machine), 127.0.0.0/8 and ::1."""
    name = host.strip().strip("[]").lower().rstrip(".")
    if name in LOOPBACK_NAMES or name.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def _matches(name: str, pattern: str) -> bool:
    pattern = split_host(pattern)
    if pattern == "*":
        return True
    if pattern.startswith("*."):
        return name.endswith(pattern[1:])
    return name == pattern


def host_allowed(host_header: str | None, bound: str, allowed: Iterable[str]) -> bool:
    """A loopback name or address, the address the server is bound to, or one of `allowed`."""
    if not host_header:
        return False  # HTTP/1.1 requires Host; a client without one is no browser of ours
    name = split_host(host_header)
    if is_loopback(name):
        return True
    if bound not in UNSPECIFIED and name == split_host(bound):
        return True
    return any(_matches(name, pattern) for pattern in allowed)


def origin_allowed(origin: str | None, host_header: str | None, allowed: Iterable[str]) -> bool:
    """No Origin (curl, scripts: not a browser page), the server's own origin (http or https, so
    that it also holds behind a TLS proxy), or one of `allowed` (scheme://host[:port])."""
    if origin is None:
        return True
    origin = origin.strip().rstrip("/").lower()
    host = (host_header or "").strip().lower()
    if host and origin in (f"http://{host}", f"https://{host}"):
        return True
    return origin in {a.rstrip("/").lower() for a in allowed}
