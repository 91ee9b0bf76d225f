"""A long run fed to the page's own message handler (frontend/js/events.js), as the server would
stream it, and what the page's main thread makes of it: long tasks, redraw times and how
soon the Sample button answers. Shared by tests/browser/test_browser.py and bench/page.py; the JavaScript
is harness/synthetic_run.js.

The feed starts with the snapshot of a run at step `start` (every evaluation, `evalEvery` steps
apart; the history as the server downsamples it), then sends `hz` steps messages a second of
`rate / hz` steps each, with an evaluation, a noise estimate and an embedding map every
`evalEvery` steps, as a run training at `rate` steps/s would. The page's own websocket must be
quiet meanwhile (`mute_socket`), or its messages would mix with these.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

SCRIPT = Path(__file__).with_suffix(".js")


def mute_socket(page: Any) -> None:
    """Answer the page's websocket ourselves and send nothing: the connection is open and quiet
    whatever the server's runs do, so only the feed speaks. Call before the page loads."""
    page.route_web_socket("**/ws/runs/**", lambda ws: None)


def _load(page: Any) -> None:
    if not page.evaluate("() => !!window.syntheticRun"):
        # evaluated, not added as a <script>: the page's Content-Security-Policy refuses inline scripts
        page.evaluate("() => {\n" + SCRIPT.read_text() + "\n}")


def feed(page: Any, run: dict[str, Any], **opts: Any) -> int:
    """Start the feed (see above) with the real `run` as a template; returns the first step it streams."""
    _load(page)
    start: int = page.evaluate("args => window.syntheticRun.feed(args)", [run, opts])
    return start


def install_probe(page: Any) -> None:
    _load(page)
    page.evaluate("() => window.syntheticRun.installProbe()")


def read_probe(page: Any) -> dict[str, Any]:
    """{seconds, longtask_ms, longtask_share, longtasks, longest_ms, redraws: {chart id: [ms]}, samples: [ms]}"""
    result: dict[str, Any] = page.evaluate("() => window.syntheticRun.readProbe()")
    return result
