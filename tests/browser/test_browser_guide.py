"""The lecture path (frontend/js/guide/) in a real browser against a real server: each step's
button creates the runs it says (checked through the API, setting by setting) and lands on the
view that shows them, with the panel open beside it; the texts are there; the panel works from the
keyboard. It saves docs/guide-desktop.png and docs/guide-phone.png (the README's pictures)."""

from __future__ import annotations

import math
import urllib.error
import urllib.request
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from harness.server import ROOT
from tests.browser.conftest import DESKTOP as DESKTOP_VIEW
from tests.browser.conftest import MARKS, Server, Watch, local_context
from tests.conftest import wait_for

DESKTOP = ROOT / "docs" / "guide-desktop.png"
PHONE = ROOT / "docs" / "guide-phone.png"
PHONE_SIZE = {"width": 390, "height": 844}
WAIT_MS = 30_000  # two shared cores, other tests beside: generous

pytestmark = MARKS

sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
expect = sync_api.expect


@pytest.fixture(scope="module")
def server_env() -> dict[str, str]:
    return {"MAKEMORE_MAX_RUNNING": "2"}  # the path creates big runs: keep the machine usable meanwhile


def pause(server: Server, *ids: str) -> None:
    """The runs a step made, paused once checked: the next steps need the cores."""
    for run_id in ids:
        server.send("PATCH", f"/api/runs/{run_id}", {"status": "paused"})


def address(page: Any) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(page.url).query).items()}


def click_step(page: Any, action: str, lands: str) -> dict[str, str]:
    """Press a step's button; the page navigates to `lands` (?run=, ?compare=, ?sweep=) with the
    panel open again and that step marked."""
    with page.expect_navigation(timeout=WAIT_MS):  # the finder's lands on the same address: a reload
        page.locator(f"#guide [data-guide='{action}']").click()
    assert f"{lands}=" in page.url
    expect(page.locator("#guide")).to_be_visible(timeout=WAIT_MS)
    expect(page.locator("#guide-open")).to_have_attribute("aria-expanded", "true")
    return address(page)


def check_run(run: dict[str, Any], name: str, **hparams: Any) -> None:
    assert run["name"] == name
    for key, value in hparams.items():
        where = run["config"] if key in ("init", "optimizer") else run["hparams"]
        assert where[key] == value, (name, key, where[key], value)


def step_marked(page: Any, n: int) -> None:
    expect(page.locator(f"#guide-step-{n}")).to_have_attribute("aria-current", "step")
    assert page.locator("#guide .guide-step[aria-current]").count() == 1


PHRASES = (
    "Full batch against minibatch 32",
    "every training example in every step",
    "The minibatch loss against the exact loss",
    "exact loss on the whole training and dev splits",
    "How do you determine this learning rate?",
    "~0.04",
    "0.03–0.1",
    "picked 0.1",
    "The fastest route to 2.17",
    "~8.5 s",
    "2.128 in ~17.5 s",
    "~0.01–0.02 higher",
)


def keyboard_and_texts(page: Any) -> None:
    """The header button opens the panel (focus on its title), Escape closes it (focus back)."""
    guide = page.locator("#guide")
    expect(guide).to_be_hidden()
    page.locator("#guide-open").focus()
    page.keyboard.press("Enter")
    expect(guide).to_be_visible()
    expect(page.locator("#guide-title")).to_be_focused()
    page.keyboard.press("Escape")
    expect(guide).to_be_hidden()
    expect(page.locator("#guide-open")).to_be_focused()
    page.keyboard.press("Enter")
    expect(guide).to_be_visible()
    page.keyboard.press("Tab")  # the first stop after the title: Close, then the step buttons
    expect(page.locator("#guide-close")).to_be_focused()
    text = guide.inner_text()
    missing = [phrase for phrase in PHRASES if phrase not in text]
    assert missing == []


def legend_of(page: Any, n: int) -> None:
    page.wait_for_function(
        "n => document.querySelectorAll('#compare-legend [data-run]').length === n", arg=n, timeout=WAIT_MS
    )


def full_batch_step(page: Any, server: Server) -> None:
    """1: full batch against minibatch 32, in the compare view; its picture."""
    ids = click_step(page, "fullbatch", "compare")["compare"].split(",")
    assert len(ids) == 2
    full, mini = (server.get(f"/api/runs/{i}") for i in ids)
    check_run(full, "full batch", batch_size=full["dataset"]["train_examples"], lr=0.1)
    check_run(mini, "minibatch 32", batch_size=32, lr=0.1)
    assert full["dataset"]["train_examples"] > 100_000  # every training example of the built-in names
    step_marked(page, 1)
    legend_of(page, 2)
    # the picture on training time, as the step's text says, once both lines have a few points
    # (a full-batch step does ~5,000 times a minibatch step's work: seconds on a loaded machine)
    wait_for(lambda: server.get(f"/api/runs/{full['id']}")["step"] >= 4, timeout=120)
    page.select_option("#compare-x-axis", "time")
    page.wait_for_function(
        """ids => ids.every(id => (document.getElementById('compare-chart').data || [])
            .concat(document.getElementById('compare-live').data || [])
            .some(t => t.meta === id && t.x.length > 2))""",
        arg=ids,
        timeout=WAIT_MS,
    )
    page.evaluate("() => document.activeElement.blur()")
    page.screenshot(path=str(DESKTOP))
    pause(server, *ids)


def exact_loss_step(page: Any, server: Server) -> str:
    """2: one run with frequent exact evaluations, in the single view. Its id."""
    run_id = click_step(page, "exact", "run")["run"]
    check_run(server.get(f"/api/runs/{run_id}"), "minibatch loss vs exact loss (eval every 500)", eval_every=500)
    step_marked(page, 2)
    page.wait_for_function(
        "() => ['minibatch loss', 'train loss', 'dev loss'].every(n => "
        "(document.getElementById('chart').data || []).some(t => t.name === n))",
        timeout=WAIT_MS,
    )
    return run_id


def learning_rate_step(page: Any, server: Server, shown: str) -> None:
    """3: the finder on the shown run, the sweep of 7 rates, the lecture's decay."""
    assert click_step(page, "finder", "run")["run"] == shown
    wait_for(lambda: lr_find_done(server, shown), timeout=120)
    step_marked(page, 3)
    pause(server, shown)
    sweep_id = click_step(page, "sweep", "sweep")["sweep"]
    sweep = server.get(f"/api/sweeps/{sweep_id}")
    server_delete(server, f"/api/sweeps/{sweep_id}")  # checked by its settings: no need to train it
    lrs = sorted(r["hparams"]["lr"] for r in sweep["runs"])
    assert len(lrs) == 7 and all(math.isclose(a, 10 ** (k / 2 - 3), rel_tol=1e-3) for k, a in enumerate(lrs))
    assert {(r["hparams"]["max_steps"], r["hparams"]["eval_every"]) for r in sweep["runs"]} == {(20_000, 2000)}
    expect(page.locator("#sweep-result")).to_be_visible(timeout=WAIT_MS)
    decay = server.get(f"/api/runs/{click_step(page, 'decay', 'run')['run']}")
    step = {"kind": "step", "at": 100_000, "factor": 0.1}
    check_run(decay, "lecture: lr 0.1, ×0.1 at 100k", lr=0.1, max_steps=200_000, schedule=step)
    pause(server, decay["id"])


def fastest_step(page: Any, server: Server) -> None:
    """4: the two fastest routes to 2.17 the app knows, side by side."""
    ids = click_step(page, "fastest", "compare")["compare"].split(",")
    sgd, adam = (server.get(f"/api/runs/{i}") for i in ids)
    step = {"kind": "step", "at": 25_000, "factor": 0.1}
    name = "fastest SGD: scaled init · lr 0.1 · ×0.1 at 25k"
    check_run(sgd, name, init="scaled", optimizer="sgd", lr=0.1, schedule=step)
    cosine = {"kind": "cosine", "min_lr": 0.0}
    name = "fastest Adam: scaled init · lr 0.01 · batch 64 · cosine 30k"
    check_run(adam, name, init="scaled", optimizer="adam", lr=0.01, batch_size=64, max_steps=30_000, schedule=cosine)
    step_marked(page, 4)
    legend_of(page, 2)
    pause(server, *ids)


def test_lecture_path(server: Server, browser: Any) -> None:
    watch = Watch()
    ctx = local_context(browser, watch, **DESKTOP_VIEW)
    page = watch.attach(ctx.new_page())
    page.goto(f"{server.base}/")
    keyboard_and_texts(page)
    full_batch_step(page, server)
    shown = exact_loss_step(page, server)
    learning_rate_step(page, server, shown)
    fastest_step(page, server)
    page.locator("#guide-close").click()
    expect(page.locator("#guide")).to_be_hidden()
    watch.check()
    ctx.close()

    # the phone: the panel as a bottom sheet over step 2's run, inside the screen's width
    watch = Watch()
    ctx = local_context(browser, watch, viewport=PHONE_SIZE, device_scale_factor=1, is_mobile=True, has_touch=True)
    page = watch.attach(ctx.new_page())
    page.goto(f"{server.base}/?run={shown}")
    page.wait_for_function("() => (document.getElementById('chart').data || []).length > 0", timeout=WAIT_MS)
    page.locator("#guide-open").click()
    guide = page.locator("#guide")
    expect(guide).to_be_visible()
    assert page.evaluate("() => document.documentElement.scrollWidth") <= PHONE_SIZE["width"]
    box = guide.bounding_box()
    assert box["x"] >= 0 and box["x"] + box["width"] <= PHONE_SIZE["width"]
    assert box["y"] >= 0 and box["y"] + box["height"] <= PHONE_SIZE["height"]
    page.screenshot(path=str(PHONE))
    watch.check()
    ctx.close()


def lr_find_done(server: Server, run_id: str) -> bool:
    try:
        found = server.get(f"/api/runs/{run_id}/lr-find")
    except urllib.error.HTTPError as e:
        if e.code == 404:
            return False  # still sweeping
        raise
    return found.get("suggestion") is not None


def server_delete(server: Server, path: str) -> None:
    req = urllib.request.Request(server.base + path, method="DELETE")
    with urllib.request.urlopen(req, timeout=30) as r:
        assert r.status == 204
