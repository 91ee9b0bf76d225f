"""backend/api/assets.py: the frontend's files from memory, as StaticFiles served them."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from starlette.applications import Starlette
from starlette.routing import Route
from starlette.testclient import TestClient

from backend.api.assets import Assets
from backend.api.pages import FRONTEND, GZIP_MIN_BYTES, page_routes

BIG = "export const x = " + repr("makemore " * 400) + ";\n"  # > GZIP_MIN_BYTES


@pytest.fixture
def root(tmp_path: Path) -> Path:
    site = tmp_path / "site"
    (site / "js").mkdir(parents=True)
    (site / "js" / "big.js").write_text(BIG)
    (site / "js" / "small.js").write_text("export const y = 1;\n")
    (site / "app.css").write_text("body { margin: 0 }\n")
    (tmp_path / "secret.txt").write_text("not for the web")
    return site


@pytest.fixture
def client(root: Path) -> TestClient:
    app = Starlette(routes=[Route("/static/{path:path}", Assets(root, GZIP_MIN_BYTES).serve, methods=["GET", "HEAD"])])
    return TestClient(app)


def test_a_file_is_served_with_its_type_and_gzipped_when_asked(client: TestClient) -> None:
    plain = client.get("/static/js/big.js", headers={"Accept-Encoding": "identity"})
    assert plain.status_code == 200
    assert plain.content == BIG.encode()
    assert plain.headers["content-type"] == "text/javascript; charset=utf-8"
    assert "content-encoding" not in plain.headers
    zipped = client.get("/static/js/big.js", headers={"Accept-Encoding": "gzip, br"})
    assert zipped.headers["content-encoding"] == "gzip"
    assert int(zipped.headers["content-length"]) < len(BIG) // 4
    assert zipped.content == BIG.encode()  # httpx decodes it
    assert zipped.headers["etag"] == plain.headers["etag"]
    assert "accept-encoding" in zipped.headers["vary"].lower()
    css = client.get("/static/app.css")
    assert css.headers["content-type"] == "text/css; charset=utf-8"
    small = client.get("/static/js/small.js", headers={"Accept-Encoding": "gzip"})
    assert small.content == b"export const y = 1;\n"
    assert "content-encoding" not in small.headers  # too small to be worth it


def test_a_known_etag_gets_304_and_head_gets_no_body(client: TestClient) -> None:
    first = client.get("/static/js/big.js")
    again = client.get("/static/js/big.js", headers={"If-None-Match": first.headers["etag"]})
    assert again.status_code == 304
    assert again.content == b""
    other = client.get("/static/js/big.js", headers={"If-None-Match": '"something else"'})
    assert other.status_code == 200
    head = client.head("/static/js/big.js", headers={"Accept-Encoding": "identity"})
    assert head.status_code == 200
    assert head.content == b""
    assert head.headers["content-length"] == str(len(BIG))
    assert head.headers["etag"] == first.headers["etag"]
    assert client.post("/static/js/big.js").status_code == 405


def test_an_edited_file_is_served_as_it_is_now(root: Path, client: TestClient) -> None:
    first = client.get("/static/js/small.js")
    path = root / "js" / "small.js"
    path.write_text("export const y = 2; // edited\n")
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))  # a clock too coarse cannot hide it
    second = client.get("/static/js/small.js")
    assert second.content == b"export const y = 2; // edited\n"
    assert second.headers["etag"] != first.headers["etag"]
    assert client.get("/static/js/small.js", headers={"If-None-Match": first.headers["etag"]}).status_code == 200


@pytest.mark.parametrize(
    "path",
    [
        "/static/js/missing.js",
        "/static/js",  # a directory
        "/static/",  # the root itself
        "/static/../secret.txt",
        "/static/js/../../secret.txt",
        "/static/%2e%2e/secret.txt",
        "/static//etc/passwd",
        "/static/link.txt",  # a link out of the root
    ],
)
def test_nothing_but_the_files_under_the_root(root: Path, client: TestClient, path: str) -> None:
    (root / "link.txt").symlink_to(root.parent / "secret.txt")
    r = client.get(path)
    assert r.status_code == 404, path
    assert b"not for the web" not in r.content


def test_the_page_serves_every_frontend_file_as_it_is_on_disk() -> None:
    client = TestClient(Starlette(routes=page_routes()))
    files = [p for p in FRONTEND.rglob("*") if p.is_file() and p.name != "index.html"]
    assert len(files) > 30
    for path in files:
        r = client.get(f"/static/{path.relative_to(FRONTEND).as_posix()}")
        assert r.status_code == 200, path
        assert r.content == path.read_bytes(), path
