"""Debian's Chromium as the tests and benchmarks drive it (Playwright's own download does not
work here): where it is, how it starts, and the hosts a page may talk to."""

from __future__ import annotations

from pathlib import Path

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",  # else Chromium calls out, and this machine refuses it
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
LOCAL_HOSTS = {"127.0.0.1", "localhost"}
