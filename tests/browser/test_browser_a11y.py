"""The page with a keyboard and a screen reader, in a real browser (Chromium through Playwright)
against a real server process: Tab reaches the steering in a few presses however many runs are
stored (the runs list is one tab stop, its runs and their buttons reached with the arrow keys);
Home/End/PageUp/PageDown on a training run's sliders ask first; the run's status, confirmed
changes and samples reach polite live regions; the loss chart has a summary kept current and its
evaluations as a table; and axe-core finds no serious or critical violation on the single,
compare and sweep views.
"""

from __future__ import annotations

import re
import urllib.error
from typing import Any

import pytest

from tests.browser.conftest import MARKS, Server, Watch
from tests.browser.test_browser import WAIT_MS, open_run, trace, wait_steps, wait_trace
from tests.conftest import wait_for

sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
expect = sync_api.expect

pytestmark = MARKS

TAB_LIMIT = 80  # presses before giving up on reaching an element
MAX_TABS_TO_LR = 24  # 21 as this test was written; 205 with 31 runs before the runs list was one stop


def open_training(ctx: Any, watch: Watch, server: Server, spec: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
    """A run that trains, and a page that shows it (its address names it: later runs do not take
    its place)."""
    try:
        page, run = open_run(ctx, watch, server, {"lr": 0.1, "max_steps": 10**8, **spec})
    except urllib.error.HTTPError as e:
        raise AssertionError(f"{e.code}: {e.read()!r}") from e
    page.goto(f"{server.base}/?run={run['id']}")
    expect(page.locator("#status")).to_have_text("running", timeout=WAIT_MS)
    return page, run


def new_runs(server: Server, n: int) -> list[dict[str, Any]]:
    """Runs that do not train (each gets its step-0 evaluation in the server, without a worker)."""
    return [server.send("POST", "/api/runs", {"start": False, "name": f"idle {i}"}) for i in range(n)]


def tabs_to(page: Any, element_id: str, limit: int = TAB_LIMIT) -> int:
    """Tab presses from the top of the page (nothing focused) to the element."""
    # the page's heading, first in it, focused and left: Tab starts from there (a blur alone would
    # leave the start where the focus was)
    page.evaluate(
        """() => { const h = document.querySelector('h1'); h.tabIndex = -1; h.focus(); h.blur();
                   h.removeAttribute('tabindex'); }"""
    )
    visited: list[str] = []
    for n in range(1, limit + 1):
        page.keyboard.press("Tab")
        here = page.evaluate("() => document.activeElement.id || document.activeElement.className")
        visited.append(here)
        if here == element_id:
            return n
    raise AssertionError(f"#{element_id} not reached in {limit} presses of Tab: {visited}")


def visited_to(page: Any, element_id: str) -> list[str]:
    """What Tab visits on the way to the element (a failure's message)."""
    try:
        tabs_to(page, element_id, limit=tabs_to(page, element_id) - 1)
    except AssertionError as e:
        return [str(e)]
    return []


def focused_run(page: Any) -> list[str]:
    """The focused element's run id and class."""
    result: list[str] = page.evaluate(
        """() => { const a = document.activeElement, li = a.closest('.run-row');
                   return [li ? li.dataset.id : '', a.className]; }"""
    )
    return result


def run_ids(page: Any) -> list[str]:
    ids: list[str] = page.locator("#runs li.run-row").evaluate_all("lis => lis.map(li => li.dataset.id)")
    return ids


def open_page(ctx: Any, watch: Watch, server: Server) -> Any:
    """The page, once its runs list shows every stored run."""
    runs = len(server.get("/api/runs"))
    page = watch.attach(ctx.new_page())
    page.goto(server.base + "/")
    expect(page.locator("#runs li.run-row")).to_have_count(runs, timeout=WAIT_MS)
    expect(page.locator("#connection")).to_have_text("live", timeout=WAIT_MS)
    page.wait_for_function(  # every control there (the legend's buttons), the chart drawn
        "() => document.querySelector('#chart .main-svg') && document.querySelectorAll('#chart-legend button').length",
        timeout=WAIT_MS,
    )
    return page


@pytest.mark.timeout(240)
def test_tab_order_and_the_runs_list_keyboard(server: Server, context: tuple[Any, Watch]) -> None:
    """Tab reaches the lr slider in a few presses, as many with 31 runs stored as with 4 (each run
    added 6 tab stops: 205 presses with 31 runs), and Start before the tools under the chart;
    Up/Down/Home/End move between runs, Right/Left between a run's buttons, Enter shows a run."""
    ctx, watch = context
    new_runs(server, 3)  # beside the server's first run
    page = open_page(ctx, watch, server)
    to_start, to_lr = tabs_to(page, "start"), tabs_to(page, "lr-slider")
    # from Start: New run, Test loss, the runs list (one stop), the lr slider
    assert to_lr - to_start == 4, visited_to(page, "lr-slider")
    # before Start: the header's links, the chart's view controls, legend and table button (and the
    # panels over the tools); not the tools under the chart, nor the runs
    assert to_lr <= MAX_TABS_TO_LR, visited_to(page, "lr-slider")
    assert to_start < tabs_to(page, "lrfind-min") and to_start < tabs_to(page, "next-context")
    page.close()

    new_runs(server, 27)
    page = open_page(ctx, watch, server)
    assert page.locator("#runs li.run-row").count() >= 30
    assert tabs_to(page, "lr-slider") == to_lr
    assert tabs_to(page, "start") == to_start
    check_list_keys(page, run_ids(page))
    watch.check()


def check_list_keys(page: Any, ids: list[str]) -> None:
    """In the list: its one stop (the run shown, the newest, on its name), the arrow keys, Enter."""
    page.keyboard.press("Tab")
    page.keyboard.press("Tab")
    page.keyboard.press("Tab")
    assert focused_run(page) == [ids[0], "run-name"], focused_run(page)
    page.keyboard.press("Tab")  # out of the list at once
    assert page.evaluate("() => document.activeElement.id") == "lr-slider"
    page.keyboard.press("Shift+Tab")
    assert focused_run(page) == [ids[0], "run-name"]
    page.keyboard.press("ArrowDown")
    page.keyboard.press("ArrowDown")
    assert focused_run(page) == [ids[2], "run-name"]
    page.keyboard.press("ArrowUp")
    assert focused_run(page) == [ids[1], "run-name"]
    page.keyboard.press("End")
    assert focused_run(page) == [ids[-1], "run-name"]
    page.keyboard.press("Home")
    assert focused_run(page) == [ids[0], "run-name"]
    page.keyboard.press("ArrowDown")
    page.keyboard.press("ArrowRight")
    assert focused_run(page) == [ids[1], "run-toggle"]
    page.keyboard.press("ArrowRight")
    assert focused_run(page) == [ids[1], "run-rename"]
    page.keyboard.press("ArrowLeft")
    page.keyboard.press("ArrowLeft")
    page.keyboard.press("ArrowLeft")
    assert focused_run(page) == [ids[1], "run-select"]
    # the stop stays where the user left it: Tab out and back comes to the same control
    page.keyboard.press("Tab")
    page.keyboard.press("Shift+Tab")
    assert focused_run(page) == [ids[1], "run-select"]
    assert page.locator("#runs [tabindex='0']").count() == 1
    page.keyboard.press("ArrowRight")
    page.keyboard.press("Enter")  # on the name: shows that run
    expect(page.locator("#run-info")).to_contain_text(ids[1], timeout=WAIT_MS)
    assert page.url.endswith(f"?run={ids[1]}")
    assert focused_run(page) == [ids[1], "run-name"]  # the focus stayed


@pytest.mark.timeout(180)
def test_keyboard_end_on_a_training_runs_lr_slider_asks_first(server: Server, context: tuple[Any, Watch]) -> None:
    """End on the lr slider of a run that trains does not set lr 10 at once: the page asks, and a
    No changes nothing; Home, accepted, sets the lowest rate, confirmed by the server and said in
    the change's live region; the status's region says Pause; the focus never moves to them."""
    ctx, watch = context
    page, run = open_training(ctx, watch, server, {})
    wait_steps(page, 50)
    slider = page.locator("#lr-slider")
    slider.focus()
    asked: list[str] = []
    page.once("dialog", lambda d: (asked.append(d.message), d.dismiss()))
    page.keyboard.press("End")
    wait_for(lambda: bool(asked), timeout=10, what="End asked first")
    assert "10" in asked[0] and "0.1" in asked[0], asked
    assert slider.input_value() == "-1"
    expect(page.locator("#lr-pending")).to_be_hidden()
    assert server.get(f"/api/runs/{run['id']}")["hparams"]["lr"] == 0.1
    page.keyboard.press("PageUp")  # asked as well (no handler: Playwright dismisses it)
    assert slider.input_value() == "-1"

    page.once("dialog", lambda d: (asked.append(d.message), d.accept()))
    page.keyboard.press("Home")
    expect(page.locator("#lr-value")).to_have_attribute("data-value", "0.0001", timeout=10_000)
    assert len(asked) == 2 and "0.0001" in asked[1], asked
    expect(page.locator("#live-change")).to_contain_text("confirmed: lr 0.0001", timeout=10_000)
    assert page.evaluate("() => document.activeElement.id") == "lr-slider"

    page.keyboard.press("ArrowRight")  # a step: no question
    expect(page.locator("#lr-value")).to_have_attribute("data-value", "0.000102", timeout=10_000)
    assert len(asked) == 2

    page.click("#pause")
    expect(page.locator("#live-status")).to_contain_text("paused", timeout=10_000)
    for region in ("#live-status", "#live-change", "#live-samples"):
        assert page.locator(region).get_attribute("aria-live") == "polite"
        assert page.locator(region).get_attribute("role") == "status"
    slider.focus()
    page.keyboard.press("End")  # a paused run: the key does what it says, unasked
    expect(page.locator("#lr-value")).to_have_attribute("data-value", "10", timeout=10_000)
    assert len(asked) == 2
    watch.check()


@pytest.mark.timeout(180)
def test_chart_summary_table_and_sample_announcements(server: Server, context: tuple[Any, Watch]) -> None:
    """The loss chart's panel is described by a line kept current (the step, the minibatch loss,
    the last evaluation), its evaluations a table on demand; a draw of samples is said in the
    samples' live region with its names, the focus staying on Sample."""
    ctx, watch = context
    page, _ = open_training(ctx, watch, server, {"eval_every": 200})
    # plotly's SVG is hidden from screen readers; the panel is described by the summaries beside it
    assert page.locator("#chart").get_attribute("aria-hidden") == "true"
    assert page.locator("#lr-chart").get_attribute("aria-hidden") == "true"
    panel = page.locator("section.chart-panel")
    assert panel.get_attribute("aria-label") == "loss chart"
    assert panel.get_attribute("aria-describedby") == "chart-summary lr-summary"
    summary = page.locator("#chart-summary")
    line = re.compile(r"^step [\d,]+: minibatch loss [\d.]+, dev [\d.]+, train [\d.]+ at step [\d,]+$")
    expect(summary).to_have_text(line, timeout=WAIT_MS)
    first = summary.inner_text()
    wait_steps(page, 600)
    expect(summary).not_to_have_text(first)
    text = summary.inner_text()
    step = int(text.split(":")[0].removeprefix("step ").replace(",", ""))
    assert step >= 600
    at = int(text.rsplit("at step ", 1)[1].replace(",", ""))
    assert at >= 200  # a later evaluation than step 0's
    assert page.locator("#lr-summary").inner_text().endswith("base learning rate 0.1")

    button = page.locator("#chart-table-button")
    assert button.get_attribute("aria-expanded") == "false"
    button.click()
    assert button.get_attribute("aria-expanded") == "true"
    rows = page.locator("#chart-table tbody tr")
    expect(rows.first).to_be_visible()
    assert page.locator("#chart-table thead th").all_inner_texts() == ["step", "train loss", "dev loss"]
    newest = int(rows.first.locator("th").inner_text().replace(",", ""))
    drawn = trace(page, "chart", "dev loss")["steps"][-1]  # the chart draws after the table, never before
    assert newest >= drawn and rows.count() >= 2

    page.click("#pause")
    expect(page.locator("#status")).to_have_text("paused", timeout=10_000)
    page.locator("#sample-n").fill("5")
    page.locator("#sample-button").focus()
    page.keyboard.press("Enter")
    expect(page.locator("#samples li")).to_have_count(5, timeout=10_000)
    names = page.locator("#samples li").evaluate_all("lis => lis.map(li => li.dataset.name || '(empty)')")
    expect(page.locator("#live-samples")).to_contain_text("5 names sampled, ", timeout=10_000)
    assert page.locator("#live-samples").inner_text().endswith(": " + ", ".join(names))
    expect(page.locator("#sample-button")).to_be_focused()
    watch.check()


def serious(page: Any) -> list[str]:
    """axe-core's serious and critical violations on the page, one line each."""
    from axe_playwright_python.sync_playwright import Axe

    results = Axe().run(page)
    return [
        f"{v['id']} ({v['impact']}): {v['help']}: {[n['target'] for n in v['nodes']][:5]}"
        for v in results.response["violations"]
        if v["impact"] in ("serious", "critical")
    ]


def assert_no_serious(page: Any) -> None:
    found = serious(page)
    assert not found, "\n".join(found)


@pytest.mark.timeout(240)
def test_axe_single_compare_and_sweep_views(server: Server, context: tuple[Any, Watch]) -> None:
    """No serious or critical axe-core violation on the single view (a run training), the compare
    view and the sweep view."""
    pytest.importorskip("axe_playwright_python", reason="axe-playwright-python is not installed")
    ctx, watch = context
    page, run = open_training(ctx, watch, server, {"eval_every": 200})
    wait_steps(page, 300)
    wait_trace(page, "characters", 27, chart="embedding-chart")
    page.locator("#sample-button").click()
    expect(page.locator("#samples li")).to_have_count(20, timeout=10_000)
    page.locator("#chart-table-button").click()
    assert_no_serious(page)
    server.send("PATCH", f"/api/runs/{run['id']}", {"status": "paused"})

    other = new_runs(server, 1)[0]
    page.goto(f"{server.base}/?compare={run['id']},{other['id']}")
    expect(page.locator("#compare-table tbody tr")).to_have_count(2, timeout=WAIT_MS)
    page.wait_for_selector("#compare-chart .modebar", state="attached", timeout=WAIT_MS)  # plotly's, not the preview
    assert_no_serious(page)

    spec = {"base": {"max_steps": 300, "eval_every": 100}, "grid": {"lr": [0.1, 0.05]}}
    sweep = server.send("POST", "/api/sweeps", spec)
    page.goto(f"{server.base}/?sweep={sweep['id']}")
    expect(page.locator("#sweep-status")).not_to_have_text("", timeout=WAIT_MS)
    expect(page.locator("#compare-table tbody tr")).to_have_count(2, timeout=WAIT_MS)
    assert_no_serious(page)
    watch.check()
