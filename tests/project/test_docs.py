"""The documentation against what it documents: every route of the API named in docs/api.md,
no route named anywhere that the server does not have, every setting in docs/configuration.md
with its default, and every relative link pointing at a file (and a heading) that exists."""

from __future__ import annotations

import re
import unicodedata
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from pydantic_core import PydanticUndefined
from starlette.routing import Match

from backend.app.main import create_app
from backend.config import Settings, default_home

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
PAGES = [ROOT / "README.md", *sorted(DOCS.glob("*.md"))]

METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")
# `GET /api/runs/{run_id}/points?start=...`: a method, then a path up to a query or the span's end
ROUTE = re.compile(rf"`({'|'.join(METHODS)}) (/[^`?\s]*)")
# any path of the API or a websocket in a code span: `/api/...`, `WS /ws/runs`
PATH = re.compile(r"`(?:[A-Z]+ )?(/(?:api|ws)(?:/[^`?\s]*)?)")
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> FastAPI:
    """The application as `python -m backend` builds it (its lifespan never runs: no store opened)."""
    return create_app(Settings(home=tmp_path_factory.mktemp("home")))


def operations(app: FastAPI) -> set[tuple[str, str]]:
    """(METHOD, path template) of every operation in the OpenAPI document."""
    paths: dict[str, dict[str, Any]] = app.openapi()["paths"]
    return {(method.upper(), path) for path, ops in paths.items() for method in ops}


def served(app: FastAPI, method: str | None, path: str) -> bool:
    """Whether the app answers `method` at `path` (a template's braces match as a parameter
    would), asked as the server's router asks; no method: an HTTP route or a websocket's."""
    scopes: list[dict[str, Any]] = (
        [{"type": "http", "method": method}]
        if method
        else [{"type": "http", "method": m} for m in METHODS] + [{"type": "websocket"}]
    )
    for scope in scopes:
        scope |= {"path": path, "root_path": "", "path_params": {}, "query_string": b"", "headers": []}
        if any(route.matches(scope)[0] == Match.FULL for route in app.router.routes):
            return True
    return False


def test_api_md_names_every_operation_of_the_openapi_document(app: FastAPI) -> None:
    named = set(ROUTE.findall((DOCS / "api.md").read_text()))
    missing = sorted(operations(app) - named)
    assert not missing, f"docs/api.md does not name {missing}"


def test_the_docs_name_no_route_the_server_does_not_have(app: FastAPI) -> None:
    wrong = []
    for page in PAGES:
        text = page.read_text()
        for method, path in ROUTE.findall(text):
            if not served(app, method, path):
                wrong.append(f"{page.name}: {method} {path}")
        for path in PATH.findall(text):
            if not served(app, None, path.rstrip("/")):
                wrong.append(f"{page.name}: {path}")
    assert not wrong, "named but not served:\n" + "\n".join(wrong)


def test_the_route_checks_can_fail(app: FastAPI) -> None:
    """The checks above on made-up text: a route that is not served, one left out."""
    assert served(app, "GET", "/api/runs/{run_id}/sample") and served(app, None, "/ws/runs/current")
    assert not served(app, "PUT", "/api/runs/{run_id}") and not served(app, None, "/api/nothing")
    assert ("DELETE", "/api/runs/{run_id}") in operations(app)
    assert ROUTE.findall("`GET /api/runs?status=` and `DELETE /api/runs/{run_id}`") == [
        ("GET", "/api/runs"),
        ("DELETE", "/api/runs/{run_id}"),
    ]


def config_rows() -> dict[str, str]:
    """docs/configuration.md's table: environment variable -> its default's cell."""
    rows = {}
    for line in (DOCS / "configuration.md").read_text().splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) >= 3 and re.fullmatch(r"`MAKEMORE_[A-Z_]+`", cells[0]):
            rows[cells[0].strip("`")] = cells[1]
    return rows


def documented_default_matches(cell: str, default: Any) -> bool:
    """A default cell: `literal` for a value, (none...) for None or an empty list."""
    if default is None or default == []:
        return cell.startswith("(none")
    literal = re.match(r"`([^`]*)`", cell)
    if literal is None:
        return False
    text = literal[1]
    if isinstance(default, bool):
        return text == str(default).lower()
    if isinstance(default, int | float):
        return float(text) == default
    if isinstance(default, Path):
        return (ROOT / text).resolve() == default.resolve() or Path(text).expanduser() == default
    return bool(text == default)


def test_configuration_md_names_every_setting_with_its_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("XDG_DATA_HOME", raising=False)  # the default home as a user without it has it
    rows = config_rows()
    fields = {f"MAKEMORE_{name.upper()}": field for name, field in Settings.model_fields.items()}
    assert set(rows) == set(fields), (
        f"undocumented: {sorted(set(fields) - set(rows))}; not settings: {sorted(set(rows) - set(fields))}"
    )
    wrong = []
    for env, field in fields.items():
        default = field.default if field.default is not PydanticUndefined else None
        if field.default_factory is not None:
            assert field.default_factory is default_home  # the one factory; called as a user would
            default = default_home()
        if not documented_default_matches(rows[env], default):
            wrong.append(f"{env}: documented {rows[env]!r}, default {default!r}")
    assert not wrong, "\n".join(wrong)


def test_the_default_check_can_fail() -> None:
    assert documented_default_matches("`8000`", 8000) and not documented_default_matches("`8001`", 8000)
    assert documented_default_matches("`false`", False) and not documented_default_matches("`true`", False)
    assert documented_default_matches("(none)", []) and not documented_default_matches("`x`", None)
    assert documented_default_matches("`data/names.txt`", ROOT / "data" / "names.txt")
    assert not documented_default_matches("`127.0.0.2`", "127.0.0.1")


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation but `-` and `_` dropped, spaces as hyphens."""
    text = heading.strip().lower()
    text = "".join(c for c in text if c in " -_" or unicodedata.category(c)[0] in "LN")
    return text.replace(" ", "-")


def anchors(page: Path) -> set[str]:
    text = re.sub(r"```.*?```", "", page.read_text(), flags=re.DOTALL)
    return {slug(m) for m in re.findall(r"^#{1,6} (.+)$", text, flags=re.MULTILINE)}


def test_every_relative_link_points_at_something_that_exists() -> None:
    broken = []
    for page in PAGES:
        for target in LINK.findall(page.read_text()):
            if re.match(r"[a-z]+:", target):  # http:, https:, mailto:
                continue
            file, _, anchor = target.partition("#")
            path = (page.parent / file).resolve() if file else page
            if not path.exists():
                broken.append(f"{page.name}: {target}")
            elif anchor and path.suffix == ".md" and anchor not in anchors(path):
                broken.append(f"{page.name}: {target} (no such heading)")
    assert not broken, "broken links:\n" + "\n".join(broken)


def test_slugs_are_githubs() -> None:
    assert slug("Websocket: `WS /ws/runs/{run_id}` and `WS /ws/runs/current`") == (
        "websocket-ws-wsrunsrun_id-and-ws-wsrunscurrent"
    )
    assert slug("A Ray cluster") == "a-ray-cluster"
