"""Runs that can be told apart, in a real browser (issue 22): the compare table's data, sweep,
init and optimizer columns; 20 runs in 20 colours far apart; the x axis aligned by log steps or
by the fraction of each run; the compare view with nothing chosen offers the latest runs and the
sweep form open at the lecture's search; the runs list shows each run's rate and batch now; the
run's header copies its id."""

from __future__ import annotations

import itertools
import json
import math
import urllib.request
from typing import Any

import pytest

from tests.browser.conftest import MARKS, Server, Watch
from tests.conftest import wait_for

WAIT_MS = 30_000

pytestmark = MARKS

sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
expect = sync_api.expect
POKEMON = "\n".join(["pikachu", "bulbasaur", "charmander", "squirtle", "eevee", "mewtwo", "snorlax"] * 10)


def upload(server: Server, name: str, text: str) -> dict[str, Any]:
    """POST /api/datasets with the file, as multipart/form-data."""
    boundary = "identity-test-boundary"
    body = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{name}"\r\n'
        f"Content-Type: text/plain\r\n\r\n{text}\r\n--{boundary}--\r\n"
    ).encode()
    headers = {"Content-Type": f"multipart/form-data; boundary={boundary}"}
    req = urllib.request.Request(server.base + "/api/datasets", data=body, method="POST", headers=headers)
    with urllib.request.urlopen(req, timeout=30) as r:
        out: dict[str, Any] = json.load(r)
        return out


def delete(server: Server, path: str) -> None:
    with urllib.request.urlopen(urllib.request.Request(server.base + path, method="DELETE"), timeout=30):
        pass


def finished(server: Server, run_id: str) -> dict[str, Any]:
    wait_for(lambda: server.get(f"/api/runs/{run_id}")["status"] == "finished", timeout=120)
    run: dict[str, Any] = server.get(f"/api/runs/{run_id}")
    return run


def lab(hex_colour: str) -> tuple[float, float, float]:
    """sRGB '#rrggbb' -> CIE Lab (D65)."""

    def linear(c: float) -> float:
        return ((c + 0.055) / 1.055) ** 2.4 if c > 0.04045 else c / 12.92

    r, g, b = (linear(int(hex_colour[i : i + 2], 16) / 255) for i in (1, 3, 5))
    x = (0.4124 * r + 0.3576 * g + 0.1805 * b) / 0.95047
    y = 0.2126 * r + 0.7152 * g + 0.0722 * b
    z = (0.0193 * r + 0.1192 * g + 0.9505 * b) / 1.08883

    def f(t: float) -> float:
        return t ** (1 / 3) if t > 0.008856 else 7.787 * t + 16 / 116

    return 116 * f(y) - 16, 500 * (f(x) - f(y)), 200 * (f(y) - f(z))


def test_compare_opens_on_the_latest_runs_and_the_sweep_form(server: Server, context: tuple[Any, Watch]) -> None:
    for lr in (0.05, 0.2):
        server.send("POST", "/api/runs", {"lr": lr, "start": False, "n_hidden": 20})
    latest = [r["id"] for r in server.get("/api/runs?limit=4")]
    ctx, watch = context
    page = watch.attach(ctx.new_page())
    page.goto(f"{server.base}/?compare=")
    start = page.locator("#compare-start")
    expect(start).to_be_visible(timeout=WAIT_MS)
    boxes = start.locator("input[type=checkbox]")
    expect(boxes).to_have_count(len(server.get("/api/runs")))
    assert [b.get_attribute("value") for b in boxes.all()][: len(latest)] == latest
    # the sweep form open, at the lecture's search: 7 rates from 0.001 to 1, 20,000 steps each
    assert page.evaluate("() => document.querySelector('.sweep-form-panel').open")
    expect(page.locator("#sweep-lr-n")).to_have_value("7")
    expect(page.locator("#sweep-lr-min")).to_have_value("0.001")
    expect(page.locator("#sweep-lr-max")).to_have_value("1")
    expect(page.locator("#sweep-steps")).to_have_value("20000")
    page.locator("#compare-start-go").click()
    page.wait_for_function("want => location.search === want", arg=f"?compare={','.join(latest)}", timeout=WAIT_MS)
    expect(page.locator("#compare-table tbody tr")).to_have_count(len(latest))
    expect(start).to_be_hidden()


def test_table_columns_palette_and_x_alignment(server: Server, context: tuple[Any, Watch]) -> None:
    up = upload(server, "pokemon.txt", POKEMON)
    short = server.send("POST", "/api/runs", {"max_steps": 300, "eval_every": 100, "n_hidden": 20})
    long = server.send("POST", "/api/runs", {"max_steps": 3000, "eval_every": 1000, "n_hidden": 20})
    on_upload = server.send(
        "POST", "/api/runs", {"dataset": up["id"], "optimizer": "adam", "init": "scaled", "start": False}
    )
    two_rates = {"base": {"max_steps": 10**6}, "lr_range": {"min": 0.1, "max": 1, "n": 2}}
    sweep = server.send("POST", "/api/sweeps", two_rates)
    delete(server, f"/api/sweeps/{sweep['id']}")
    others = [server.send("POST", "/api/runs", {"lr": 0.01 * (i + 1), "start": False}) for i in range(15)]
    ids = [short["id"], long["id"], on_upload["id"], *(r["id"] for r in sweep["runs"]), *(r["id"] for r in others)]
    assert len(ids) == 20
    finished(server, short["id"]), finished(server, long["id"])

    ctx, watch = context
    page = watch.attach(ctx.new_page())
    page.goto(f"{server.base}/?compare={','.join(ids)}")
    rows = page.locator("#compare-table tbody tr")
    expect(rows).to_have_count(20, timeout=WAIT_MS)
    headers = page.locator("#compare-table thead th button").all_inner_texts()
    assert {"data", "sweep", "init", "optimizer", "lr", "batch"} <= set(headers), headers

    def cell(run_id: str, col: str) -> Any:
        return page.locator(f"#compare-table tbody tr[data-run='{run_id}'] td[data-col='{col}']")

    expect(cell(on_upload["id"], "dataset")).to_have_text("pokemon.txt")
    expect(cell(on_upload["id"], "init")).to_have_text("scaled")
    expect(cell(on_upload["id"], "optimizer")).to_have_text("adam")
    expect(cell(sweep["runs"][0]["id"], "sweep")).to_have_text(sweep["name"], timeout=WAIT_MS)
    expect(cell(short["id"], "sweep")).to_have_text("")

    # 20 runs, 20 colours, no two alike (CIE76 distance in Lab at least 25: not just unequal)
    swatches = page.evaluate(
        """() => [...document.querySelectorAll('#compare-legend button')]
                   .map(b => b.style.getPropertyValue('--swatch').trim())"""
    )
    assert len(swatches) == 20 and len(set(swatches)) == 20, swatches
    closest = min(math.dist(lab(a), lab(b)) for a, b in itertools.combinations(swatches, 2))
    assert closest >= 25, closest

    def axis_and_ends() -> tuple[str, dict[str, float]]:
        out: tuple[str, dict[str, float]] = page.evaluate(
            """() => { const el = document.getElementById('compare-chart');
                       const ends = {};
                       for (const t of el.data.filter(t => t.meta && t.x.length > 1)) ends[t.meta] = Math.max(...t.x);
                       return [el.layout.xaxis.title.text, ends]; }"""
        )
        return out

    page.wait_for_function(
        """ids => ids.every(id => (document.getElementById('compare-chart').data || [])
                                    .some(t => t.meta === id && t.x.length > 1))""",
        arg=[short["id"], long["id"]],
        timeout=WAIT_MS,
    )
    title, ends = axis_and_ends()
    assert title == "step" and ends[long["id"]] > 5 * ends[short["id"]]  # the long run squeezes the short
    page.select_option("#compare-x-axis", "fraction")
    page.wait_for_function(
        "() => document.getElementById('compare-chart').layout.xaxis.title.text === 'fraction of each run'",
        timeout=WAIT_MS,
    )
    title, ends = axis_and_ends()
    assert ends[short["id"]] == pytest.approx(1, abs=0.02) and ends[long["id"]] == pytest.approx(1, abs=0.02)
    page.select_option("#compare-x-axis", "logstep")
    page.wait_for_function(
        "() => document.getElementById('compare-chart').layout.xaxis.title.text === 'step (log scale)'",
        timeout=WAIT_MS,
    )
    title, ends = axis_and_ends()
    assert ends[long["id"]] == pytest.approx(math.log10(3001), abs=0.05)
    assert ends[short["id"]] == pytest.approx(math.log10(301), abs=0.05)


def test_runs_list_shows_the_rate_now_and_the_header_copies_the_id(server: Server, context: tuple[Any, Watch]) -> None:
    run = server.send("POST", "/api/runs", {"start": False, "n_hidden": 20})
    assert run["name"] == "lr 0.1 · b 32 · 3x10->20"
    server.send("PATCH", f"/api/runs/{run['id']}", {"lr": 0.0178})
    ctx, watch = context
    ctx.grant_permissions(["clipboard-read", "clipboard-write"])
    page = watch.attach(ctx.new_page())
    page.goto(f"{server.base}/?run={run['id']}")
    row = page.locator(f".run-row[data-id='{run['id']}']")
    expect(row.locator(".run-name")).to_have_text(run["name"], timeout=WAIT_MS)
    expect(row.locator(".run-hp")).to_have_text("lr 0.0178 · b 32")
    expect(page.locator("#run-id")).to_have_text(run["id"], timeout=WAIT_MS)
    page.locator("#copy-run-id").click()
    expect(page.locator("#copy-run-id")).to_have_text("Copied")
    assert page.evaluate("() => navigator.clipboard.readText()") == run["id"]
