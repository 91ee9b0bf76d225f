"""The page takes a run's defaults, bounds and choices from the server (GET /api/schema, read by
frontend/js/schema.js), none written twice: the settings' inputs carry no min or max, their
selects no options, and no module or the page holds a copy of a distinctive bound or default."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient

from backend.api.schemas import HParamsUpdate, RunCreate
from backend.api.sweepschemas import SweepCreate

FRONTEND = Path(__file__).resolve().parents[2] / "frontend"


def _numbers(schema: Any) -> set[float]:
    """Every bound and default in a JSON schema."""
    found: set[float] = set()
    if isinstance(schema, dict):
        for key, value in schema.items():
            keys = ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "default")
            if key in keys and isinstance(value, int | float) and not isinstance(value, bool):
                found.add(value)
            found |= _numbers(value)
    elif isinstance(schema, list):
        for value in schema:
            found |= _numbers(value)
    return found


def _without_comments(path: Path) -> str:
    text = path.read_text()
    if path.suffix == ".html":
        return re.sub(r"<!--.*?-->", "", text, flags=re.S)
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
    return re.sub(r"(?<![:\"'`])//.*", "", text)


def test_the_schema_answer_is_the_models(make_client: Any) -> None:
    client: TestClient = make_client(max_running=3)
    body = client.get("/api/schema").json()
    assert body == {
        "create": RunCreate.model_json_schema(),
        "update": HParamsUpdate.model_json_schema(),
        "sweep": SweepCreate.model_json_schema(),
        "max_running": 3,  # the server's, for the queued run's text
    }
    assert body["create"]["properties"]["max_steps"]["default"] == 200_000


def test_the_page_holds_no_copy_of_the_settings_bounds() -> None:
    html = _without_comments(FRONTEND / "index.html")
    settings = re.findall(r"<input [^>]*data-setting=[^>]*>", html)
    assert len(settings) >= 15  # the steering controls and the New-run form
    assert [tag for tag in settings if re.search(r"\s(min|max|value)=", tag)] == []
    selects = re.findall(r"<select [^>]*data-choices=\"(\w+)\"[^>]*>(.*?)</select>", html, flags=re.S)
    assert {field for field, _ in selects} == {"init", "optimizer", "schedule"}
    assert [options for _, options in selects if options.strip()] == []
    # nor any module or the page: a distinctive number (1,024 and up; 1000 is everywhere) of the
    # create body's bounds and defaults, as 200000 or 200_000
    distinctive = {int(n) for n in _numbers(RunCreate.model_json_schema()) if n >= 1024 and n == int(n)}
    assert {200_000, 1_000_000, 100_000_000, 2147483647} <= distinctive
    copies = []
    for path in [FRONTEND / "index.html", *sorted((FRONTEND / "js").rglob("*.js"))]:
        text = _without_comments(path)
        for n in distinctive:
            digits = "_?".join(str(n))
            if re.search(rf"(?<![\w.]){digits}(?![\w.])", text):
                copies.append(f"{path.relative_to(FRONTEND)}: {n}")
    assert copies == []
    assert "DEFAULTS" not in (FRONTEND / "js" / "newrun.js").read_text()
