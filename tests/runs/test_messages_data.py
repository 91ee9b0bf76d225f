"""Messages carry data, not prose: why a run has its status arrives as fields (`cause`, and a
divergence's step, losses and restored step), the `detail` is for people, and no page module
reads it for meaning."""

from __future__ import annotations

import ast
import math
import os
import re
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient

from backend.core.data import Dataset
from backend.runs.datasets import record_of
from backend.store.records import RunRecord
from backend.store.store import Store
from backend.streaming.messages import event_message
from backend.training.protocol import Cause, Divergence, Status, StatusChanged
from backend.training.spec import HParams, RunSpec
from tests.conftest import ROOT, wait_for

Client = Callable[..., TestClient]

FRONTEND = sorted((ROOT / "frontend" / "js").rglob("*.js"))
TEXT_METHODS = r"(?:match|matchAll|test|exec|search|includes|startsWith|endsWith|indexOf|lastIndexOf|split|replace)"
DETAIL = r"(?<![\w.?\]\[])(?<!typeof )[\w.?\]\[]*\bdetail\b"  # run.detail, msg?.detail, detail (not its type)
READS_DETAIL = [
    # detail.match(...), (run.detail || "").includes(...)
    re.compile(rf"{DETAIL}\s*(?:\|\|\s*(['\"`])[^'\"`]*\1\s*)?\)?\s*\.\s*{TEXT_METHODS}\s*\("),
    # /re/.test(run.detail), RE.exec(detail || ""), "x".includes(state.detail)
    re.compile(rf"\.\s*{TEXT_METHODS}\s*\(\s*\(?\s*{DETAIL}"),
    # state.detail === "finding the learning rate", "..." !== msg.detail
    re.compile(rf"{DETAIL}\s*[!=]==?\s*['\"`]|['\"`]\s*[!=]==?\s*{DETAIL}"),
    re.compile(rf"switch\s*\(\s*{DETAIL}"),
]


def test_no_frontend_module_reads_a_detail_for_meaning() -> None:
    """A regular expression, a string search or a comparison applied to a `detail`: the page would
    react to words written for people (and break when they are reworded)."""
    assert len(FRONTEND) > 20
    found = [
        f"{path.relative_to(ROOT)}:{n}: {line.strip()}"
        for path in FRONTEND
        for n, line in enumerate(path.read_text().splitlines(), 1)
        if any(p.search(line) for p in READS_DETAIL)
    ]
    assert found == [], "read the message's fields (cause, divergence), not its detail:\n" + "\n".join(found)


def test_the_patterns_catch_what_the_page_did() -> None:
    """The lines the page had before its messages carried data are caught (so the test above can fail)."""
    old = [
        '  const m = RESTORED.exec(detail || "");',
        '  const restarted = /server/.test(run.detail || "");',
        '    const paused = state.detail === "finding the learning rate" ? " (waits)" : "";',
        '  if (msg.detail.includes("restored")) mark();',
        '  const why = (run.detail || "").match(/step ([\\d,]+)/);',
    ]
    assert [line for line in old if not any(p.search(line) for p in READS_DETAIL)] == []
    fine = ["  state.detail = msg.detail;", '  status.title = r.detail || "";', "  notify(msg.detail, 'error');"]
    fine.append('  if (typeof detail === "string") return detail;')
    assert [line for line in fine if any(p.search(line) for p in READS_DETAIL)] == []


DETAIL_CALLS = {"_set_status", "StatusChanged", "Stop", "stop", "shutdown", "_restore", "cut_to_checkpoint", "_cut"}
DETAIL_NAMES = {"detail", "what", "restored", "note"}


def detail_phrases() -> set[str]:
    """The words the backend writes into a status's detail (string constants, and the constant
    parts of f-strings, passed as one or assigned to a name for one), of three words or more."""
    phrases: set[str] = set()

    def take(node: ast.AST) -> None:
        for sub in ast.walk(node):
            if isinstance(sub, ast.Constant) and isinstance(sub.value, str):
                words = re.findall(r"[a-z0-9_]+", sub.value.lower())
                if len(words) >= 3:
                    phrases.add(" ".join(words))

    for path in (ROOT / "backend").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call):
                f = node.func
                name = f.attr if isinstance(f, ast.Attribute) else f.id if isinstance(f, ast.Name) else ""
                if name in DETAIL_CALLS:
                    for arg in [*node.args, *(k.value for k in node.keywords)]:
                        take(arg)
            elif isinstance(node, ast.Assign) and any(
                isinstance(t, ast.Name) and t.id in DETAIL_NAMES for t in node.targets
            ):
                take(node.value)
    return phrases


# string literals a module compares or searches with, and regular expression literals
MATCHED = [
    re.compile(r"[!=]==?\s*(['\"`])(?P<text>[^'\"`]+)\1"),
    re.compile(r"(['\"`])(?P<text>[^'\"`]+)\1\s*[!=]==?"),
    re.compile(rf"\.\s*{TEXT_METHODS}\s*\(\s*(['\"`])(?P<text>[^'\"`]+)\1"),
    re.compile(r"(?:^|[=(,:!&|?]\s*)/(?P<text>(?:\\.|[^/\\\n*])(?:\\.|[^/\\\n])*)/[dgimsuy]*"),
]


def words(text: str) -> list[str]:
    return re.findall(r"[a-z0-9_]+", text.lower())


def threes(ws: list[str]) -> set[tuple[str, ...]]:
    return {tuple(ws[i : i + 3]) for i in range(len(ws) - 2)}


def matched_words(line: str) -> list[str]:
    """The literals on a line that a module compares or searches text with."""
    return [m["text"] for p in MATCHED for m in p.finditer(line)]


def test_no_frontend_module_looks_for_the_words_of_a_detail() -> None:
    """A string a page module compares with, or searches for, or a regular expression, that holds
    three words in a row of what the server writes in a status's detail: the module reads the
    detail for meaning, however it spells the comparison (`d !== "paused by a user"`)."""
    server = set().union(*(threes(p.split()) for p in detail_phrases()))
    assert {("paused", "by", "a"), ("finding", "the", "learning"), ("from", "the", "evaluation")} <= server
    found = [
        f"{path.relative_to(ROOT)}:{n}: {text!r}"
        for path in FRONTEND
        for n, line in enumerate(path.read_text().splitlines(), 1)
        for text in matched_words(line)
        if threes(words(text)) & server
    ]
    assert found == [], "the page reads the message's fields, not its detail:\n" + "\n".join(found)
    old = [
        '  setText("status-detail", detail.filter((d) => d !== "paused by a user").join(" "));',
        '    const paused = state.detail === "finding the learning rate" ? " (waits)" : "";',
        "const RESTORED = /restored from the evaluation at step ([\\d,]+)/; // the trainer's detail says so",
    ]
    assert [line for line in old if not any(threes(words(t)) & server for t in matched_words(line))] == []


# string methods that read a text, and the names a detail goes by in the backend
READS_TEXT = {"split", "rsplit", "partition", "rpartition", "startswith", "endswith", "removeprefix", "removesuffix"}
READS_TEXT |= {"find", "rfind", "index", "rindex", "count", "replace"}


def _is_detail(node: ast.AST) -> bool:
    return (isinstance(node, ast.Attribute) and node.attr == "detail") or (
        isinstance(node, ast.Name) and node.id == "detail"
    )


def reads_a_detail(source: str) -> list[int]:
    """The lines of a module that take a detail apart (`x.detail.split(...)`, `"..." in detail`,
    a regular expression over it): what it holds is then in the text, not in a field."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            f = node.func
            searched = (
                [f.value] if f.attr in READS_TEXT else node.args if f.attr in {"match", "search", "findall"} else []
            )
            if any(_is_detail(n) for n in searched):
                found.append(node.lineno)
        elif isinstance(node, ast.Compare) and any(
            isinstance(op, ast.In | ast.NotIn) and _is_detail(n)
            for op, n in zip(node.ops, node.comparators, strict=True)
        ):
            found.append(node.lineno)
    return found


def test_no_backend_module_takes_a_detail_apart() -> None:
    """What a run's detail says comes from fields (a checkpoint held in memory, a divergence's
    step): the backend writes details and never reads one back for meaning."""
    found = [
        f"{path.relative_to(ROOT)}:{n}"
        for path in sorted((ROOT / "backend").rglob("*.py"))
        for n in reads_a_detail(path.read_text())
    ]
    assert found == [], "the backend reads a detail for meaning:\n" + "\n".join(found)
    old = [
        "base = live.record.detail.split(HELD_NOTE)[0]",
        'held = "not yet written" in run.detail',
        "m = RESTORED.search(detail)",
        "done = r.detail.removesuffix(note)",
    ]
    assert [line for line in old if not reads_a_detail(line)] == []
    fine = [
        "r.detail = detail",
        'detail = f"{held.detail}; its checkpoint at step {step:,}"',
        "log.info('%s', r.detail)",
    ]
    assert [line for line in fine if reads_a_detail(line)] == []


def test_a_status_message_says_whether_its_checkpoint_is_held() -> None:
    for held in (False, True):
        msg = event_message(StatusChanged(Status.PAUSED, 5, "paused by a user", Cause.USER, None, held))
        assert msg["checkpoint_held"] is held and msg["cause"] == "user"


# ---- the fields, as they arrive ------------------------------------------------------------------------------
def get(client: TestClient, run_id: str) -> dict[str, Any]:
    r = client.get(f"/api/runs/{run_id}")
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


def test_a_divergence_arrives_as_data_and_survives_a_restart(make_client: Client, tmp_path: Path) -> None:
    """A run at lr 0.1 pushed to lr 10 diverges: its status message says so as fields (where, the
    losses, the rate, whose weights came back, with that evaluation's dev loss), the run's record
    says the same, after a restart too; resumed, it has nothing left to explain."""
    client = make_client(home=tmp_path)
    run = client.post("/api/runs", json={"max_steps": 10**7, "eval_every": 300, "start": False}).json()
    evals: dict[int, float] = {}
    with client.websocket_connect(f"/ws/runs/{run['id']}") as ws:
        assert ws.receive_json()["type"] == "snapshot"
        client.patch(f"/api/runs/{run['id']}", json={"status": "running"})
        changed = None
        for _ in range(100_000):
            msg = ws.receive_json()
            if msg["type"] == "eval":
                evals[msg["step"]] = msg["dev_loss"]
            elif msg["type"] == "steps" and changed is None and msg["step"][-1] > 1500:
                changed = -1
                r = client.patch(f"/api/runs/{run['id']}", json={"lr": 10.0})
                assert r.status_code == 200, r.text
            elif msg["type"] == "hparams" and msg["lr"] == 10.0:
                changed = msg["step"]
            elif msg["type"] == "status" and msg["status"] == "diverged":
                status = msg
                break
        else:
            raise AssertionError("no divergence")
    assert changed is not None and changed > 1500
    d = status["divergence"]
    assert status["cause"] == "diverged" and d is not None
    assert set(d) == {"step", "lr", "loss", "smoothed", "best_smoothed", "restored_step", "restored_dev_loss"}
    assert d["lr"] == 10.0 and changed <= d["step"] <= status["step"]
    assert d["loss"] is None or d["smoothed"] > 10 * d["best_smoothed"]  # what gave it away
    # the weights of an evaluation came back: its step and dev loss; the run was re-evaluated at
    # once at the step it stopped (the same loss), before the status was sent
    assert d["restored_step"] in evals and d["restored_step"] < d["step"] and d["restored_step"] % 300 == 0
    assert d["restored_dev_loss"] == evals[d["restored_step"]]
    assert abs(evals[status["step"]] - d["restored_dev_loss"]) < 1e-4
    assert f"restored from the evaluation at step {d['restored_step']:,}" in status["detail"]  # the same, for people

    stored = get(client, run["id"])
    assert stored["status"] == "diverged" and stored["cause"] == "diverged" and stored["divergence"] == d
    client.__exit__(None, None, None)
    again = make_client(home=tmp_path)
    back = get(again, run["id"])
    assert (back["status"], back["cause"], back["divergence"]) == ("diverged", "diverged", d)
    with again.websocket_connect(f"/ws/runs/{run['id']}") as ws:
        snap = ws.receive_json()
    assert snap["run"]["divergence"] == d  # what the page marks the chart with on a reload
    resumed = again.patch(f"/api/runs/{run['id']}", json={"lr": 0.05, "status": "running"}).json()
    assert resumed["status"] == "running" and resumed["cause"] is None and resumed["divergence"] is None


def test_why_a_run_stopped_is_a_cause(make_client: Client, tmp_path: Path) -> None:
    """A user's pause says `user`; a run whose worker dies `worker_died`; a run that trained, or
    waited in the queue, when the server stopped `server_stopped`, after the restart (what the
    page tells a tab that comes back)."""
    client = make_client(home=tmp_path, max_running=1)
    long = {"max_steps": 10**7, "eval_every": 500}
    mine, doomed, training = (client.post("/api/runs", json=long).json() for _ in range(3))
    assert [r["status"] for r in (mine, doomed, training)] == ["running", "queued", "queued"]
    wait_for(lambda: get(client, mine["id"])["step"] > 200, what="training")
    paused = client.patch(f"/api/runs/{mine['id']}", json={"status": "paused"}).json()
    assert (paused["status"], paused["cause"]) == ("paused", "user")
    wait_for(lambda: get(client, doomed["id"])["step"] > 200, what="the second run training")
    os.kill(int(get(client, doomed["id"])["worker"].split(":")[1]), signal.SIGKILL)
    dead = wait_for(lambda: (r := get(client, doomed["id"]))["status"] == "interrupted" and r, what="interrupted")
    assert dead["cause"] == "worker_died"
    wait_for(lambda: get(client, training["id"])["step"] > 200, what="the third run training")
    queued = client.post("/api/runs", json=long).json()
    assert (queued["status"], queued["cause"]) == ("queued", None)
    client.__exit__(None, None, None)

    again = make_client(home=tmp_path)
    causes = {r: (get(again, r)["status"], get(again, r)["cause"]) for r in (mine["id"], doomed["id"])}
    assert causes == {mine["id"]: ("paused", "user"), doomed["id"]: ("interrupted", "worker_died")}
    assert (get(again, training["id"])["status"], get(again, training["id"])["cause"]) == ("paused", "server_stopped")
    assert (get(again, queued["id"])["status"], get(again, queued["id"])["cause"]) == ("paused", "server_stopped")


def test_a_server_that_died_leaves_its_runs_a_cause(tmp_path: Path, small_dataset: Dataset) -> None:
    """At start-up after a crash (no clean stop): a run that was training is interrupted, one that
    was queued paused, both `server_stopped`; a diverged run keeps its cause and its divergence."""
    s = Store(tmp_path / "h")
    s.open()
    s.put_dataset(record_of(small_dataset, 1.0), "\n".join(small_dataset.words))
    spec = RunSpec(dataset=s.datasets()[0].id)
    now = time.time()
    went = Divergence(812, 10.0, float("nan"), 31.5, 2.4, 600, 2.3125)
    for rid, status in (("t", Status.RUNNING), ("q", Status.QUEUED), ("d", Status.DIVERGED)):
        r = RunRecord(rid, rid, spec, status, "", 0, HParams(max_steps=1000), now, now)
        if status is Status.DIVERGED:
            r.cause, r.divergence = Cause.DIVERGED, went
        s.put_run(r, wait=True)
        s.put_checkpoint(rid, 0, f"{rid} at 0".encode(), None, None)
    s.flush()
    s.close()
    s = Store(tmp_path / "h")
    s.open()
    back = {r.id: (r.status, r.cause) for r in s.recover()}
    assert back == {"t": (Status.INTERRUPTED, Cause.SERVER_STOPPED), "q": (Status.PAUSED, Cause.SERVER_STOPPED)}
    stored = [s.run(rid) for rid in "tq"]
    assert {r.id: (r.status, r.cause) for r in stored if r is not None} == back
    d = s.run("d")
    assert d is not None and d.cause is Cause.DIVERGED and d.divergence is not None
    assert d.divergence.step == 812 and d.divergence.restored_step == 600 and math.isnan(d.divergence.loss)
    s.close()
