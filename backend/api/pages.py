"""The page: static files from frontend/, and plotly.js from the installed plotly package.

Starlette only: Boot serves the page before FastAPI has loaded (see boot.py and meta.py)."""

from __future__ import annotations

import functools
import gzip
import hashlib
import html
import importlib.util
import posixpath
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlencode

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.middleware.gzip import GZipMiddleware
from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, Response
from starlette.routing import BaseRoute, Route
from starlette.types import ASGIApp

from backend.api.assets import Assets

FRONTEND = Path(__file__).resolve().parents[2] / "frontend"
# The gzip middleware's settings (Boot's and the application's): level 1 makes JSON ~25% larger
# than level 9 at a third of the CPU (the compare view's 440 KB of points: 10 ms instead of 33,
# on the event loop); on loopback or a LAN the bytes cost less than the time. Starlette sends a
# body of 128 KiB or more to a worker thread to compress; while two runs train, that hop held the
# compare view's points (~700 KB, ~10 ms to compress) 0.1-0.4 s. So up to 1 MiB on the loop.
GZIP_LEVEL = 1
GZIP_MIN_BYTES = 2048
GZIP_ON_LOOP_BYTES = 1 << 20
PRELOAD_MARK = "<!-- modulepreload -->"
# The compare view's points, asked for by the page's first lines (see points_preload)
POINTS_MARK = "<!-- points -->"
PLOTLY_MARK = "<!-- plotly -->"


def gzipped(app: ASGIApp) -> ASGIApp:
    """The gzip middleware, as Boot and the application both wrap themselves in it."""
    return GZipMiddleware(app, GZIP_MIN_BYTES, GZIP_LEVEL, thread_minimum_size=GZIP_ON_LOOP_BYTES)


@dataclass(frozen=True)
class View:
    """What the page is written with for one of its views (page_html)."""

    # its modules: the compare view's first requests (prefetch.js), the entry (main.js), then the
    # view main.js imports for the address (not followed: a dynamic import) and everything that
    # imports. The single view's takes in the compare view's too (its runs list opens that in the
    # page); the compare view's leaves the single view's ~20 out.
    modules: tuple[str, ...]
    # at PLOTLY_MARK: plotly.js's bytes preloaded for the single view (every panel of it is a
    # plot), not for the compare view: it draws its first picture without plotly.js, and on a
    # first visit the 1.5 MB coming in beside its modules and points delayed that picture by ~0.3 s
    # (1.65 -> 1.30 s, medians of 6 fresh opens with two runs training)
    plotly: str
    # index.html's markup as written for this view (each found once): the compare view's page shows
    # that view and hides the single view's (as view.js then sets them), else the browser lays
    # the single view out first and again once view.js swaps them, ~0.1 s of its main thread on a
    # first visit while two runs train
    shown: tuple[tuple[str, str], ...] = ()


VIEWS = {
    "single": View(
        modules=("js/compare/prefetch.js", "js/main.js", "js/single.js"),
        plotly='<link rel="preload" href="/vendor/plotly.min.js" as="script">',
    ),
    "compare": View(
        modules=("js/compare/prefetch.js", "js/main.js", "js/compare/view.js"),
        plotly="",
        shown=(
            ("<body>", '<body data-view="compare">'),
            (
                '<section id="compare" class="compare" aria-label="compare runs" hidden>',
                '<section id="compare" class="compare" aria-label="compare runs">',
            ),
            ('<main class="layout">', '<main class="layout" hidden>'),
            ('<span id="connection" class="pill"', '<span id="connection" hidden class="pill"'),
        ),
    ),
}
RUN_ID = re.compile(r"^[0-9a-f]{12}$")
MAX_COMPARED = 20  # runs in the compare view (the page reads it: js/compare/address.js MAX_RUNS)
# the compare chart's plot width in its widest layout (js/compare/prefetch.js: MAX_WIDTH - FRAME_X
# - MARGIN_X), for points_preload: the server does not know the window's
WIDEST_PLOT_PX = 1600 - 74 - 74
IMPORT = re.compile(r'^(?:import|export)\s[\w\s{},*$]*?\bfrom\s+"(\.{1,2}/[^"]+)"', re.MULTILINE)  # static imports


def plotly_js() -> Path:
    spec = importlib.util.find_spec("plotly")
    if spec is None or spec.origin is None:
        raise RuntimeError("the plotly package is not installed")
    return Path(spec.origin).parent / "package_data" / "plotly.min.js"


async def index(request: Request) -> HTMLResponse:
    # on the loop: made once per process (~5 ms, the first time), a thread hop would cost more after
    q = request.query_params
    view = "compare" if "compare" in q or "sweep" in q else "single"  # as js/compare/address.js reads it
    page = page_html(view).replace(POINTS_MARK, points_preload(q), 1)
    return HTMLResponse(page, headers={"Cache-Control": "no-cache"})


def compared(value: str) -> list[str]:
    """The run ids of `?compare=`, as js/compare/address.js's readAddress reads them."""
    ids = dict.fromkeys(s.strip() for s in value.split(",") if RUN_ID.match(s.strip()))
    return list(ids)[:MAX_COMPARED]


def open_points(runs: int) -> int:
    """Points per run for the compare view's first answer: js/compare/prefetch.js's pointsPerRun
    (a minimum and a maximum every 2, 3 or 4 px) at the widest plot."""
    px = 2 if runs <= 4 else 3 if runs <= 10 else 4
    return 2 * round(WIDEST_PLOT_PX / px)


def points_preload(query: Mapping[str, str]) -> str:
    """For the compare view's address, a `<link rel=preload>` of its one request for the runs'
    points (GET /api/runs/points), which js/compare/prefetch.js then takes. The browser sends it
    as it reads the page's first lines, before the modules: asked by prefetch.js once that had come
    and run, it waited behind them for one of the browser's six connections, ~1 s on a first visit
    with two runs training on this machine (39 modules then)."""
    if "compare" not in query or "sweep" in query:  # the sweep view's address wins (readAddress)
        return ""
    ids = compared(query["compare"])
    if not ids:
        return ""
    href = html.escape("/api/runs/points?" + urlencode({"ids": ",".join(ids), "points": open_points(len(ids))}))
    return f'<link rel="preload" as="fetch" crossorigin href="{href}" data-ids="{",".join(ids)}">'


@functools.cache
def page_html(view: str) -> str:
    """index.html as written for `view` (a key of VIEWS): its markup and bounds, plotly.js's preload, and a
    `modulepreload` link for each module the page imports for it. Without them the
    browser finds the modules one level of imports at a time (five round trips before the last
    one is asked for, on a busy machine 0.5-1 s); with them it asks for all at once. Made once
    per process (~5 ms: every module read), so an edit of index.html shows after a restart; a
    module imported since is still loaded, by its importer, only not ahead."""
    v = VIEWS[view]
    # the page's bounds that are the server's: the runs the compare view takes (js/compare/address.js)
    bounds = (('<html lang="en">', f'<html lang="en" data-max-compared="{MAX_COMPARED}">'),)
    links = "\n".join(f'  <link rel="modulepreload" href="/static/{m}">' for m in module_graph(v.modules))
    page = (FRONTEND / "index.html").read_text(encoding="utf-8")
    for was, shown in bounds + v.shown:
        if page.count(was) != 1:
            raise RuntimeError(f"index.html: {was!r} is not there once, to write the {view} view")
        page = page.replace(was, shown)
    return page.replace(PRELOAD_MARK, links.lstrip(), 1).replace(PLOTLY_MARK, v.plotly, 1)


def module_graph(entries: tuple[str, ...]) -> list[str]:
    """Every module the entries import, directly or not (paths under frontend/), entries first
    and then in the order found."""
    found: list[str] = []
    todo = list(entries)
    while todo:
        path = todo.pop(0)
        if path in found:
            continue
        found.append(path)
        text = (FRONTEND / path).read_text(encoding="utf-8")
        todo += [posixpath.normpath(posixpath.join(posixpath.dirname(path), spec)) for spec in IMPORT.findall(text)]
    return found


@functools.cache
def plotly_gzipped() -> tuple[bytes, str]:
    """plotly.min.js gzipped, and its ETag: once per process (0.2-0.3 s of CPU for 4.8 MB ->
    1.5 MB). Compressed per request by the gzip middleware, it held the event loop that long on
    every page load, and every other request of the page waited behind it."""
    path = plotly_js()
    if not path.exists():
        raise HTTPException(500, "plotly.min.js is missing from the plotly package")
    gz = gzip.compress(path.read_bytes(), compresslevel=9, mtime=0)
    return gz, '"' + hashlib.sha256(gz).hexdigest()[:32] + '"'


async def plotly(request: Request) -> Response:
    # the first time 0.2-0.3 s of CPU: off the loop; after, a thread hop would cost more than the answer
    gz, etag = plotly_gzipped() if plotly_gzipped.cache_info().currsize else await run_in_threadpool(plotly_gzipped)
    headers = {"Cache-Control": "public, max-age=86400"}
    if "gzip" not in request.headers.get("accept-encoding", ""):
        return FileResponse(plotly_js(), media_type="text/javascript", headers=headers)  # its own ETag
    headers |= {"ETag": etag, "Vary": "Accept-Encoding"}  # the gzip middleware adds Vary to the other
    if etag in request.headers.get("if-none-match", ""):
        return Response(status_code=304, headers=headers)
    # the gzip middleware leaves an answer that has a Content-Encoding alone
    return Response(gz, media_type="text/javascript", headers={**headers, "Content-Encoding": "gzip"})


def page_routes() -> list[BaseRoute]:
    """The page's routes and its static files (none of them in the API's schema)."""
    return [
        Route("/", index, methods=["GET", "HEAD"]),
        Route("/vendor/plotly.min.js", plotly, methods=["GET", "HEAD"]),
        Route("/static/{path:path}", Assets(FRONTEND, GZIP_MIN_BYTES).serve, methods=["GET", "HEAD"], name="static"),
    ]


def add_page(app: Starlette) -> None:
    """The page's routes and its static files, on `app`."""
    app.router.routes.extend(page_routes())
