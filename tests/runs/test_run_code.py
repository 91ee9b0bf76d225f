"""GET /api/runs/{run_id}/code: a run as a plain-PyTorch script (backend/runs/code.py), run in a
subprocess on the run's word list and held against the run's own history.

The script draws the trainer's minibatches (the run's seeded generator, in the same blocks, a new
block at a change of batch size), so with the scaled init its loss at every step is the run's to
the four decimals it prints; with the lecture's plain randn init its first steps are the run's and
later ones drift (huge early gradients amplify float rounding: autograd against the trainer's
hand-written backward pass), so there it is held to the run's range."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient

from backend.core.data import Dataset
from backend.runs.code import generate
from backend.store.records import RunRecord
from backend.training.protocol import Status
from backend.training.spec import HParams, RunSpec
from tests.conftest import wait_for

Client = Callable[..., TestClient]
LOSS_LINE = re.compile(r"^\s*(\d+)/\s*\d+: ([0-9.]+)$", re.M)
PRINTED = 1.5e-4  # 4 printed decimals, and float rounding


def finished(client: TestClient, run_id: str) -> dict[str, Any]:
    def done() -> dict[str, Any] | None:
        run: dict[str, Any] = client.get(f"/api/runs/{run_id}").json()
        return run if run["status"] == "finished" else None

    return wait_for(done, timeout=120, what=f"run {run_id} to finish")


def replay(client: TestClient, run_id: str, tmp_path: Path, words: list[str]) -> tuple[str, dict[int, float], float]:
    """(the script, its printed loss per step, its final train loss), run on the run's words."""
    r = client.get(f"/api/runs/{run_id}/code")
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/x-python")
    assert re.fullmatch(rf'attachment; filename="makemore-[a-z0-9-]+-{run_id}\.py"', r.headers["content-disposition"])
    script = tmp_path / "replay.py"
    script.write_text(r.text)
    data = tmp_path / "words.txt"
    data.write_text("\n".join(words) + "\n")
    done = subprocess.run(
        [sys.executable, str(script), str(data), "--log-every", "1"],
        check=False,  # its return code is asserted below, with its stderr
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    losses = {int(s): float(v) for s, v in LOSS_LINE.findall(done.stdout)}
    train = re.search(r"^train ([0-9.]+)$", done.stdout, re.M)
    assert train is not None, done.stdout
    return r.text, losses, float(train.group(1))


def history(client: TestClient, run_id: str) -> dict[int, float]:
    h = client.get(f"/api/runs/{run_id}/history").json()["steps"]
    return dict(zip(h["step"], h["loss"], strict=True))


def test_the_script_replays_a_run_with_its_changes_step_for_step(
    make_client: Client, small_dataset: Dataset, tmp_path: Path
) -> None:
    """300 steps: lr 0.1 -> 0.05 at step 100 and batch 32 -> 64 at step 200, each a branch (whose
    timeline entry is its own, at that step). Every one of the 300 losses is the run's."""
    client = make_client()
    a = client.post("/api/runs", json={"init": "scaled", "max_steps": 100, "eval_every": 100}).json()
    finished(client, a["id"])
    b = client.post(f"/api/runs/{a['id']}/branch", json={"lr": 0.05, "max_steps": 200}).json()
    finished(client, b["id"])
    c = client.post(f"/api/runs/{b['id']}/branch", json={"batch_size": 64, "max_steps": 300}).json()
    run = finished(client, c["id"])
    assert run["last_eval"]["step"] == 300

    text, mine, train = replay(client, c["id"], tmp_path, small_dataset.words)
    # the changes come from the run's timeline, each said to be so where it is applied
    assert re.search(r"if i == 100:  # timeline entry 2 of 3: lr 0\.1 -> 0\.05", text)
    assert re.search(r"if i == 200:  # timeline entry 3 of 3: batch_size 32 -> 64", text)
    assert "import torch" in text and "torch.randint(" in text
    imports = {
        n.names[0].name.split(".")[0] if isinstance(n, ast.Import) else str(n.module).split(".")[0]
        for n in ast.walk(ast.parse(text))
        if isinstance(n, ast.Import | ast.ImportFrom)
    }
    assert imports <= {"argparse", "math", "random", "torch"}  # self-contained: torch only

    theirs = history(client, c["id"])
    assert sorted(mine) == sorted(theirs) == list(range(300))
    off = {s: (theirs[s], mine[s]) for s in theirs if abs(theirs[s] - mine[s]) > PRINTED}
    assert not off, f"{len(off)} steps differ, first {sorted(off.items())[:5]}"
    # the change of batch size moved the losses (the lr's did too): without it (or with the old
    # block of draws kept) steps 200+ would not have matched
    assert abs(train - run["last_eval"]["train_loss"]) < 1e-3


def test_the_lecture_init_and_adam_with_a_schedule(make_client: Client, small_dataset: Dataset, tmp_path: Path) -> None:
    """Momentum and Adam through torch.optim, the schedule computed per step: the first losses are
    the run's; the lecture init's huge first steps make the rest drift, into the same range."""
    client = make_client()
    runs = [
        client.post(
            "/api/runs",
            json={"optimizer": "adam", "lr": 0.01, "max_steps": 200, "eval_every": 200, "schedule": {"kind": "cosine"}},
        ).json(),
        client.post(
            "/api/runs",
            json={
                "init": "scaled",
                "optimizer": "momentum",
                "momentum": 0.8,
                "lr": 0.05,
                "max_steps": 200,
                "eval_every": 200,
                "schedule": {"kind": "step", "at": 120, "factor": 0.1},
            },
        ).json(),
    ]
    for spec in runs:
        run = finished(client, spec["id"])
        _, mine, train = replay(client, spec["id"], tmp_path, small_dataset.words)
        theirs = history(client, spec["id"])
        first = [(theirs[s], mine[s]) for s in range(5)]
        assert all(abs(t - m) <= PRINTED for t, m in first), first
        if spec["config"]["init"] == "scaled":
            assert all(abs(theirs[s] - mine[s]) <= PRINTED for s in range(200))
        final = run["last_eval"]["train_loss"]
        assert abs(train - final) < 0.1 * final, (train, final)


def test_an_unknown_run_is_a_404(make_client: Client) -> None:
    client = make_client()
    r = client.get("/api/runs/0123456789ab/code")
    assert r.status_code == 404 and "0123456789ab" in r.json()["detail"]


def test_names_stay_in_comments_and_the_file_name() -> None:
    """A run's name is the user's text: in the script only inside a comment (through repr), and
    in the download's name only as letters, digits and dashes."""
    from backend.runs.code import script_filename

    name = 'x\n__import__("os").system("echo pwned") #"""\u2028\r'
    record = RunRecord(
        id="0123456789ab",
        name=name,
        spec=RunSpec(),
        status=Status.PAUSED,
        detail="",
        step=0,
        hparams=HParams(),
        created_at=0.0,
        updated_at=0.0,
    )
    text = generate(record, [{"step": 0, **HParams().model_dump(mode="json")}], dataset_name=name)
    tree = ast.parse(text)
    calls = [n for n in ast.walk(tree) if isinstance(n, ast.Call) and getattr(n.func, "id", "") == "__import__"]
    assert not calls
    assert "pwned" in text  # it is there, commented out
    assert script_filename(record) == "makemore-x-import-os-system-echo-pwned-0123456789ab.py"
