"""Where to open the server: one URL per address it listens on, loopback first, as Jupyter and
Vite print them. Bound to every interface (0.0.0.0, ::), that is each address of each interface
that is up, found without the network (getifaddrs); bound to one address, that address only.

A student's machine cannot open 127.0.0.1 of the teacher's: it needs the LAN address, and the
token with it. In the Docker image the container's own addresses are of no use outside it (the
host's port behind `-p` is what others open, and the server cannot know it): one loopback URL,
saying which port it means.
"""

from __future__ import annotations

import ctypes
import ipaddress
import logging
import socket
import sys

from backend.config import Settings
from backend.container import in_container
from backend.edge.origins import UNSPECIFIED, host_allowed

log = logging.getLogger(__name__)

IFF_UP = 0x1
_BSD = sys.platform == "darwin" or "bsd" in sys.platform


class _Sockaddr(ctypes.Structure):
    # BSD and macOS: a length byte, then a one-byte family; Linux: a two-byte family. The address
    # sits at the same offset in both (4 for IPv4, 8 for IPv6).
    _fields_ = [("sa_len", ctypes.c_uint8), ("sa_family", ctypes.c_uint8)] if _BSD else [("sa_family", ctypes.c_uint16)]


class _Ifaddrs(ctypes.Structure):
    pass


# only the fields read here; the list is walked through ifa_next, never allocated by us
_Ifaddrs._fields_ = [
    ("ifa_next", ctypes.POINTER(_Ifaddrs)),
    ("ifa_name", ctypes.c_char_p),
    ("ifa_flags", ctypes.c_uint),
    ("ifa_addr", ctypes.POINTER(_Sockaddr)),
]

_OFFSETS = {socket.AF_INET: (4, 4), socket.AF_INET6: (8, 16)}  # family: (offset, length) of the address


def interface_addresses() -> list[str]:
    """Every IPv4 and IPv6 address of every interface that is up, in the system's order."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        head = ctypes.POINTER(_Ifaddrs)()
        if libc.getifaddrs(ctypes.byref(head)) != 0:
            raise OSError(ctypes.get_errno(), "getifaddrs failed")
    except (OSError, AttributeError):
        return _from_hostname()
    found = []
    try:
        entry = head
        while entry:
            item = entry.contents
            if item.ifa_addr and item.ifa_flags & IFF_UP:
                family = item.ifa_addr.contents.sa_family
                if family in _OFFSETS:
                    offset, length = _OFFSETS[family]
                    raw = ctypes.string_at(ctypes.addressof(item.ifa_addr.contents) + offset, length)
                    found.append(socket.inet_ntop(family, raw))
            entry = item.ifa_next
    finally:
        libc.freeifaddrs(head)
    return found


def _from_hostname() -> list[str]:
    """Without getifaddrs: what this machine's own name resolves to (/etc/hosts, no network)."""
    try:
        infos = socket.getaddrinfo(socket.gethostname(), None, proto=socket.IPPROTO_TCP)
    except OSError:
        return []
    return [str(info[4][0]) for info in infos]


def listening_addresses(host: str, sock: socket.socket) -> list[str]:
    """The addresses a client may open the server at, loopback first: `host` itself unless it
    means every interface; then each interface address of the families the socket accepts."""
    if host.strip() not in UNSPECIFIED:
        return [host]
    v6 = sock.family == socket.AF_INET6
    # "::" also takes IPv4 connections unless the socket is IPv6-only (Linux's default: not)
    v4 = not v6 or not sock.getsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY)
    picked = []
    for text in interface_addresses():
        ip = ipaddress.ip_address(text.split("%")[0])
        # fe80::/10 needs a zone (%eth0) in the URL, which browsers do not accept
        if (ip.version == 4 and v4) or (ip.version == 6 and v6 and not ip.is_link_local):
            picked.append(str(ip))
    ordered = sorted(dict.fromkeys(picked), key=lambda a: not ipaddress.ip_address(a).is_loopback)
    return ordered or (["127.0.0.1"] if v4 else ["::1"])


def url(address: str, port: int, token: str | None) -> str:
    name = f"[{address}]" if ":" in address else address
    return f"http://{name}:{port}/" + (f"?token={token}" if token else "")


def open_lines(settings: Settings, sock: socket.socket, token: str | None) -> list[str]:
    """What the log says to open. A token the server made is printed; one the user gave
    (--token, MAKEMORE_TOKEN) stays out of the log, which others may read."""
    host, port = settings.host, int(sock.getsockname()[1])
    shown = token if settings.token is None else None
    if in_container():
        address = "127.0.0.1" if host.strip() in UNSPECIFIED else host
        hint = f"the container's port {port}: open the host port that `docker run -p HOST:{port}` maps"
        return [f"open {url(address, port, shown)} ({hint})"]
    addresses = listening_addresses(host, sock)
    if token is None:  # MAKEMORE_AUTH=none: only the names the Host check answers (origins.py)
        addresses = [a for a in addresses if host_allowed(a, host, settings.allowed_hosts)]
    lines = [f"open {url(address, port, shown)}" for address in addresses]
    if token is not None and shown is None:
        lines.append("with the token given by --token or MAKEMORE_TOKEN (as ?token= or Authorization: Bearer)")
    return lines


def announce(settings: Settings, sock: socket.socket, token: str | None) -> None:
    for line in open_lines(settings, sock, token):
        log.info("%s", line)
