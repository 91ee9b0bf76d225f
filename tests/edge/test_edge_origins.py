"""Which Host and Origin headers the server trusts (backend/edge/origins.py)."""

import pytest

from backend.edge.origins import host_allowed, is_loopback, origin_allowed, split_host


@pytest.mark.parametrize(
    ("header", "name"),
    [
        ("localhost:8000", "localhost"),
        ("LocalHost", "localhost"),
        ("127.0.0.1", "127.0.0.1"),
        ("[::1]:8000", "::1"),
        ("[::1]", "::1"),
        ("example.org.:80", "example.org"),
    ],
)
def test_split_host(header: str, name: str) -> None:
    assert split_host(header) == name


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("localhost", True),
        ("app.localhost", True),
        ("127.0.0.1", True),
        ("127.8.9.10", True),
        ("::1", True),
        ("[::1]", True),
        ("0.0.0.0", False),
        ("192.168.1.5", False),
        ("localhost.evil.example", False),
        ("evil.example", False),
    ],
)
def test_is_loopback(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


@pytest.mark.parametrize(
    ("header", "bound", "allowed", "ok"),
    [
        ("localhost:8000", "127.0.0.1", [], True),
        ("127.0.0.1:8000", "127.0.0.1", [], True),
        ("[::1]:8000", "::1", [], True),
        ("evil.example", "127.0.0.1", [], False),  # a rebinding page names its own domain
        ("evil.example:8000", "127.0.0.1", [], False),
        (None, "127.0.0.1", [], False),
        ("192.168.1.5:8000", "192.168.1.5", [], True),  # the address it is bound to
        ("192.168.1.5:8000", "0.0.0.0", [], False),  # "every interface" names no address
        ("class.example.org", "0.0.0.0", ["class.example.org"], True),
        ("a.class.example.org:443", "0.0.0.0", ["*.class.example.org"], True),
        ("class.example.org.evil.example", "0.0.0.0", ["*.class.example.org"], False),
        ("anything.example", "0.0.0.0", ["*"], True),
    ],
)
def test_host_allowed(header: str | None, bound: str, allowed: list[str], ok: bool) -> None:
    assert host_allowed(header, bound, allowed) is ok


@pytest.mark.parametrize(
    ("origin", "host", "ok"),
    [
        (None, "localhost:8000", True),  # curl, scripts: not a browser page
        ("http://localhost:8000", "localhost:8000", True),
        ("https://localhost:8000/", "localhost:8000", True),  # behind a TLS proxy
        ("http://localhost:8001", "localhost:8000", False),  # another port is another origin
        ("http://evil.example", "localhost:8000", False),
        ("http://localhost:8000.evil.example", "localhost:8000", False),
        ("null", "localhost:8000", False),
        ("http://localhost:5173", "localhost:8000", True),  # listed below
    ],
)
def test_origin_allowed(origin: str | None, host: str, ok: bool) -> None:
    assert origin_allowed(origin, host, ["http://localhost:5173"]) is ok
