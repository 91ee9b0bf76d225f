"""The API keeps its own contract (issue 9.5): schemathesis generates requests from the OpenAPI
document, valid and invalid, and checks every answer against it: no 5xx, only documented status
codes and content types, bodies that match their schemas, schema-valid input accepted and
invalid input refused.

The requests go to the real server (`python -m backend`, edge layer included) on a small word
list, with one training slot: the fuzzing creates runs, sweeps and uploads, and their training
must not starve the server on a 2-core machine. The document is the application's own, built
here without a server (schemathesis parametrizes at import time); the test checks that the
server serves the same one."""

from __future__ import annotations

import json
import os
import tempfile
import threading
import time
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.specs.openapi.checks import positive_data_acceptance

from backend.app.main import create_app
from backend.config import Settings
from harness.server import running_server
from tests.conftest import DEFAULT_DATA

with tempfile.TemporaryDirectory(prefix="makemore-contract-") as _home:
    DOCUMENT: dict[str, Any] = create_app(Settings(home=_home)).openapi()  # no lifespan: nothing starts
schema = schemathesis.openapi.from_dict(DOCUMENT)


@pytest.fixture(scope="module")
def base_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    words = tmp_path_factory.mktemp("words") / "words.txt"
    words.write_text("\n".join(DEFAULT_DATA.read_text().split()[:2000]) + "\n")
    log = tmp_path_factory.mktemp("server") / "server.log"
    env = {k: "" for k in os.environ if k.startswith("MAKEMORE_")}
    env |= {"MAKEMORE_MAX_RUNNING": "1", "MAKEMORE_MAX_SWEEPS": "1"}
    with running_server("--data", str(words), env=env, log=log) as server:
        # the application loads torch in the background while /api/health answers; its document waits for it
        with urllib.request.urlopen(f"{server.url}/openapi.json", timeout=120) as r:
            served = json.load(r)
        assert served == DOCUMENT
        with HealthWatch(server.url) as watch:
            yield server.url
        # the fuzzing creates hundreds of runs: the server keeps answering throughout (a create
        # forked a worker each, and /api/health once went unanswered for minutes)
        assert watch.polls > 10 and watch.worst < 1.0, (watch.polls, watch.worst)


class HealthWatch:
    """Asks /api/health again and again, on a thread, while the fuzzing runs: the slowest answer."""

    def __init__(self, url: str) -> None:
        self.url, self.polls, self.worst = url, 0, 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)

    def __enter__(self) -> HealthWatch:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(10)

    def _watch(self) -> None:
        while not self._stop.wait(0.25):  # the pace of the polls, not a wait for something
            t0 = time.monotonic()
            try:
                with urllib.request.urlopen(f"{self.url}/api/health", timeout=5) as r:
                    r.read()
            except OSError:
                pass  # counted by its time: 5 s
            self.worst = max(self.worst, time.monotonic() - t0)
            self.polls += 1


# Where the schema cannot say all that valid input needs, schema-valid input may rightly get a 422
# naming the problem, and the "schema-valid input is accepted" check does not apply (every other
# check does):
# - a word list is a file whose *content* the schema cannot describe (one word per line, at most
#   64 distinct characters, no '.'): random bytes that fit `format: binary` are refused;
# - the learning-rate finder's min_lr must be below its max_lr, and so must a sweep's lr_range min
#   below its max (JSON Schema cannot compare two fields).
BEYOND_THE_SCHEMA = {("POST", "/api/datasets"), ("POST", "/api/runs/{run_id}/lr-find"), ("POST", "/api/sweeps")}


@schema.parametrize()
@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
def test_api_keeps_its_contract(case: schemathesis.Case, base_url: str) -> None:
    op = (case.operation.method.upper(), case.operation.path)
    excluded = [positive_data_acceptance] if op in BEYOND_THE_SCHEMA else []
    case.call_and_validate(base_url=base_url, excluded_checks=excluded, timeout=60)
