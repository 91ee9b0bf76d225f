"""The run's downloads in a real browser (Chromium through Playwright) against a real server
process: "Weights", "History (CSV)" and "As code" in the page's header, each clicked, each file
saved under the server's name and read: a safetensors header, the CSV's header line, a script
that imports torch."""

from __future__ import annotations

import json
import struct
from pathlib import Path
from typing import Any

import pytest

from tests.browser.conftest import MARKS, Watch, call
from tests.conftest import wait_for

WAIT_MS = 60_000  # the machine is shared and slow

pytestmark = MARKS

sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
expect = sync_api.expect


def download(page: Any, link: str, tmp_path: Path) -> tuple[str, bytes]:
    """Click the link; (the file's name, its bytes)."""
    with page.expect_download(timeout=WAIT_MS) as d:
        page.get_by_role("link", name=link, exact=True).click()
    name: str = d.value.suggested_filename
    path = tmp_path / name
    d.value.save_as(path)
    return name, path.read_bytes()


def test_the_header_downloads_the_weights_the_history_and_the_code(
    base: str, context: tuple[Any, Watch], tmp_path: Path
) -> None:
    run = call(base, "POST", "/api/runs", {"name": "to download", "max_steps": 200, "eval_every": 100})
    rid = run["id"]
    wait_for(lambda: call(base, "GET", f"/api/runs/{rid}")["status"] == "finished", timeout=120, what="the run")
    ctx, watch = context
    page = watch.attach(ctx.new_page())
    page.goto(f"{base}/?run={rid}")
    nav = page.get_by_role("navigation", name="download this run")
    expect(nav).to_be_visible(timeout=WAIT_MS)
    for link in ("Weights", "History (CSV)", "As code"):
        expect(nav.get_by_role("link", name=link, exact=True)).to_have_attribute("download", "")

    name, data = download(page, "Weights", tmp_path)
    assert name == f"makemore-{rid}-step200.safetensors"
    (n,) = struct.unpack("<Q", data[:8])  # safetensors: a little-endian u64, then that much JSON
    header = json.loads(data[8 : 8 + n])
    assert {"C", "W1", "b1", "W2", "b2"} <= set(header)

    name, data = download(page, "History (CSV)", tmp_path)
    assert name == f"run-{rid}.csv"
    lines = data.decode().splitlines()
    assert lines[0] == "step,loss,lr,batch_size,train_loss,dev_loss"
    assert [line.split(",")[0] for line in lines[1:]] == [*map(str, range(200)), "200"]  # and the last evaluation

    name, data = download(page, "As code", tmp_path)
    assert name == f"makemore-to-download-{rid}.py"
    text = data.decode()
    assert "import torch" in text.splitlines()[:30] and f"# run {rid}: 'to download'" in text
    compile(text, name, "exec")  # Python, whole
    watch.check()
