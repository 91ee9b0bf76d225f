"""Data-aware defaults on the page (issue 22), in a real browser against a real server process on
the built-in names: the New-run form prefills max steps and evaluate-every from the chosen
dataset's suggestion (GET /api/datasets), shows the short-list advice only for a short list and
what the built-in list is; a run on 50 names that overfits gets the chart's notice, and its
button branches from the checkpoint at or before the best dev loss."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from backend.config import DEFAULT_DATA
from tests.browser.conftest import MARKS, call

WAIT_MS = 60_000  # the machine is shared and slow

pytestmark = MARKS

sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
expect = sync_api.expect

NAMES = DEFAULT_DATA.read_text().split()


def upload(page: Any, path: Path) -> dict[str, Any]:
    """Upload & train: the New-run form opens with the upload chosen. Its dataset record."""
    page.set_input_files("#upload-file", str(path))
    page.click("#upload-button")
    expect(page.locator("#new-run-form")).to_be_visible(timeout=WAIT_MS)
    expect(page.locator("#nr-dataset option:checked")).to_contain_text(path.name)
    chosen = page.locator("#nr-dataset").input_value()
    return next(d for d in call(page.url.split("/?")[0].rstrip("/"), "GET", "/api/datasets") if d["id"] == chosen)


@pytest.mark.timeout(120)
def test_the_form_prefills_from_the_datasets_suggestion(base: str, page: Any, tmp_path: Path) -> None:
    page.goto(base + "/")
    expect(page.locator("#connection")).to_have_text("live", timeout=WAIT_MS)
    # the data panel says what the built-in list is
    expect(page.locator("#builtin-about")).to_contain_text("2017", timeout=WAIT_MS)
    expect(page.locator("#builtin-about")).to_contain_text("2.1677")
    short = tmp_path / "short.txt"
    short.write_text("\n".join(NAMES[3000:3300]) + "\n")
    d = upload(page, short)
    s = d["suggested"]
    assert s["short"] and 1_000 <= s["max_steps"] < 200_000
    expect(page.locator("#nr-max-steps")).to_have_value(str(s["max_steps"]))
    expect(page.locator("#nr-eval-every")).to_have_value(str(s["eval_every"]))
    expect(page.locator("#nr-advice")).to_be_visible()
    expect(page.locator("#nr-advice")).to_contain_text("A short list (300 words")
    expect(page.locator("#nr-advice")).to_contain_text(f"{s['max_steps']:,} steps")
    expect(page.locator("#nr-about")).to_be_hidden()
    # the built-in names: the lecture's length, no advice, what the list is
    page.select_option("#nr-dataset", next(x["id"] for x in call(base, "GET", "/api/datasets") if x["builtin"]))
    expect(page.locator("#nr-max-steps")).to_have_value("200000")
    expect(page.locator("#nr-eval-every")).to_have_value("1000")
    expect(page.locator("#nr-advice")).to_be_hidden()
    expect(page.locator("#nr-about")).to_contain_text("makemore's names.txt has 32,033 names")
    # a length typed in stays when the data changes
    page.locator("#nr-max-steps").fill("1234")
    page.select_option("#nr-dataset", d["id"])
    expect(page.locator("#nr-max-steps")).to_have_value("1234")
    expect(page.locator("#nr-advice")).to_be_visible()
    page.click("#nr-cancel")


@pytest.mark.timeout(300)
def test_the_overfit_notice_branches_from_the_best(base: str, page: Any, tmp_path: Path) -> None:
    page.goto(base + "/")
    expect(page.locator("#connection")).to_have_text("live", timeout=WAIT_MS)
    tiny = tmp_path / "tiny.txt"
    tiny.write_text("\n".join(NAMES[1000:1050]) + "\n")
    upload(page, tiny)
    page.locator("#nr-max-steps").fill("30000")
    page.locator("#nr-eval-every").fill("100")
    page.click("#nr-create")
    expect(page.locator("#new-run-form")).to_be_hidden(timeout=WAIT_MS)
    rid = call(base, "GET", "/api/runs/current")["id"]
    expect(page.locator("#run-info")).to_contain_text(rid, timeout=WAIT_MS)
    notice = page.locator("#overfit-notice")
    deadline = time.monotonic() + 200
    while True:
        expect(notice).to_be_visible(timeout=200_000)
        run = call(base, "PATCH", f"/api/runs/{rid}", {"status": "paused"})  # it stays as it is: a steady target
        o = run["overfit"]
        if o is not None:
            break
        # an evaluation between the notice and the pause found a new best (a tiny list's dev loss is
        # noisy): the signal rightly went away; train on until it comes back
        assert time.monotonic() < deadline, "the overfit signal never held still"
        call(base, "PATCH", f"/api/runs/{rid}", {"status": "running"})
    expect(notice).to_contain_text(f"was at step {o['best_step']:,}", timeout=WAIT_MS)
    expect(notice).to_contain_text("Overfitting")
    steps = [c["step"] for c in call(base, "GET", f"/api/runs/{rid}/checkpoints")]
    at = max(s for s in steps if s <= o["best_step"])  # the nearest kept checkpoint at or before the best
    page.click("#overfit-branch")
    page.wait_for_url(lambda url: "run=" in url and rid not in url, timeout=WAIT_MS)
    child = call(base, "GET", "/api/runs/" + page.url.split("run=")[1].split("&")[0])
    assert child["parent"] == {"id": rid, "step": at}
    expect(page.locator("#run-info")).to_contain_text(child["id"], timeout=WAIT_MS)
