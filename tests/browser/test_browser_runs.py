"""The runs list and the address in a real browser (Chromium through Playwright) against a real
server process: two runs training side by side, live in the list; choosing one shows it and puts
it in the address (`/?run=ID`), which a reload and the back button keep; pause, resume, rename,
branch and delete from the list (checked through the REST API); runs chosen to compare; an
address naming no run; and a server restarted under an open tab, which comes back to the same
run and says what became of it.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from harness.server import ROOT, free_port, wait_healthy
from tests.browser.conftest import MARKS, Watch, call, local_context
from tests.browser.test_browser import PHONE, boxes_outside
from tests.conftest import wait_for

WAIT_MS = 60_000  # for what the trainer or a restart must do first: the machine is shared and slow

pytestmark = MARKS

sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
expect = sync_api.expect


# ---- the server and its API ----------------------------------------------------------------------
def training(base: str, name: str, lr: float) -> dict[str, Any]:
    """A run that trains for long (evaluations every 500 steps: its dev loss comes soon)."""
    spec = {"name": name, "lr": lr, "max_steps": 10**8, "eval_every": 500}
    run: dict[str, Any] = call(base, "POST", "/api/runs", spec)
    return run


def wait_page_step(page: Any, above: int) -> None:
    page.wait_for_function(
        "n => Number(document.getElementById('step').textContent.replace(/,/g, '')) > n", arg=above, timeout=WAIT_MS
    )


def pause_all(base: str, *runs: dict[str, Any]) -> None:
    """Free the slots for the next test (MAKEMORE_MAX_RUNNING: the cores)."""
    for r in runs:
        try:
            call(base, "PATCH", f"/api/runs/{r['id']}", {"status": "paused"})
        except urllib.error.HTTPError as e:
            assert e.code == 404  # deleted by the test


# ---- what the page shows -------------------------------------------------------------------------
def row(page: Any, run_id: str) -> Any:
    return page.locator(f"#runs li.run-row[data-id='{run_id}']")


def row_step(page: Any, run_id: str) -> int:
    return int(row(page, run_id).locator(".run-step").get_attribute("data-value"))


def wait_row_step(page: Any, run_id: str, above: int) -> None:
    page.wait_for_function(
        """([id, n]) => {
            const el = document.querySelector(`#runs li[data-id='${id}'] .run-step`);
            return el && Number(el.dataset.value) > n;
        }""",
        arg=[run_id, above],
        timeout=WAIT_MS,
    )


def address_run(page: Any) -> str | None:
    values = parse_qs(urlsplit(page.url).query).get("run")
    return values[0] if values else None


def shows(page: Any, run: dict[str, Any]) -> None:
    """The single-run view shows `run`: its id, its learning rate, its own chart from step 0."""
    expect(page.locator("#run-info")).to_contain_text(run["id"], timeout=WAIT_MS)
    expect(page.locator("#connection")).to_have_text("live", timeout=WAIT_MS)
    expect(page.locator("#lr-value")).to_have_attribute("data-value", str(run["hparams"]["lr"]), timeout=WAIT_MS)
    expect(row(page, run["id"])).to_have_attribute("aria-current", "true")
    page.wait_for_function(
        """lr => {
            const t = (document.getElementById('lr-chart').data || []).find(t => t.name === 'learning rate');
            return t && t.y.length >= 2 && t.y.every(y => y === lr) && t.x[0] < 100; // from the start
        }""",
        arg=run["hparams"]["lr"],
        timeout=WAIT_MS,
    )
    page.wait_for_function(
        """() => {
            const t = (document.getElementById('chart').data || []).find(t => t.name === 'minibatch loss');
            return t && t.x.length > 10;
        }""",
        timeout=WAIT_MS,
    )


def branch_from_the_earliest_checkpoint(page: Any, base: str, run: dict[str, Any], lr: str, name: str) -> int:
    """The list's branch dialog: the run's checkpoints offered (the latest first), the earliest
    chosen, the learning rate changed; a bad batch size refused first. Returns the step."""
    checkpoints = f"/api/runs/{run['id']}/checkpoints"
    wait_for(lambda: len(call(base, "GET", checkpoints)) >= 2, timeout=60, what="checkpoints")
    row(page, run["id"]).locator(".run-branch").click()
    dialog = page.locator("#branch-dialog")
    expect(dialog).to_be_visible()
    expect(page.locator("#br-step")).to_be_enabled(timeout=WAIT_MS)
    offered = page.locator("#br-step option").evaluate_all("os => os.map(o => Number(o.value))")
    stored = [c["step"] for c in call(base, "GET", checkpoints)]
    assert set(offered) <= set(stored) and len(offered) >= 2
    assert offered == sorted(offered, reverse=True)  # the latest first
    step: int = offered[-1]  # the earliest
    page.select_option("#br-step", str(step))
    page.locator("#br-lr").fill(lr)
    page.locator("#br-batch-size").fill("0")  # refused with the reason, nothing created
    page.click("#br-create")
    expect(page.locator("#br-error")).to_contain_text("batch size")
    page.locator("#br-batch-size").fill(str(run["hparams"]["batch_size"]))  # unchanged: the parent's
    page.locator("#br-name").fill(name)
    page.click("#br-create")
    expect(dialog).to_be_hidden(timeout=WAIT_MS)
    return step


# ---- the list, choosing a run, the address ------------------------------------------------------------
@pytest.mark.timeout(240)
def test_two_runs_side_by_side_chosen_by_address(base: str, context: tuple[Any, Watch]) -> None:
    ctx, watch = context
    a = training(base, "alpha", 0.05)
    b = training(base, "beta", 0.2)  # the newest
    try:
        page = watch.attach(ctx.new_page())
        sockets: list[str] = []
        page.on("websocket", lambda ws: sockets.append(urlsplit(ws.url).path))
        page.goto(base + "/")
        # without ?run=, the newest run, as before
        shows(page, b)
        assert address_run(page) is None

        # the list: newest first, both training at once, their steps live (one socket for all)
        expect(row(page, a["id"]).locator(".run-name")).to_have_text("alpha", timeout=WAIT_MS)
        ids = page.locator("#runs li.run-row").evaluate_all("lis => lis.map(li => li.dataset.id)")
        assert ids.index(b["id"]) < ids.index(a["id"])
        for r in (a, b):
            expect(row(page, r["id"]).locator(".run-status")).to_have_text("running", timeout=WAIT_MS)
        steps = {r["id"]: row_step(page, r["id"]) for r in (a, b)}
        for r in (a, b):
            wait_row_step(page, r["id"], steps[r["id"]] + 200)
        assert {call(base, "GET", f"/api/runs/{r['id']}")["status"] for r in (a, b)} == {"running"}
        for r in (a, b):
            expect(row(page, r["id"]).locator(".run-dev")).not_to_have_text("dev —", timeout=WAIT_MS)
        dev = float(row(page, a["id"]).locator(".run-dev").get_attribute("data-value"))
        assert 1.0 < dev < 30.0
        assert sockets.count("/ws/runs") == 1, sockets

        # choosing the older run: the address names it, the view and its charts are its own
        row(page, a["id"]).locator(".run-name").click()
        shows(page, a)
        assert address_run(page) == a["id"]
        expect(row(page, b["id"])).to_have_attribute("aria-current", "false")

        # a reload opens the same run
        page.reload()
        shows(page, a)
        assert address_run(page) == a["id"]

        # back: the newest again; forward: alpha
        page.go_back()
        expect(page.locator("#run-info")).to_contain_text(b["id"], timeout=WAIT_MS)
        assert address_run(page) is None
        page.go_forward()
        shows(page, a)

        # a link to the run, opened in another tab
        other = watch.attach(ctx.new_page())
        other.goto(f"{base}/?run={a['id']}")
        shows(other, a)
        watch.check()
    finally:
        pause_all(base, a, b)


@pytest.mark.timeout(240)
def test_pause_resume_rename_from_the_list(base: str, context: tuple[Any, Watch]) -> None:
    ctx, watch = context
    a = training(base, "to steer", 0.1)
    b = call(base, "POST", "/api/runs", {"name": "shown", "start": False})
    try:
        page = watch.attach(ctx.new_page())
        page.goto(f"{base}/?run={b['id']}")  # the list acts on any run, not only the one shown
        expect(page.locator("#run-info")).to_contain_text(b["id"], timeout=WAIT_MS)
        r = row(page, a["id"])
        expect(r.locator(".run-status")).to_have_text("running", timeout=WAIT_MS)
        wait_row_step(page, a["id"], 1000)

        # pause, then resume
        r.locator(".run-toggle").click()
        expect(r.locator(".run-status")).to_have_text("paused", timeout=WAIT_MS)
        paused = call(base, "GET", f"/api/runs/{a['id']}")
        assert paused["status"] == "paused"
        # its hover says what the run's own status line would, and the server's detail
        expect(r.locator(".run-status")).to_have_attribute(
            "title", f"Paused at step {paused['step']:,}: press Resume to go on.\n({paused['detail']})", timeout=WAIT_MS
        )
        expect(r.locator(".run-toggle")).to_have_attribute("data-action", "resume")
        r.locator(".run-toggle").click()
        expect(r.locator(".run-status")).to_have_text("running", timeout=WAIT_MS)
        assert call(base, "GET", f"/api/runs/{a['id']}")["status"] == "running"

        # rename (the browser's prompt), in the list and through the API
        page.once("dialog", lambda d: d.accept("lr 0.1, the lecture's"))
        r.locator(".run-rename").click()
        expect(r.locator(".run-name")).to_have_text("lr 0.1, the lecture's", timeout=WAIT_MS)
        assert call(base, "GET", f"/api/runs/{a['id']}")["name"] == "lr 0.1, the lecture's"
        watch.check()
    finally:
        pause_all(base, a)


@pytest.mark.timeout(240)
def test_branch_and_delete_from_the_list(base: str, context: tuple[Any, Watch]) -> None:
    ctx, watch = context
    a = training(base, "to branch", 0.1)
    b = call(base, "POST", "/api/runs", {"name": "to delete", "start": False})
    child: dict[str, Any] | None = None
    try:
        page = watch.attach(ctx.new_page())
        page.goto(f"{base}/?run={b['id']}")
        expect(page.locator("#run-info")).to_contain_text(b["id"], timeout=WAIT_MS)
        expect(row(page, a["id"]).locator(".run-status")).to_have_text("running", timeout=WAIT_MS)
        # branch from an earlier checkpoint at a lower learning rate: the page shows the child
        step = branch_from_the_earliest_checkpoint(page, base, a, lr="0.01", name="slower")
        page.wait_for_function("old => new URLSearchParams(location.search).get('run') !== old", arg=b["id"])
        child_id = address_run(page)
        assert child_id is not None
        child = call(base, "GET", f"/api/runs/{child_id}")
        assert child["parent"] == {"id": a["id"], "step": step}
        assert child["name"] == "slower" and child["hparams"]["lr"] == 0.01 and child["hparams"]["batch_size"] == 32
        expect(page.locator("#run-info")).to_contain_text(child_id, timeout=WAIT_MS)
        expect(page.locator("#lr-value")).to_have_attribute("data-value", "0.01", timeout=WAIT_MS)
        expect(row(page, child_id)).to_have_attribute("aria-current", "true", timeout=WAIT_MS)

        # delete asks first: no, then yes
        d = row(page, b["id"])
        page.once("dialog", lambda dlg: dlg.dismiss())
        d.locator(".run-delete").click()
        expect(d).to_have_count(1)
        assert call(base, "GET", f"/api/runs/{b['id']}")["id"] == b["id"]
        page.once("dialog", lambda dlg: dlg.accept())
        d.locator(".run-delete").click()
        expect(d).to_have_count(0, timeout=WAIT_MS)
        with pytest.raises(urllib.error.HTTPError) as gone:
            call(base, "GET", f"/api/runs/{b['id']}")
        assert gone.value.code == 404
        watch.check()
    finally:
        pause_all(base, a, *([child] if child else []))


@pytest.mark.timeout(240)
def test_deleting_the_run_shown_moves_to_the_newest(base: str, context: tuple[Any, Watch]) -> None:
    ctx, watch = context
    doomed = call(base, "POST", "/api/runs", {"name": "doomed", "start": False})
    newest = call(base, "POST", "/api/runs", {"name": "newest", "start": False})
    page = watch.attach(ctx.new_page())
    page.goto(f"{base}/?run={doomed['id']}")
    expect(page.locator("#run-info")).to_contain_text(doomed["id"], timeout=WAIT_MS)
    call(base, "DELETE", f"/api/runs/{doomed['id']}")  # another tab, or the API
    expect(page.locator("#run-info")).to_contain_text(newest["id"], timeout=WAIT_MS)
    expect(page.locator("#run-notice")).to_contain_text(f"Run {doomed['id']} was deleted")
    assert address_run(page) is None
    watch.check()


@pytest.mark.timeout(240)
def test_choose_runs_to_compare(base: str, context: tuple[Any, Watch]) -> None:
    ctx, watch = context
    runs = [call(base, "POST", "/api/runs", {"name": f"quiet {i}", "start": False}) for i in range(21)]
    page = watch.attach(ctx.new_page())
    page.goto(base + "/")
    link = page.locator("#compare-link")
    for r in runs:
        expect(row(page, r["id"])).to_have_count(1, timeout=WAIT_MS)
    expect(link).to_have_attribute("aria-disabled", "true")
    row(page, runs[3]["id"]).locator(".run-select").check()
    expect(link).to_have_attribute("aria-disabled", "true")  # one run is no comparison
    row(page, runs[0]["id"]).locator(".run-select").check()
    expect(link).to_have_attribute("href", f"/?compare={runs[3]['id']},{runs[0]['id']}")
    expect(link).to_have_text("Compare 2 runs")
    row(page, runs[3]["id"]).locator(".run-select").uncheck()
    expect(link).to_have_attribute("aria-disabled", "true")
    expect(link).not_to_have_attribute("href", re.compile(".*"))

    # at most 20: then the other boxes are off
    for r in runs[1:20]:
        row(page, r["id"]).locator(".run-select").check()
    expect(link).to_have_text("Compare 20 runs")
    expect(row(page, runs[20]["id"]).locator(".run-select")).to_be_disabled()
    page.reload()  # the choice is kept for the tab's session
    expect(link).to_have_text("Compare 20 runs", timeout=WAIT_MS)
    expect(row(page, runs[0]["id"]).locator(".run-select")).to_be_checked(timeout=WAIT_MS)
    expect(row(page, runs[20]["id"]).locator(".run-select")).to_be_disabled()
    href = link.get_attribute("href")
    assert href is not None and href.startswith("/?compare=")
    assert href.split("=", 1)[1].split(",") == [r["id"] for r in runs[:20]]
    link.click()
    page.wait_for_url(re.compile(r"\?compare="))
    assert parse_qs(urlsplit(page.url).query)["compare"][0].split(",") == [r["id"] for r in runs[:20]]
    watch.check()


@pytest.mark.timeout(240)
def test_an_address_naming_no_run(base: str, context: tuple[Any, Watch]) -> None:
    ctx, watch = context
    watch.expect_http(404, "/api/runs/nosuchrun")
    known = call(base, "POST", "/api/runs", {"name": "known", "start": False})
    page = watch.attach(ctx.new_page())
    sockets: list[str] = []
    page.on("websocket", lambda ws: sockets.append(urlsplit(ws.url).path))
    page.goto(f"{base}/?run=nosuchrun")
    expect(page.locator("#run-missing")).to_contain_text("There is no run nosuchrun", timeout=WAIT_MS)
    expect(page.locator("#run-info")).to_have_text("no run nosuchrun")
    expect(page.locator("#step")).to_have_text("—")
    # the list still works: choose a run and it shows
    row(page, known["id"]).locator(".run-name").click()
    expect(page.locator("#run-info")).to_contain_text(known["id"], timeout=WAIT_MS)
    expect(page.locator("#run-missing")).to_be_hidden()
    assert address_run(page) == known["id"]
    assert "/ws/runs/nosuchrun" not in sockets  # asked once, by REST: no socket to a run that is not there
    watch.check()


# ---- a server restarted under an open tab ------------------------------------------------------------
class Restartable:
    """`python -m backend` on a fixed port and home, stopped and started again: a tab's address
    stays valid across the restart."""

    def __init__(self, home: Path, log: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.home, self.log = home, log
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("MAKEMORE_")}
        env["MAKEMORE_HOME"] = str(self.home)
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "backend", "--port", str(self.port)], cwd=ROOT, env=env, stdout=out, stderr=out
            )
        wait_healthy(self.url, self.proc)

    def restart(self, page: Any, sig: int) -> None:
        """Stop it with `sig` (the page sees the connection go), start it again (and it comes back)."""
        self.stop(sig)
        expect(page.locator("#connection")).not_to_have_text("live", timeout=WAIT_MS)
        self.start()
        expect(page.locator("#connection")).to_have_text("live", timeout=WAIT_MS)

    def stop(self, sig: int) -> None:
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            self.proc.wait(30)


class RestartWatch(Watch):
    """While the server is down the page's reconnection attempts fail, as they must."""

    def check(self) -> None:
        down = re.compile(
            r"WebSocket connection to .* failed|net::ERR_(CONNECTION_REFUSED|CONNECTION_RESET|EMPTY_RESPONSE)"
        )
        self.errors = [e for e in self.errors if not down.search(e)]
        super().check()


@pytest.mark.timeout(360)
def test_a_restarted_server_brings_the_tab_back_to_its_run(browser: Any, tmp_path: Path) -> None:
    server = Restartable(tmp_path / "home", tmp_path / "server.log")
    server.start()
    watch = RestartWatch()
    ctx = local_context(browser, watch, viewport={"width": 1440, "height": 900})
    try:
        a = training(server.url, "mine", 0.1)
        b = training(server.url, "newer", 0.05)  # `current` is b: the tab must not move to it
        page = watch.attach(ctx.new_page())
        page.goto(f"{server.url}/?run={a['id']}")
        expect(page.locator("#run-info")).to_contain_text(a["id"], timeout=WAIT_MS)
        wait_page_step(page, 2000)
        newest = watch.attach(ctx.new_page())  # a tab on `/`: the newest run, b
        newest.goto(server.url + "/")
        expect(newest.locator("#run-info")).to_contain_text(b["id"], timeout=WAIT_MS)

        # SIGTERM (docker stop): the runs are checkpointed and paused; the tab comes back to its run
        server.restart(page, signal.SIGTERM)
        expect(page.locator("#run-info")).to_contain_text(a["id"])
        assert call(server.url, "GET", "/api/runs/current")["id"] == b["id"]  # the same run, not the newest
        stored = call(server.url, "GET", f"/api/runs/{a['id']}")
        assert stored["status"] == "paused"
        notice = page.locator("#run-notice")
        expect(notice).to_contain_text(f"The server restarted: this run is paused at step {stored['step']:,}")
        expect(page.locator("#status")).to_have_text("paused")
        assert address_run(page) == a["id"]
        expect(row(page, a["id"]).locator(".run-status")).to_have_text("paused", timeout=WAIT_MS)  # the list too
        # the tab on `/` stays with the run it showed, now named in its address
        expect(newest.locator("#run-notice")).to_contain_text(
            "The server restarted: this run is paused", timeout=WAIT_MS
        )
        assert address_run(newest) == b["id"]
        newest.close()

        # resume from the notice
        page.locator("#run-notice-resume").click()
        expect(page.locator("#status")).to_have_text("running", timeout=WAIT_MS)
        expect(notice).to_be_hidden(timeout=WAIT_MS)
        assert call(server.url, "GET", f"/api/runs/{a['id']}")["status"] == "running"
        resumed = stored["step"]
        wait_page_step(page, resumed + 3000)

        # kill -9: the run is interrupted at its last checkpoint; the tab says so and offers to resume
        server.restart(page, signal.SIGKILL)
        stored = call(server.url, "GET", f"/api/runs/{a['id']}")
        assert stored["status"] == "interrupted"
        expect(notice).to_contain_text(f"this run was interrupted at step {stored['step']:,}", timeout=WAIT_MS)
        expect(page.locator("#run-notice-resume")).to_be_visible()
        expect(page.locator("#run-info")).to_contain_text(a["id"])
        assert address_run(page) == a["id"]
        watch.check()
    finally:
        ctx.close()
        if server.proc is not None and server.proc.poll() is None:
            server.stop(signal.SIGTERM)


@pytest.mark.timeout(240)
def test_runs_list_and_branch_dialog_on_a_phone(base: str, browser: Any) -> None:
    """At 390 px: the runs list and its buttons, a long name, the notice and the branch dialog
    lie inside the screen's width; Start stays on screen without scrolling."""
    watch = Watch()
    ctx = local_context(browser, watch, viewport=PHONE, device_scale_factor=2, is_mobile=True, has_touch=True)
    a = training(base, "a long name for a run, one that would not fit on a phone's line at all", 0.1)
    try:
        page = watch.attach(ctx.new_page())
        page.goto(f"{base}/?run={a['id']}")
        expect(page.locator("#run-info")).to_contain_text(a["id"], timeout=WAIT_MS)
        expect(row(page, a["id"]).locator(".run-status")).to_have_text("running", timeout=WAIT_MS)
        expect(page.locator("#pause")).to_be_in_viewport(ratio=1)
        assert page.evaluate("() => document.documentElement.scrollWidth") == PHONE["width"]
        assert boxes_outside(page, "body", 0, PHONE["width"]) == []
        for action in (".run-toggle", ".run-rename", ".run-branch", ".run-delete"):
            button = row(page, a["id"]).locator(action)
            button.scroll_into_view_if_needed()
            expect(button).to_be_in_viewport(ratio=1)

        wait_for(lambda: call(base, "GET", f"/api/runs/{a['id']}/checkpoints"), timeout=60, what="a checkpoint")
        row(page, a["id"]).locator(".run-branch").click()
        expect(page.locator("#br-step")).to_be_enabled(timeout=WAIT_MS)
        d = page.locator("#branch-dialog").bounding_box()
        assert d["x"] >= 0 and d["x"] + d["width"] <= PHONE["width"]
        assert boxes_outside(page, "#branch-dialog", d["x"], d["x"] + d["width"]) == []
        page.click("#br-cancel")
        expect(page.locator("#branch-dialog")).to_be_hidden()
        watch.check()
    finally:
        ctx.close()
        pause_all(base, a)
