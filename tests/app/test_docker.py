"""The Dockerfile: linted, and its command run the way the image would run it.

No Docker engine runs here, so we rebuild the image's filesystem by hand: a clean virtualenv
installed with the Dockerfile's own pip commands, a directory holding only what it COPYs, its
ENV, then its CMD and HEALTHCHECK.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import psutil
import pytest

from harness.server import ROOT, free_port, wait_healthy

CPU_INDEX = "--index-url https://download.pytorch.org/whl/cpu"


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined, comments dropped."""
    text = (ROOT / "Dockerfile").read_text()
    logical = text.replace("\\\n", " ")
    out = []
    for raw in logical.splitlines():
        line = raw.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            out.append((word.upper(), " ".join(rest.split())))
    return out


def args_of(kind: str) -> list[str]:
    return [rest for word, rest in instructions() if word == kind]


def exec_form(rest: str) -> list[str]:
    value = json.loads(rest)
    assert isinstance(value, list)
    return [str(v) for v in value]


def env_of() -> dict[str, str]:
    env = {}
    for rest in args_of("ENV"):
        for pair in shlex.split(rest):
            key, _, value = pair.partition("=")
            env[key] = value
    return env


def test_hadolint_passes() -> None:
    hadolint = shutil.which("hadolint") or str(Path(sys.executable).parent / "hadolint")
    result = subprocess.run([hadolint, str(ROOT / "Dockerfile")], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


def test_dockerfile_promises() -> None:
    user = args_of("USER")[-1]
    assert user.split(":")[0] not in ("0", "root")
    assert args_of("EXPOSE") == ["8000"]
    assert env_of()["MAKEMORE_HOST"] == "0.0.0.0"
    assert env_of()["MAKEMORE_HOME"] == "/data" and args_of("VOLUME") == ["/data"]  # runs last in a volume
    runs = " ".join(args_of("RUN"))
    assert f"pip install --no-cache-dir {CPU_INDEX} torch==" in runs
    healthcheck = args_of("HEALTHCHECK")[0]
    assert "CMD" in healthcheck and "backend.healthcheck" in healthcheck
    assert "--start-period=5s" in healthcheck.split("CMD")[0]  # healthy within seconds, not half a minute
    assert exec_form(args_of("CMD")[-1]) == ["python", "-m", "backend"]
    assert env_of()["MAKEMORE_IN_CONTAINER"] == "1"  # the logged address says which port it means


def test_dockerfile_first_line_is_the_whole_command() -> None:
    first = (ROOT / "Dockerfile").read_text().splitlines()[0]
    assert first.startswith("# ")
    build, _, run = first.partition(" && ")
    assert build.endswith("docker build -t makemore-live .")
    words = shlex.split(run)
    assert words[:2] == ["docker", "run"] and words[-1] == "makemore-live"
    assert "-p" in words and words[words.index("-p") + 1].endswith(":8000")
    assert "-v" in words and words[words.index("-v") + 1] == "makemore:/data"  # runs (and the token) kept


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_image_command_serves_health(tmp_path: Path) -> None:
    app, venv = tmp_path / "app", tmp_path / "venv"
    app.mkdir()
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    env = {**os.environ, "PATH": f"{venv / 'bin'}{os.pathsep}{os.environ['PATH']}"}
    env.pop("VIRTUAL_ENV", None)
    env.pop("PYTHONPATH", None)
    for word, rest in instructions():
        if word == "COPY":  # COPY SRC DEST, relative to WORKDIR
            src, dest = rest.split()
            target = app / Path(src).name if dest == "." else app / dest
            if (ROOT / src).is_dir():
                shutil.copytree(ROOT / src, target, ignore=shutil.ignore_patterns("__pycache__"))
            else:
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy(ROOT / src, target)
        elif word == "RUN" and "pip install" in rest:
            # The same commands in a clean virtualenv. PyTorch's CPU index is not reachable from
            # here; the same CPU build of the same torch version lies on this machine's disk.
            command = rest.replace(CPU_INDEX, "")
            subprocess.run(["bash", "-c", command], cwd=app, env=env, check=True, capture_output=True)
    assert sorted(p.name for p in app.iterdir()) == ["backend", "data", "frontend", "requirements.txt"]

    port = free_port()
    # the image's /data volume is a directory of the test's own here
    run_env = {**env, **env_of(), "MAKEMORE_PORT": str(port), "MAKEMORE_HOME": str(tmp_path / "data")}
    cmd = exec_form(args_of("CMD")[-1])
    assert shutil.which(cmd[0], path=env["PATH"]) == str(venv / "bin" / cmd[0])  # the clean venv's python
    proc = subprocess.Popen(cmd, cwd=app, env=run_env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        wait_healthy(f"http://127.0.0.1:{port}", proc)
        health = exec_form(args_of("HEALTHCHECK")[0].split("CMD", 1)[1])
        assert subprocess.run(health, cwd=app, env=run_env, check=False).returncode == 0
        listening = [c.laddr for c in psutil.Process(proc.pid).net_connections("tcp") if c.status == psutil.CONN_LISTEN]
        assert ("0.0.0.0", port) in [(a.ip, a.port) for a in listening]  # reachable through -p
        # off loopback the server wants its token: open the address it logged (`docker logs`),
        # as a browser would, keeping the cookie it sets
        assert proc.stderr is not None
        line = next(line for line in proc.stderr if b"?token=" in line).decode()
        url = line[line.index("http://") :].split()[0]
        assert url.startswith(f"http://127.0.0.1:{port}/?token=")
        assert f"(the container's port {port}: open the host port that `docker run -p HOST:{port}` maps)" in line
        assert (tmp_path / "data" / "token").read_text().strip() == url.split("?token=")[1]  # kept in the volume
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/api/runs")
        assert refused.value.code == 401
        browser = urllib.request.build_opener(urllib.request.HTTPCookieProcessor())
        with browser.open(url) as page:
            assert page.url == f"http://127.0.0.1:{port}/" and b"/vendor/plotly.min.js" in page.read()
    finally:
        proc.terminate()
        proc.wait(10)
    stopped = subprocess.run(health, cwd=app, env=run_env, check=False, capture_output=True)
    assert stopped.returncode == 1  # and it does notice a dead server
