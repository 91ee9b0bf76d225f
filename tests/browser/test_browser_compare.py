"""The compare view, the sweep view and the ghost in a real browser (Chromium through Playwright)
against a real server process: runs on one chart with their legend, the sortable table, the
address that keeps the view, the CSV export; a learning-rate sweep started from the form, its
result chart (log x) and its best run; the heatmap of a 2x2 grid; a finished run as the single
view's ghost. test_lr_sweep_from_the_form saves docs/sweep.png (the README's picture)."""

from __future__ import annotations

import csv
import io
import itertools
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from harness.server import ROOT
from tests.browser.conftest import MARKS, Server, Watch
from tests.conftest import wait_for

SWEEP_SCREENSHOT = ROOT / "docs" / "sweep.png"
WAIT_MS = 30_000  # two shared cores, other engineers' tests beside: generous
SWEEP_MS = 180_000  # a whole sweep: workers start, runs queue, train and finish

pytestmark = MARKS

sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
expect = sync_api.expect


def finished(server: Server, run_id: str) -> dict[str, Any]:
    """The run once it finished (it trains in a worker meanwhile)."""
    wait_for(lambda: server.get(f"/api/runs/{run_id}")["status"] == "finished", timeout=120)
    run: dict[str, Any] = server.get(f"/api/runs/{run_id}")
    return run


SMALL = {"eval_every": 200, "n_hidden": 20}


def small_run(server: Server, lr: float, steps: int = 600) -> dict[str, Any]:
    spec = {**SMALL, "max_steps": steps, "lr": lr, "name": f"small lr {lr}"}
    run: dict[str, Any] = server.send("POST", "/api/runs", spec)
    return run


def legend_traces(page: Any) -> list[dict[str, Any]]:
    """The compare chart's smoothed lines (one per run, named by the run), with their points."""
    result: list[dict[str, Any]] = page.evaluate(
        """() => (document.getElementById('compare-chart').data || [])
            .filter(t => t.meta)
            .map(t => ({ id: t.meta, name: t.name, x: Array.from(t.x), custom: Array.from(t.customdata || []) }))"""
    )
    return result


def wait_runs_drawn(page: Any, ids: list[str]) -> None:
    page.wait_for_function(
        """ids => {
            const drawn = (document.getElementById('compare-chart').data || []).filter(t => t.meta && t.x.length > 1);
            return drawn.length === ids.length && ids.every(id => drawn.some(t => t.meta === id));
        }""",
        arg=ids,
        timeout=WAIT_MS,
    )


def table_column(page: Any, col: str) -> list[str]:
    texts: list[str] = page.locator(f"#compare-table tbody td[data-col='{col}']").all_inner_texts()
    return texts


def test_compare_view_chart_table_address_export(server: Server, context: tuple[Any, Watch], tmp_path: Path) -> None:
    """Three runs (one branched from another) on one chart, their table sorted, the address
    reloaded, one removed and added back through the picker, and the CSV export of them."""
    a, b = small_run(server, 0.05), small_run(server, 0.3)
    a, b = finished(server, a["id"]), finished(server, b["id"])
    child = server.send("POST", f"/api/runs/{b['id']}/branch", {"step": 400, "lr": 0.01, "name": "branch of b"})
    child = finished(server, child["id"])
    runs = {r["id"]: r for r in (a, b, child)}
    ids = list(runs)

    ctx, watch = context
    page = watch.attach(ctx.new_page())
    asked: list[str] = []  # the page's requests for points
    page.on("request", lambda r: asked.append(r.url) if "/api/runs/points" in r.url else None)
    page.goto(f"{server.base}/?compare={','.join(ids)}")
    wait_runs_drawn(page, ids)
    # one request for all three: the page's preload (sent before its modules), taken by prefetch.js
    link = page.evaluate("() => document.querySelector('link[rel=preload][as=fetch]').href")
    assert asked == [link]
    widest = page.evaluate(
        """async n => { const m = await import('/static/js/compare/prefetch.js');
                        return m.pointsPerRun(m.WIDEST_PLOT, n); }""",
        len(ids),
    )
    assert link.endswith(f"&points={widest}")  # as the page would have asked
    page.wait_for_function(  # the branch once its record says so: from where it left its parent
        """id => { const t = document.getElementById('compare-chart').data.find(t => t.meta === id);
                   return t && t.x.length > 1 && t.x[0] >= 400; }""",
        arg=child["id"],
        timeout=WAIT_MS,
    )
    lines = {t["id"]: t for t in legend_traces(page)}
    assert {i: t["name"] for i, t in lines.items()} == {i: r["name"] for i, r in runs.items()}
    expect(page.locator("#compare-legend button")).to_have_text([runs[i]["name"] for i in ids])
    # hover data: each point's learning rate and batch size, as that run trained at that step
    assert {c[1] for c in lines[a["id"]]["custom"]} == {0.05}
    assert {c[2] for c in lines[a["id"]]["custom"]} == {32}
    # the branch continues its parent's line: drawn from the step it branched at, at its own rate
    assert min(lines[child["id"]]["x"]) >= 400 and max(lines[child["id"]]["x"]) >= 590
    assert {c[1] for c in lines[child["id"]]["custom"]} == {0.01}
    assert min(lines[b["id"]]["x"]) == 0
    # the marks, in each run's colour: where the branch left its parent (with its own rate)
    shapes = page.evaluate(
        "() => document.getElementById('compare-chart').layout.shapes.map(s => [s.x0, s.line.color])"
    )
    colors = page.evaluate(
        "() => Array.from(document.getElementById('compare-chart').data).filter(t => t.meta).map(t => t.line.color)"
    )
    assert [x for x, _ in shapes] == [400] and shapes[0][1].startswith("rgba(") and colors[2] != colors[1]
    check_sorting(page, runs)

    # the address keeps the view
    page.reload()
    wait_runs_drawn(page, ids)
    # remove a run: the address follows; add it back with the picker
    page.click(f"#compare-table tr[data-run='{a['id']}'] button.remove")
    wait_runs_drawn(page, [b["id"], child["id"]])
    assert page.evaluate("() => location.search") == f"?compare={b['id']},{child['id']}"
    page.reload()
    wait_runs_drawn(page, [b["id"], child["id"]])
    expect(page.locator(f"#compare-add-select option[value='{a['id']}']")).to_have_count(1)
    page.select_option("#compare-add-select", a["id"])
    page.click("#compare-add")
    wait_runs_drawn(page, ids)
    assert page.evaluate("() => location.search") == f"?compare={b['id']},{child['id']},{a['id']}"
    check_export(page, runs, tmp_path)
    watch.check()


def check_sorting(page: Any, runs: dict[str, dict[str, Any]]) -> None:
    """The table sorts by a column, and the other way on a second click."""
    best = {r["name"]: r["best_dev_loss"] for r in runs.values()}
    runs_by_name = {r["name"]: r for r in runs.values()}
    page.click("#compare-table th button[data-sort='best']")
    expect(page.locator("#compare-table tbody td[data-col='name']")).to_have_text(sorted(best, key=best.__getitem__))
    page.click("#compare-table th button[data-sort='best']")
    expect(page.locator("#compare-table tbody td[data-col='name']")).to_have_text(
        sorted(best, key=best.__getitem__, reverse=True)
    )
    expect(page.locator("#compare-table th[aria-sort='descending'] button")).to_have_attribute("data-sort", "best")
    steps = [int(s.split(" / ")[0].replace(",", "")) for s in table_column(page, "step")]
    assert steps == [runs_by_name[n]["step"] for n in sorted(best, key=best.__getitem__, reverse=True)]


def check_export(page: Any, runs: dict[str, dict[str, Any]], tmp_path: Path) -> None:
    """Export: one CSV with every run's steps and evaluations."""
    ids = list(runs)
    with page.expect_download(timeout=WAIT_MS) as download:
        page.click("#compare-export")
    path = tmp_path / "runs.csv"
    download.value.save_as(path)
    rows = list(csv.DictReader(io.StringIO(path.read_text())))
    assert {r["run_id"] for r in rows} == set(ids)
    for rid, run in runs.items():
        mine = [r for r in rows if r["run_id"] == rid]
        assert sum(r["kind"] == "step" for r in mine) == run["step"]
        assert {r["run_name"] for r in mine} == {run["name"]}


def test_lr_sweep_from_the_form(server: Server, context: tuple[Any, Watch]) -> None:
    """The lecture's learning-rate search as a sweep, started from the form: 7 rates from 0.001 to
    1, log-spaced (half a decade apart), on the lecture's model; the result chart gets a point per
    rate on a log axis, and "open the best run" opens the one with the lowest final dev loss.
    Saves docs/sweep.png."""
    ctx, watch = context
    page = watch.attach(ctx.new_page())
    page.goto(f"{server.base}/?compare=")
    expect(page.locator("#sweep-form")).to_be_visible()
    expect(page.locator("#sweep-steps")).to_have_value("20000")  # lecture-sized runs, from the server's schema
    page.select_option("#sweep-param", "lr")
    page.fill("#sweep-lr-min", "0.001")
    page.fill("#sweep-lr-max", "1")
    page.fill("#sweep-lr-n", "7")
    page.fill("#sweep-steps", "1500")
    page.fill("#sweep-eval-every", "500")
    page.click("#sweep-submit")
    page.wait_for_url("**/?sweep=*", timeout=WAIT_MS)
    sweep_id = page.evaluate("() => new URLSearchParams(location.search).get('sweep')")
    sweep = server.get(f"/api/sweeps/{sweep_id}")
    assert sorted(r["hparams"]["lr"] for r in sweep["runs"]) == [0.001, 0.003162, 0.01, 0.03162, 0.1, 0.3162, 1.0]
    assert {r["config"]["n_hidden"] for r in sweep["runs"]} == {200}  # the lecture's model
    assert sweep["swept"] == ["lr"]

    # every run on the compare chart, and the counts; then the result, point by point
    wait_runs_drawn(page, [r["id"] for r in sweep["runs"]])
    page.wait_for_function("() => document.getElementById('sweep-counts').dataset.finished === '7'", timeout=SWEEP_MS)
    expect(page.locator("#sweep-counts")).to_contain_text("0 queued · 0 running · 7 finished of 7")
    page.wait_for_function(
        """() => { const t = (document.getElementById('sweep-result').data || []).find(t => t.name === 'dev loss');
                   return t && t.x.length === 7; }""",
        timeout=WAIT_MS,
    )
    result = page.evaluate(
        """() => { const el = document.getElementById('sweep-result');
                   const dev = el.data.find(t => t.name === 'dev loss');
                   return { x: Array.from(dev.x), y: Array.from(dev.y), type: el.layout.xaxis.type,
                            train: el.data.find(t => t.name === 'train loss').y.length }; }"""
    )
    done = {r["hparams"]["lr"]: r for r in server.get(f"/api/sweeps/{sweep_id}")["runs"]}
    assert result["type"] == "log" and result["train"] == 7
    assert result["x"] == sorted(done)
    assert result["y"] == pytest.approx([done[lr]["last_eval"]["dev_loss"] for lr in sorted(done)])
    best = min(done.values(), key=lambda r: r["last_eval"]["dev_loss"])
    expect(page.locator("#sweep-best")).to_have_attribute("data-run", best["id"])
    SWEEP_SCREENSHOT.parent.mkdir(exist_ok=True)
    page.locator("#sweep-panel").screenshot(path=str(SWEEP_SCREENSHOT))
    page.click("#sweep-best")
    page.wait_for_url(f"**/?run={best['id']}", timeout=WAIT_MS)
    watch.check()


def test_heatmap_of_a_two_by_two_grid(server: Server, context: tuple[Any, Watch]) -> None:
    """Two swept parameters: a cell per combination, coloured and labelled by its final dev loss."""
    ctx, watch = context
    page = watch.attach(ctx.new_page())
    page.goto(f"{server.base}/?compare=")
    page.select_option("#sweep-param", "batch_size")
    page.fill("#sweep-values", "16, 64")
    page.select_option("#sweep-param2", "n_hidden")
    page.fill("#sweep-values2", "10 30")
    page.fill("#sweep-steps", "300")
    page.fill("#sweep-eval-every", "100")
    page.click("#sweep-submit")
    page.wait_for_url("**/?sweep=*", timeout=WAIT_MS)
    sweep_id = page.evaluate("() => new URLSearchParams(location.search).get('sweep')")
    page.wait_for_function(
        """() => { const t = (document.getElementById('sweep-result').data || []).find(t => t.meta === 'heatmap');
                   return t && t.x.length === 4; }""",
        timeout=SWEEP_MS,
    )
    cells = page.evaluate(
        """() => { const t = document.getElementById('sweep-result').data.find(t => t.meta === 'heatmap');
                   return { x: Array.from(t.x), y: Array.from(t.y), z: Array.from(t.marker.color),
                            text: Array.from(t.text) }; }"""
    )
    runs = server.get(f"/api/sweeps/{sweep_id}")["runs"]
    want = {(str(r["hparams"]["batch_size"]), str(r["config"]["n_hidden"])): r["last_eval"]["dev_loss"] for r in runs}
    got = dict(zip(zip(cells["x"], cells["y"], strict=True), cells["z"], strict=True))
    assert set(got) == {("16", "10"), ("16", "30"), ("64", "10"), ("64", "30")}
    assert got == pytest.approx(want)
    assert cells["text"] == [f"{z:.4f}" for z in cells["z"]]
    best = min(runs, key=lambda r: r["last_eval"]["dev_loss"])
    expect(page.locator("#sweep-best")).to_have_attribute("href", f"/?run={best['id']}")
    watch.check()


def test_ghost_behind_the_live_run(server: Server, context: tuple[Any, Watch]) -> None:
    """A finished run pinned in the single view: its smoothed loss drawn faintly, over its steps."""
    ghost = finished(server, small_run(server, 0.1, steps=400)["id"])
    ctx, watch = context
    page = watch.attach(ctx.new_page())
    page.goto(server.base + "/")
    expect(page.locator(f"#ghost option[value='{ghost['id']}']")).to_have_count(1, timeout=WAIT_MS)
    page.select_option("#ghost", ghost["id"])
    name = f"ghost: {ghost['name']}"
    page.wait_for_function(
        "name => (document.getElementById('chart').data || []).some(t => t.name === name && t.x.length > 10)",
        arg=name,
        timeout=WAIT_MS,
    )
    xs = page.evaluate("name => Array.from(document.getElementById('chart').data.find(t => t.name === name).x)", name)
    assert xs[0] <= 5 and 390 <= xs[-1] <= 400
    page.select_option("#ghost", "")
    page.wait_for_function(
        "name => !(document.getElementById('chart').data || []).some(t => t.name === name)", arg=name, timeout=WAIT_MS
    )
    watch.check()


def test_bad_sweep_gets_the_servers_reason(server: Server, context: tuple[Any, Watch]) -> None:
    """A sweep the server refuses (a grid of 65 runs) says why, under the form; nothing starts."""
    ctx, watch = context
    page = watch.attach(ctx.new_page())
    watch.expect_http(409, "/api/sweeps")
    before = len(server.get("/api/sweeps"))
    page.goto(f"{server.base}/?compare=")
    page.select_option("#sweep-param", "seed")
    page.fill("#sweep-values", " ".join(str(i) for i in range(13)))
    page.select_option("#sweep-param2", "batch_size")
    page.fill("#sweep-values2", "1 2 4 8 16")
    page.click("#sweep-submit")
    expect(page.locator("#sweep-error")).to_contain_text("65 runs")
    page.fill("#sweep-values2", "16 x")
    page.click("#sweep-submit")
    expect(page.locator("#sweep-error")).to_contain_text('"x" is not a number')
    assert len(server.get("/api/sweeps")) == before and page.url.endswith("?compare=")
    watch.check()


def test_stop_a_sweep_from_its_view(server: Server, context: tuple[Any, Watch]) -> None:
    """ "Stop the sweep" shows while it runs; it pauses the runs that train, takes the waiting one
    out of the queue, and the view says stopped."""
    ctx, watch = context
    sweep = server.send("POST", "/api/sweeps", {"base": {"max_steps": 10**7}, "grid": {"lr": [0.1, 0.05, 0.02]}})
    page = watch.attach(ctx.new_page())
    page.goto(f"{server.base}/?sweep={sweep['id']}")
    expect(page.locator("#sweep-status")).to_have_text("running", timeout=WAIT_MS)
    page.click("#sweep-stop")
    expect(page.locator("#sweep-status")).to_have_text("stopped", timeout=WAIT_MS)
    expect(page.locator("#sweep-stop")).to_be_hidden()
    runs = server.get(f"/api/sweeps/{sweep['id']}")["runs"]
    assert len(runs) == 3 and not {r["status"] for r in runs} & {"running", "queued"}
    watch.check()


PREVIEWED_JS = """ids => {
    const drawn = ['compare-chart', 'compare-live']
        .flatMap(p => document.getElementById(p).previewData || [])
        .filter(t => t.meta && t.x.length > 1);
    return ids.every(id => drawn.some(t => t.meta === id));
}"""
PAINTED_JS = """() => {  // the preview canvas's pixels that are not transparent
    const c = document.querySelector('#compare-chart > canvas.plot-preview');
    if (!c) return 0;
    const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
    let n = 0;
    for (let i = 3; i < d.length; i += 4) if (d[i] > 0) n++;
    return n;
}"""


def test_first_picture_before_plotly(server: Server, context: tuple[Any, Watch]) -> None:
    """Every run's line is on screen before plotly.js has run (a canvas: js/preview.js), plotly's
    chart takes its place once it has; when plotly.js cannot load, the picture stays and the
    page says why."""
    ids = [finished(server, small_run(server, lr)["id"])["id"] for lr in (0.05, 0.3)]
    url = f"{server.base}/?compare={','.join(ids)}"
    ctx, watch = context
    page = watch.attach(ctx.new_page())
    held: list[Any] = []
    page.route("**/vendor/plotly.min.js", lambda route: held.append(route))  # not before we say
    page.goto(url, wait_until="domcontentloaded")
    page.wait_for_function(PREVIEWED_JS, arg=ids, timeout=WAIT_MS)
    assert page.evaluate(PAINTED_JS) > 2000  # the lines, the grid and the ticks
    assert page.evaluate("() => !window.Plotly && !document.getElementById('compare-chart').data")

    def asked() -> bool:  # once the picture is on screen (Playwright reports routes during its calls)
        page.evaluate("0")
        return bool(held)

    wait_for(asked, timeout=WAIT_MS / 1000, what="plotly.js asked for after the first picture")
    for route in held:
        route.continue_()
    wait_runs_drawn(page, ids)
    expect(page.locator("canvas.plot-preview")).to_have_count(0)

    page = watch.attach(ctx.new_page())
    page.route("**/vendor/plotly.min.js", lambda route: route.fulfill(status=404, body="gone"))
    watch.expect_http(404, "/vendor/plotly.min.js")
    page.goto(url)
    expect(page.locator("#toast")).to_contain_text("plotly.js did not load", timeout=WAIT_MS)
    page.wait_for_function(PREVIEWED_JS, arg=ids, timeout=WAIT_MS)
    assert page.evaluate(PAINTED_JS) > 2000
    watch.check()


def test_compare_opens_in_the_page(server: Server, context: tuple[Any, Watch]) -> None:
    """From the single view, the runs list's Compare opens the compare view in the same page (no
    reload: plotly.js and every module already run there, only the runs' points come); going
    back shows the single view again."""
    ids = [finished(server, small_run(server, lr)["id"])["id"] for lr in (0.05, 0.3)]
    ctx, watch = context
    page = watch.attach(ctx.new_page())
    sockets: list[Any] = []
    page.on("websocket", lambda ws: sockets.append(ws))
    page.goto(f"{server.base}/?run={ids[0]}")
    page.wait_for_function("() => document.getElementById('chart').data", timeout=WAIT_MS)

    def both_open() -> bool:  # the run's and the runs list's (Playwright reports them during its calls)
        page.evaluate("0")
        return {urlsplit(ws.url).path for ws in sockets} == {f"/ws/runs/{ids[0]}", "/ws/runs"}

    wait_for(both_open, timeout=10, what="the single view's two sockets")
    single = list(sockets)
    for run_id in ids:
        page.locator(f"#runs li.run-row[data-id='{run_id}'] .run-select").check(timeout=WAIT_MS)
    page.evaluate("() => { window.samePage = true; }")
    page.locator("#compare-link").click()
    wait_runs_drawn(page, ids)
    assert page.evaluate("() => window.samePage") is True  # the page was not loaded again
    assert page.evaluate("() => location.search") == f"?compare={ids[0]},{ids[1]}"
    expect(page.locator("main.layout")).to_be_hidden()
    expect(page.locator("#compare-title")).to_have_text("Compare 2 runs")
    wait_for(lambda: all(ws.is_closed() for ws in single), timeout=10, what="the single view's sockets closed")
    assert [urlsplit(ws.url).path for ws in sockets if not ws.is_closed()] == ["/ws/runs"]  # the view's own
    page.go_back()
    page.wait_for_function("() => !window.samePage && document.getElementById('chart').data", timeout=WAIT_MS)
    expect(page.locator("#compare")).to_be_hidden()
    watch.check()


FRAMES_JS = """() => {  // each compare-draw with the animation frame it was drawn in
    window.frameNo = 0;
    const tick = () => { window.frameNo++; requestAnimationFrame(tick); };
    requestAnimationFrame(tick);
    window.drawFrames = [];
    const measure = performance.measure.bind(performance);
    performance.measure = (name, options) => {
        if (name === 'compare-draw') window.drawFrames.push([window.frameNo, options.detail.traces]);
        return measure(name, options);
    };
}"""


def test_first_picture_in_one_frame(server: Server, context: tuple[Any, Watch]) -> None:
    """The first picture is every run, in one frame: the runs that train (their own plot, over
    the other) are drawn with the stored ones, not a frame after them; later redraws are one plot
    a frame."""
    stored = finished(server, small_run(server, 0.1)["id"])["id"]
    live = small_run(server, 0.05, steps=10**7)["id"]
    try:
        wait_for(lambda: server.get(f"/api/runs/{live}")["step"] > 0, timeout=60, what="the run trains")
        ctx, watch = context
        page = watch.attach(ctx.new_page())
        page.add_init_script(f"({FRAMES_JS})()")
        page.goto(f"{server.base}/?compare={stored},{live}")
        page.wait_for_function(PREVIEWED_JS, arg=[stored, live], timeout=WAIT_MS)
        page.wait_for_function("() => window.drawFrames.length >= 3", timeout=WAIT_MS)  # the live run redrawn
        frames = page.evaluate("() => window.drawFrames")
        (first, still), (second, moving) = frames[:2]
        assert (still, moving) == (3, 3)  # the stored run's traces, then the live run's
        assert first == second  # one frame
        assert all(a[0] < b[0] for a, b in itertools.pairwise(frames[1:]))  # then a frame each
        watch.check()
    finally:
        server.send("PATCH", f"/api/runs/{live}", {"status": "paused"})


LOCALE_JS = """() => {  // each call of ours (a module under /static/js/) that formats by locale
    window.localeCalls = [];
    const ours = () => /\\/static\\/js\\//.test(new Error().stack);
    const NumberFormat = Intl.NumberFormat;
    Intl.NumberFormat = function (...args) {
        if (ours()) window.localeCalls.push('Intl.NumberFormat');
        return new NumberFormat(...args);
    };
    for (const [proto, name] of [[Number.prototype, 'Number'], [Date.prototype, 'Date']]) {
        for (const m of ['toLocaleString', 'toLocaleDateString', 'toLocaleTimeString']) {
            const f = proto[m];
            if (!f) continue;
            proto[m] = function (...args) {
                if (ours()) window.localeCalls.push(`${name}.${m}`);
                return f.apply(this, args);
            };
        }
    }
}"""


def test_no_locale_data_while_the_compare_view_opens(server: Server, context: tuple[Any, Watch]) -> None:
    """In a new page the first formatter by locale loads the locale's data (~30-40 ms of the main
    thread in a JS profile of a first visit): the compare view's picture, table and picker of
    runs are written without one (format.js groups digits itself)."""
    ids = [finished(server, small_run(server, lr)["id"])["id"] for lr in (0.05, 0.3)]
    other = small_run(server, 0.1)["id"]  # a choice for the picker
    ctx, watch = context
    page = watch.attach(ctx.new_page())
    page.add_init_script(f"({LOCALE_JS})()")
    page.goto(f"{server.base}/?compare={','.join(ids)}")
    wait_runs_drawn(page, ids)
    expect(page.locator(f"#compare-add-select option[value='{other}']")).to_contain_text("step ", timeout=WAIT_MS)
    expect(page.locator("#compare-table tbody tr")).to_have_count(2)
    assert page.evaluate("() => window.localeCalls") == []
    watch.check()


POINT_JS = """([id, x]) => {  // where on the page run id's smoothed line is, at its point nearest x
    const gd = document.getElementById('compare-chart');
    const t = [...gd.data, ...document.getElementById('compare-live').data].find(t => t.meta === id);
    let i = 0;
    for (let j = 1; j < t.x.length; j++) if (Math.abs(t.x[j] - x) < Math.abs(t.x[i] - x)) i = j;
    const full = gd._fullLayout, r = gd.querySelector('.nsewdrag').getBoundingClientRect();
    return [r.left + full.xaxis.d2p(t.x[i]), r.top + full.yaxis.d2p(t.y[i])];
}"""
HOVERED_JS = """() => {  // once both plots have taken the mouse's place (each labels its own points)
    const still = document.getElementById('compare-chart')._hoverdata || [];
    const live = document.getElementById('compare-live')._hoverdata || [];
    return [still.length, live.length];
}"""
LABELS_JS = """() => [...document.querySelectorAll('#compare-chart .hovertext, #compare-live .hovertext')]
    .filter(g => getComputedStyle(g).visibility !== 'hidden').map(g => g.textContent)"""


def test_live_and_stored_runs_share_the_axes_and_one_hover_label(server: Server, context: tuple[Any, Watch]) -> None:
    """A run that trains and one that does not are on two plots, one over the other: they have
    one plot area at any window height (the live one took .chart's height, 570 px in this window,
    and its lines were drawn 10% taller than the axes), and each labels its own point nearest the
    mouse: where their lines meet only the nearer label shows; where only the live one is, its."""
    stored = finished(server, small_run(server, 0.05)["id"])
    twin = server.send("POST", "/api/runs", {**SMALL, "lr": 0.05, "max_steps": 10**7, "name": "its twin, training"})
    try:
        wait_for(lambda: server.get(f"/api/runs/{twin['id']}")["step"] > 2000, timeout=60, what="the twin trains")
        ctx, watch = context
        page = watch.attach(ctx.new_page())
        page.set_viewport_size({"width": 1400, "height": 900})
        page.goto(f"{server.base}/?compare={stored['id']},{twin['id']}")
        wait_runs_drawn(page, [stored["id"]])
        page.wait_for_function(
            "id => (document.getElementById('compare-live').data || []).some(t => t.meta === id)",
            arg=twin["id"],
            timeout=WAIT_MS,
        )
        boxes = page.evaluate(
            """() => ['compare-chart', 'compare-live'].map(id => { const el = document.getElementById(id);
                const r = el.getBoundingClientRect(); return [r.top, r.height, el._fullLayout._size]; })"""
        )
        assert boxes[0] == boxes[1]
        # the first 1,200 steps: the stored run's 600 (the same seed and settings: the same line), the twin's on
        page.evaluate("() => Plotly.relayout('compare-chart', {'xaxis.range': [0, 1200]})")
        page.wait_for_function(
            """() => { const r = document.getElementById('compare-live')._fullLayout.xaxis.range;
                       return r[0] === 0 && r[1] === 1200; }""",
            timeout=WAIT_MS,
        )
        for step, both, name in ((300, True, None), (900, False, "its twin, training")):
            page.mouse.move(*page.evaluate(POINT_JS, [stored["id"] if both else twin["id"], step]), steps=5)
            page.wait_for_function(
                f"() => {{ const [s, l] = ({HOVERED_JS})(); return l > 0 && (s > 0) === {str(both).lower()}; }}",
                timeout=WAIT_MS,
            )
            labels = page.evaluate(LABELS_JS)
            assert len(labels) == 1, (step, labels)
            assert name is None or name in labels[0]
        watch.check()
    finally:
        server.send("PATCH", f"/api/runs/{twin['id']}", {"status": "paused"})
