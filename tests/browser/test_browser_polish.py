"""Issue 22's polish, in a real browser at 1440x900 and 390x844: the header's run name readable
on a phone; long sampled names on one line each with their badge beside them; the Branch
dialog's checkpoint select whole; one status text made from the status's data (the hint only
while true); a refused learning rate said next to its field in one wording, with the server's
bounds; the finder's suggestion applied as shown; a queued run's empty chart; the token page
styled; the mode bar off the change labels; the compare view within a phone's width. One run
trains at a time here (MAKEMORE_MAX_RUNNING=1), so a second one queues."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest

from harness.server import running_server
from tests.browser.conftest import MARKS, Server, Watch, call, local_context
from tests.conftest import wait_for

WAIT_MS = 30_000
PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1440, "height": 900}
VIEWPORTS = (DESKTOP, PHONE)
LONG_NAME = "names.txt, the lecture's net at lr 0.1, batch 32, from step 0"

pytestmark = MARKS

sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
expect = sync_api.expect


@pytest.fixture(scope="module")
def server_env() -> dict[str, str]:
    return {"MAKEMORE_MAX_RUNNING": "1"}


def create(server: Server, **body: Any) -> dict[str, Any]:
    run: dict[str, Any] = server.send("POST", "/api/runs", {"start": False, **body})
    return run


def finished_run(server: Server, max_steps: int = 2000) -> dict[str, Any]:
    """A small run trained to its max steps (a second or two)."""
    run = create(server, start=True, n_hidden=20, max_steps=max_steps, eval_every=500)
    wait_for(lambda: server.get(f"/api/runs/{run['id']}")["status"] == "finished", timeout=120, what="finished")
    done: dict[str, Any] = server.get(f"/api/runs/{run['id']}")
    return done


def open_run(page: Any, server: Server, run_id: str) -> None:
    page.goto(f"{server.base}/?run={run_id}")
    expect(page.locator("#run-info")).to_contain_text(run_id, timeout=WAIT_MS)
    expect(page.locator("#connection")).to_have_text("live", timeout=WAIT_MS)


def box(page: Any, selector: str) -> dict[str, float]:
    b: dict[str, float] | None = page.locator(selector).first.bounding_box()
    assert b is not None, f"{selector} is not shown"
    return b


def test_the_run_name_on_a_phone_and_long_sampled_names(server: Server, page: Any) -> None:
    run = create(server, name=LONG_NAME)
    for viewport in VIEWPORTS:
        page.set_viewport_size(viewport)
        open_run(page, server, run["id"])
        title = page.locator("#run-info .run-title")
        expect(title).to_have_text(LONG_NAME)
        shown = page.evaluate(
            """() => {
                const el = document.querySelector('#run-info .run-title');
                const text = document.createRange();
                text.selectNodeContents(el);
                const lines = [...text.getClientRects()];  // a box per line of the text shown
                return { fits: el.scrollWidth <= el.clientWidth + 1,
                         right: Math.max(...lines.map(r => r.right)), width: lines.reduce((w, r) => w + r.width, 0) };
            }"""
        )
        assert shown["right"] <= viewport["width"], shown  # nothing of it off the screen
        if viewport is PHONE:  # whole: wrapped, not cut (it was "r.")
            assert shown["fits"] and shown["width"] >= 0.9 * page.evaluate(
                "() => { const c = document.createElement('canvas').getContext('2d');"
                " const el = document.querySelector('#run-info .run-title');"
                " c.font = getComputedStyle(el).font; return c.measureText(el.textContent).width; }"
            ), shown
        assert page.evaluate("() => document.scrollingElement.scrollWidth") <= viewport["width"]

        # an untrained network's names are long: one a line, the badge on the name's line, cut cleanly
        page.locator("#sample-temp").fill("2")
        page.locator("#sample-n").fill("40")
        page.click("#sample-button")
        expect(page.locator("#samples li")).to_have_count(40, timeout=WAIT_MS)
        expect(page.locator("#samples")).to_have_class(re.compile(r"\blong\b"))
        lines = page.evaluate(
            """() => [...document.querySelectorAll('#samples li')].map(li => {
                const name = li.querySelector('.name'), badge = li.querySelector('.badge');
                const n = name.getBoundingClientRect(), b = badge && badge.getBoundingClientRect();
                const line = parseFloat(getComputedStyle(name).lineHeight) || 18;
                const middle = (r) => (r.top + r.bottom) / 2;
                const list = document.getElementById('samples').getBoundingClientRect();
                return {
                    name: li.dataset.name, height: n.height, line,
                    badgeBeside: !b || (b.left >= n.right - 1 && Math.abs(middle(b) - middle(n)) < line / 2),
                    cut: name.scrollWidth > name.clientWidth,
                    ellipsis: getComputedStyle(name).textOverflow === 'ellipsis',
                    inside: li.getBoundingClientRect().right <= list.right + 1,
                };
            })"""
        )
        assert any(len(x["name"]) > 10 for x in lines)
        for x in lines:
            assert x["height"] < 1.5 * x["line"], x  # one line: no piece of it reads as a name of its own
            assert x["badgeBeside"] and x["inside"], (viewport, x)
            assert not x["cut"] or x["ellipsis"], x


def test_the_branch_dialog_shows_its_checkpoint_select_whole(server: Server, page: Any) -> None:
    run = create(server)
    wait_for(lambda: call(server.base, "GET", f"/api/runs/{run['id']}/checkpoints"), timeout=60, what="a checkpoint")
    for viewport in VIEWPORTS:
        page.set_viewport_size(viewport)
        open_run(page, server, run["id"])
        page.locator(f"#runs li.run-row[data-id='{run['id']}'] .run-branch").click()
        expect(page.locator("#br-step")).to_be_enabled(timeout=WAIT_MS)
        layout = page.evaluate(
            """() => {
                const select = document.getElementById('br-step');
                const c = document.createElement('canvas').getContext('2d');
                c.font = getComputedStyle(select).font;
                const longest = Math.max(...[...select.options].map(o => c.measureText(o.textContent).width));
                const dialog = document.getElementById('branch-dialog').getBoundingClientRect();
                const s = select.getBoundingClientRect();
                // the share of each fieldset's width its fields take: 2/3 with a column left empty
                const columns = [...document.querySelectorAll('#branch-form fieldset')].map(f => {
                    const labels = [...f.querySelectorAll(':scope > label')].map(l => l.getBoundingClientRect());
                    const used = Math.max(...labels.map(r => r.right)) - Math.min(...labels.map(r => r.left));
                    return used / f.clientWidth;
                });
                return { longest, width: select.clientWidth, inside: s.left >= dialog.left && s.right <= dialog.right,
                         text: select.options[select.selectedIndex].textContent, columns };
            }"""
        )
        assert "dev" in layout["text"]  # "step 0 · dev 26.1360": the label the dialog used to cut
        assert layout["width"] >= layout["longest"] + 20, layout  # the text and the select's arrow
        assert layout["inside"], layout
        assert all(share > 0.85 for share in layout["columns"]), layout  # no column left empty
        page.click("#br-cancel")
        expect(page.locator("#branch-dialog")).to_be_hidden()


def test_the_status_says_one_text_from_its_data(server: Server, page: Any) -> None:
    run = finished_run(server)
    open_run(page, server, run["id"])
    detail = page.locator("#status-detail")
    expect(detail).to_have_text(
        "Reached max steps (2,000): raise max steps (under “evaluation and length”) and resume, or start a new run."
    )
    assert page.evaluate("() => document.getElementById('status-detail').title") == run["detail"]  # the server's words
    call(server.base, "PATCH", f"/api/runs/{run['id']}", {"max_steps": 3000})
    expect(detail).to_have_text("Max steps is now 3,000: press Resume to train on.", timeout=WAIT_MS)  # no "raise"

    # one run trains at a time here: the next one queues, its chart empty
    blocker = create(server, start=True, max_steps=10_000_000)
    queued = create(server, start=True)
    try:
        assert server.get(f"/api/runs/{queued['id']}")["status"] == "queued"
        for viewport in VIEWPORTS:
            page.set_viewport_size(viewport)
            open_run(page, server, queued["id"])
            expect(page.locator("#status")).to_have_text("queued")
            waiting = "Waiting for a free slot (1 run trains at once here): number 1 in the queue."
            expect(detail).to_have_text(waiting)
            page.wait_for_function(
                "(text) => [...document.querySelectorAll('#chart .annotation-text')].some(a => a.textContent === text)",
                arg=waiting,
                timeout=WAIT_MS,
            )
            # a bare axis, not plotly's 0.1-1000 with a crowd of ticks
            assert page.evaluate("() => document.querySelectorAll('#chart .ytick text').length") == 0
    finally:
        for r in (queued, blocker):
            call(server.base, "PATCH", f"/api/runs/{r['id']}", {"status": "paused"})


def test_a_refused_rate_is_said_next_to_its_field_with_the_servers_bounds(server: Server, page: Any) -> None:
    lr = server.get("/api/schema")["create"]["properties"]["lr"]
    low = f"({lr['exclusiveMinimum']}" if "exclusiveMinimum" in lr else f"[{lr['minimum']}"
    high = f"{lr['maximum']}]" if "maximum" in lr else f"{lr['exclusiveMaximum']})"
    wording = f"learning rate: enter a number in {low}, {high}"
    run = create(server)
    for viewport in VIEWPORTS:
        page.set_viewport_size(viewport)
        open_run(page, server, run["id"])
        for bad in (str(2 * (lr.get("maximum") or lr["exclusiveMaximum"])), "-1", "0"):
            page.locator("#lr-input").fill(bad)
            page.locator("#lr-input").press("Enter")
            error = page.locator("#lr-input-error")
            expect(error).to_have_text(wording)
            expect(error).to_be_visible()
            assert page.locator("#lr-input").get_attribute("aria-invalid") == "true"
            field, said = box(page, "#lr-input"), box(page, "#lr-input-error")
            assert 0 <= said["y"] - (field["y"] + field["height"]) < 80, (field, said)  # right under it
            expect(page.locator("#toast")).to_be_hidden()  # no second wording far away
        # left with a refused value, the field shows the run's rate again, and the error goes with it
        page.locator("#lr-input").blur()
        expect(page.locator("#lr-input")).to_have_value(str(server.get(f"/api/runs/{run['id']}")["hparams"]["lr"]))
        expect(page.locator("#lr-input-error")).to_be_hidden()
        assert page.locator("#lr-input").get_attribute("aria-invalid") is None
        page.locator("#lr-input").fill("0.05")
        page.locator("#lr-input").press("Enter")
        expect(page.locator("#lr-input-error")).to_be_hidden()
        wait_for(lambda: server.get(f"/api/runs/{run['id']}")["hparams"]["lr"] == 0.05, what="lr 0.05")
        call(server.base, "PATCH", f"/api/runs/{run['id']}", {"lr": 0.1})


@pytest.mark.timeout(180)
def test_the_finders_suggestion_is_applied_as_shown(server: Server, page: Any) -> None:
    run = create(server)
    open_run(page, server, run["id"])
    page.click("#lrfind-button")
    apply = page.locator("#lrfind-apply")
    expect(apply).to_be_visible(timeout=90_000)
    shown = apply.text_content().removeprefix("Apply lr ")
    suggestion = server.get(f"/api/runs/{run['id']}/lr-find")["suggestion"]
    assert suggestion == float(f"{suggestion:.3g}") and shown == f"{suggestion:g}"
    apply.click()
    page.wait_for_function(
        "v => Number(document.getElementById('lr-value').dataset.value) === v", arg=suggestion, timeout=WAIT_MS
    )
    expect(page.locator("#lr-input")).to_have_value(shown)  # 0.0178, not 0.017752080117176352
    assert server.get(f"/api/runs/{run['id']}")["hparams"]["lr"] == float(shown)


def test_the_mode_bar_leaves_the_change_labels_alone(server: Server, page: Any) -> None:
    run = finished_run(server)
    call(server.base, "PATCH", f"/api/runs/{run['id']}", {"lr": 0.05})  # a change at its last step: the right edge
    for viewport in VIEWPORTS:
        page.set_viewport_size(viewport)
        open_run(page, server, run["id"])
        page.wait_for_selector("#chart .annotation", timeout=WAIT_MS)
        page.hover("#chart .nsewdrag", position={"x": 40, "y": 60})  # plotly shows its mode bar on hover
        page.wait_for_selector("#chart .modebar", state="visible", timeout=WAIT_MS)
        overlaps = page.evaluate(
            """() => {
                const m = document.querySelector('#chart .modebar').getBoundingClientRect();
                return [...document.querySelectorAll('#chart .annotation')].map(a => a.getBoundingClientRect())
                    .filter(a => a.left < m.right && a.right > m.left && a.top < m.bottom && a.bottom > m.top)
                    .map(a => [a.left, a.top, a.right, a.bottom, m.left, m.top, m.right, m.bottom]);
            }"""
        )
        assert overlaps == []


def test_the_compare_view_fits_a_phone(server: Server, page: Any) -> None:
    ids = [create(server, name=f"{LONG_NAME} ({i})")["id"] for i in range(3)]
    page.set_viewport_size(PHONE)
    for address in (f"/?compare={','.join(ids)}", "/?compare="):
        page.goto(server.base + address)
        if address.endswith("="):
            expect(page.locator("#compare-start")).to_be_visible(timeout=WAIT_MS)
        else:
            expect(page.locator("#compare-table tbody tr")).to_have_count(3, timeout=WAIT_MS)
            expect(page.locator("#compare-add-select option").first).to_be_attached(timeout=WAIT_MS)
        assert page.evaluate("() => document.scrollingElement.scrollWidth") <= PHONE["width"], address


@pytest.fixture
def token_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    log = tmp_path_factory.mktemp("token") / "server.log"
    with running_server("--token", "polish-test-token", log=log) as proc:
        yield proc.url


def test_the_token_page_is_styled_as_the_app(browser: Any, token_server: str) -> None:
    watch = Watch()
    ctx = local_context(browser, watch)
    try:
        for viewport in VIEWPORTS:
            page = watch.attach(ctx.new_page())
            page.set_viewport_size(viewport)
            answers: dict[str, int] = {}
            page.on("response", lambda r, seen=answers: seen.__setitem__(r.url.removeprefix(token_server), r.status))
            page.goto(f"{token_server}/")
            expect(page.locator("h1")).to_have_text("makemore live")
            assert answers.get("/static/css/app.css") == 200, answers
            look = page.evaluate(
                """() => {
                    const s = (sel) => getComputedStyle(document.querySelector(sel));
                    const panel = document.querySelector('.token-page').getBoundingClientRect();
                    return { body: s('body').backgroundColor, panel: s('.token-page').backgroundColor,
                             button: s('button[type=submit]').backgroundColor, left: panel.left, right: panel.right,
                             width: document.scrollingElement.scrollWidth };
                }"""
            )
            assert look["body"] == "rgb(15, 20, 32)"  # the app's --bg, not a browser's white
            assert look["panel"] == "rgb(23, 29, 43)" and look["button"] == "rgb(58, 102, 212)"
            assert look["left"] > 0 and look["right"] < viewport["width"] and look["width"] <= viewport["width"]
            page.close()
        assert watch.errors == [] and watch.blocked == []
        assert {status for status, _ in watch.http_errors} <= {401}  # the page itself: the token is missing
    finally:
        ctx.close()


def test_a_checkpoint_held_unwritten_is_said_after_the_status(server: Server, page: Any) -> None:
    """A paused run whose checkpoint the store holds unwritten (a full disk: the status message's
    `checkpoint_held`, see tests/store/test_store_full) says so after its own text, from the flag,
    and no longer once the flag is down."""
    open_run(page, server, create(server)["id"])
    said = page.evaluate(
        """async () => {
            const { statusText } = await import("/static/js/statustext.js");
            const s = { status: "paused", cause: "user", step: 1200, detail: "paused by a user; ..." };
            return [statusText({ ...s, checkpointHeld: true }).text, statusText({ ...s, checkpointHeld: false }).text];
        }"""
    )
    assert said[0].startswith("Paused at step 1,200: press Resume to go on. Its checkpoint at step 1,200 is not")
    assert "keeps it in memory" in said[0]
    assert said[1] == "Paused at step 1,200: press Resume to go on."
