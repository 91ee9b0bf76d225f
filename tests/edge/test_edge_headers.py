"""Security headers on every answer, and /docs from local files (backend/edge/headers.py,
backend/api/docs.py), through the whole edge in front of the real application."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from backend.app.main import create_app
from backend.config import Settings
from backend.core.data import Dataset
from backend.edge.headers import CONTENT_SECURITY_POLICY
from backend.edge.stack import guarded

LOCAL = "http://127.0.0.1:8000"


@pytest.fixture(scope="module")
def client(small_dataset: Dataset, tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    settings = Settings(home=tmp_path_factory.mktemp("home"))
    app = guarded(create_app(settings, small_dataset), settings, "tok-for-header-tests")
    with TestClient(app, base_url=LOCAL) as c:
        c.headers["authorization"] = "Bearer tok-for-header-tests"
        yield c


def directives() -> dict[str, list[str]]:
    return {d.split()[0]: d.split()[1:] for d in CONTENT_SECURITY_POLICY.split("; ")}


def test_the_policy() -> None:
    csp = directives()
    assert csp["script-src"] == ["'self'"]  # no inline script, no eval, no CDN
    assert csp["style-src"][0] == "'self'" and all(s.startswith("'sha256-") for s in csp["style-src"][1:])
    assert csp["frame-ancestors"] == ["'none'"] and csp["object-src"] == ["'none'"]
    assert not any("unsafe" in v or "http" in v or v == "*" for values in csp.values() for v in values)


@pytest.mark.parametrize(
    ("path", "status"),
    [
        ("/", 200),
        ("/docs", 200),
        ("/static/js/main.js", 200),
        ("/api/runs/current", 200),
        ("/api/health", 200),
        ("/api/runs/nope", 404),
        ("/openapi.json", 200),
    ],
)
def test_every_answer_has_the_headers(client: TestClient, path: str, status: int) -> None:
    r = client.get(path)
    assert r.status_code == status
    assert r.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
    assert r.headers["x-content-type-options"] == "nosniff"
    assert r.headers["referrer-policy"] == "no-referrer"
    assert r.headers["x-frame-options"] == "DENY"


def test_refusals_have_them_too(client: TestClient) -> None:
    r = client.get("/api/runs", headers={"authorization": ""})
    assert r.status_code == 401 and r.headers["referrer-policy"] == "no-referrer"
    assert "content-security-policy" in r.headers


def test_the_page_has_nothing_inline(client: TestClient) -> None:
    """No inline script or style attribute: the policy would block them."""
    for path in ["/", "/docs"]:
        page = client.get(path).text
        scripts = re.findall(r"<script\b[^>]*>", page)
        assert scripts and all('src="/' in s for s in scripts), scripts
        assert re.search(r"<script\b[^>]*>\s*[^<\s]", page) is None  # no script with a body
        assert "<style" not in page and " style=" not in page
        assert "http://" not in page and "https://" not in page  # nothing from elsewhere


def test_docs_from_local_files(client: TestClient) -> None:
    page = client.get("/docs").text
    assert "/docs/assets/swagger-ui-bundle.js" in page and "/docs/assets/swagger-ui.css" in page
    js = client.get("/docs/assets/swagger-ui-bundle.js")
    assert js.status_code == 200 and js.headers["content-type"].startswith("text/javascript")
    assert "SwaggerUIBundle" in js.text[:2000]
    css = client.get("/docs/assets/swagger-ui.css")
    assert css.status_code == 200 and css.headers["content-type"].startswith("text/css")
    init = client.get("/static/docs/swagger-init.js")
    assert init.status_code == 200 and '"/openapi.json"' in init.text and "validatorUrl: null" in init.text
    assert client.get("/docs/assets/..%2F..%2Fcore.py").status_code == 404
    assert client.get("/docs/assets/redoc.standalone.js").status_code == 404
    assert client.get("/redoc").status_code == 404  # ReDoc needs inline styles: not served
