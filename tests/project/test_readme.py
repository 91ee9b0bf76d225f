"""README.md against what it describes. Every `curl` of its ```sh blocks is sent to a real server
(`python -m backend` through harness/server.py: `localhost:8000` is that server, `$TOKEN` its
token) and must be answered 2xx with what the README says it makes; the figures it quotes that
come from the code (the lecture's model and run, the sweep's defaults, the flags, the built-in
list, the image) are read from the code or from that server. docs/*.md: tests/project/test_docs.py."""

from __future__ import annotations

import json
import math
import os
import re
import shlex
import tomllib
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from backend.__main__ import main
from backend.config import DEFAULT_DATA, default_home
from backend.edge.token import token_path
from harness.server import ROOT, running_server
from tests.conftest import wait_for

README = ROOT / "README.md"
TOKEN = "readme-test-token-0123456789"

pytestmark = [pytest.mark.slow]  # two server processes, a few seconds each


# ---- the examples -------------------------------------------------------------------------------
@dataclass(frozen=True)
class Example:
    """One `curl` of the README, as the request it sends."""

    command: str
    method: str
    path: str  # with its query
    headers: dict[str, str] = field(default_factory=dict)
    body: Any = None  # the JSON it sends

    @property
    def needs_token(self) -> bool:
        return "authorization" in self.headers


def curl_commands(text: str) -> list[str]:
    """The `curl` commands of the ```sh blocks (a list item's too), each on one line (continuations joined)."""
    commands = []
    for block in re.findall(r"^ *```sh\n(.*?)^ *```", text, flags=re.DOTALL | re.MULTILINE):
        for line in block.replace("\\\n", " ").splitlines():
            if line.strip().startswith("curl "):
                commands.append(line.strip())
    return commands


def parse_curl(command: str, token: str) -> Example:
    """The request a README `curl` sends; an option or a variable this test does not know fails."""
    words = shlex.split(command.replace("$TOKEN", token), comments=True)
    assert words[0] == "curl" and "$" not in " ".join(words), command
    method, url, headers, data = None, None, {}, None
    rest = iter(words[1:])
    for word in rest:
        if word == "-s":
            continue
        if word == "-X":
            method = next(rest)
        elif word == "-H":
            name, _, value = next(rest).partition(":")
            headers[name.strip().lower()] = value.strip()
        elif word in ("-d", "--data"):
            data = next(rest)
        elif not word.startswith("-") and url is None:
            url = word
        else:
            raise AssertionError(f"{word!r}: an option this test does not know, in {command}")
    assert url is not None, command
    parts = urlsplit(url if "://" in url else f"http://{url}")
    assert parts.netloc == "localhost:8000", f"not the address `make run` serves: {command}"
    body = json.loads(data) if data is not None else None
    if body is not None:
        assert headers.get("content-type") == "application/json", f"JSON sent without its type: {command}"
    path = parts.path + (f"?{parts.query}" if parts.query else "")
    return Example(command, method or ("POST" if data is not None else "GET"), path, headers, body)


def send(base: str, example: Example) -> tuple[int, Any]:
    """The example sent to the server at `base`: its status and JSON (an error's text)."""
    data = json.dumps(example.body).encode() if example.body is not None else None
    req = urllib.request.Request(base + example.path, data=data, method=example.method, headers=example.headers)
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, json.load(r)
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode(errors="replace")


def check_sweep(example: Example, answer: Any) -> None:
    """The sweep it asks for: n runs at rates log-spaced from min to max, each with the base's steps."""
    rng, base = example.body["lr_range"], example.body["base"]
    runs = answer["runs"]
    assert len(runs) == rng["n"]
    lrs = sorted(r["hparams"]["lr"] for r in runs)
    step = math.log10(rng["max"] / rng["min"]) / (rng["n"] - 1)
    expected = [rng["min"] * 10 ** (i * step) for i in range(rng["n"])]
    assert lrs == pytest.approx(expected, rel=1e-3)
    assert {(r["hparams"]["max_steps"], r["hparams"]["eval_every"]) for r in runs} == {
        (base["max_steps"], base["eval_every"])
    }
    assert answer["swept"] == ["lr"]


def check_run(example: Example, answer: Any) -> None:
    assert {"id", "name", "status", "step", "hparams", "config"} <= set(answer)


# what each example the README shows makes (an example without a check fails: add one)
CHECKS: dict[tuple[str, str], Callable[[Example, Any], None]] = {
    ("POST", "/api/sweeps"): check_sweep,
    ("GET", "/api/runs/current"): check_run,
}


def example_problem(servers: dict[bool, str], example: Example) -> str | None:
    """What is wrong with an example, sent to the server it is written for (the one with a token
    when it sends one): None when it is answered 2xx with what it makes."""
    status, answer = send(servers[example.needs_token], example)
    if not 200 <= status < 300:
        return f"{example.command}\n  -> {status} {answer}"
    check = CHECKS.get((example.method, urlsplit(example.path).path))
    if check is None:
        return f"{example.command}\n  -> no check in tests/project/test_readme.py's CHECKS for what it makes"
    try:
        check(example, answer)
    except AssertionError as e:
        return f"{example.command}\n  -> not what it makes: {e}"
    return None


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[bool, str]]:
    """`make run`'s server (the defaults, loopback, no token), and one with a token as the
    Docker image's, by whether a request needs the token."""
    env = {k: "" for k in os.environ if k.startswith("MAKEMORE_")}  # the defaults, whatever the shell says
    logs = tmp_path_factory.mktemp("servers")
    with (
        running_server(env=env, log=logs / "plain.log") as plain,
        running_server(env={**env, "MAKEMORE_TOKEN": TOKEN}, log=logs / "token.log") as locked,
    ):
        yield {False: plain.url, True: locked.url}


@pytest.fixture(autouse=True)
def no_sweep_left(servers: dict[bool, str]) -> Iterator[None]:
    """The sweeps a test started paused after it: the machine's cores are for the next tests."""
    yield
    auth = {"Authorization": f"Bearer {TOKEN}"}
    for base in servers.values():
        req = urllib.request.Request(base + "/api/sweeps", headers=auth)
        with urllib.request.urlopen(req, timeout=30) as r:
            ids = [s["id"] for s in json.load(r)]
        for sweep_id in ids:
            req = urllib.request.Request(f"{base}/api/sweeps/{sweep_id}", method="DELETE", headers=auth)
            urllib.request.urlopen(req, timeout=30).close()


def test_every_curl_of_the_readme_is_answered_with_what_it_says(servers: dict[bool, str]) -> None:
    examples = [parse_curl(c, TOKEN) for c in curl_commands(README.read_text())]
    assert len(examples) >= 2 and any(e.needs_token for e in examples)
    problems = [p for e in examples if (p := example_problem(servers, e))]
    assert not problems, "\n".join(problems)


def test_the_example_checks_can_fail(servers: dict[bool, str]) -> None:
    """A wrong path, a missing token, a sweep that is not what the README says it makes, an
    unknown option: each is caught."""
    made_up = "```sh\ncurl -s localhost:8000/api/run/current\ncurl -s localhost:8000/api/runs/current\n```\n"
    wrong_path, no_token = (parse_curl(c, TOKEN) for c in curl_commands(made_up))
    assert "404" in (example_problem(servers, wrong_path) or "")
    assert "401" in (example_problem({True: servers[False], False: servers[True]}, no_token) or "")
    sweep = parse_curl(
        "curl -s -X POST localhost:8000/api/sweeps -H 'content-type: application/json' "
        """-d '{"lr_range": {"min": 0.001, "max": 1, "n": 3}, "base": {"max_steps": 1000, "eval_every": 100}}'""",
        TOKEN,
    )
    status, answer = send(servers[False], sweep)
    assert status == 201
    check_sweep(sweep, answer)
    fewer = {**sweep.body, "lr_range": {"min": 0.01, "max": 1, "n": 3}}  # not the rates it was answered
    with pytest.raises(AssertionError):
        check_sweep(replace(sweep, body=fewer), answer)
    with pytest.raises(AssertionError, match="does not know"):
        parse_curl("curl -k localhost:8000/api/health", TOKEN)


# ---- the figures --------------------------------------------------------------------------------
def number(text: str) -> float:
    return float(text.replace(",", ""))


def figure_problems(text: str, figures: dict[str, tuple[str, tuple[float, ...]]]) -> list[str]:
    """Each figure: a pattern of the README's text whose groups are numbers, and what the code
    says they are. A pattern the text no longer has is a problem too (the README changed: update
    the pattern with the figure)."""
    text = " ".join(text.split())  # the README's lines wrap anywhere
    problems = []
    for name, (pattern, expected) in figures.items():
        found = re.search(pattern, text)
        if found is None:
            problems.append(f"{name}: the README no longer says /{pattern}/")
        elif tuple(number(g) for g in found.groups()) != pytest.approx(expected):
            problems.append(f"{name}: the README says {found[0]!r}; the code: {expected}")
    return problems


def get(base: str, path: str) -> Any:
    with urllib.request.urlopen(base + path, timeout=30) as r:
        return json.load(r)


@pytest.fixture(scope="module")
def figures(servers: dict[bool, str]) -> dict[str, tuple[str, tuple[float, ...]]]:
    """What the README's figures are, from `make run`'s server (its first run, its schema, its
    built-in list) and the code."""
    base = servers[False]
    run = wait_for(lambda: (r := get(base, "/api/runs/current"))["last_eval"] and r, timeout=60, what="step 0's loss")
    config, hp, vocab = run["config"], run["hparams"], run["dataset"]["vocab_size"]
    sweep = get(base, "/api/schema")["sweep"]
    lr_range = sweep["$defs"]["LrRange"]["properties"]
    builtin = next(d for d in get(base, "/api/datasets") if d["builtin"])
    about = re.search(
        r"has ([\d,]+) names, and the lecture's recipe reaches a dev loss of ([\d.]+) here against ([\d.]+)",
        builtin["about"],
    )
    assert about is not None, builtin["about"]
    compare_test = (ROOT / "tests" / "browser" / "test_browser_compare.py").read_text()
    compare_test = compare_test[compare_test.index("def test_lr_sweep_from_the_form(") :].split("\ndef ")[0]
    form = dict(re.findall(r'page\.fill\("#sweep-(lr-n|steps)", "(\d+)"\)', compare_test))
    requires = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["requires-python"]
    uid = re.search(r"^USER (\d+):", (ROOT / "Dockerfile").read_text(), flags=re.MULTILINE)
    assert uid is not None
    return {
        "the first evaluation's steps": (r"appears every ([\d,]+) steps", (hp["eval_every"],)),
        "the lecture's model": (
            r"a context of (\d+) characters → (\d+)-d embeddings → (\d+) tanh units → softmax over (\d+) "
            r"characters, ([\d,]+) parameters",
            (config["block_size"], config["n_embd"], config["n_hidden"], vocab, run["params"]),
        ),
        "the seed": (r"seeded (\d+)", (config["seed"],)),
        # the initial loss, to the README's precision (~27 is 26.5-27.5)
        "the first loss": (r"the first losses are ~(\d+)", (round(run["last_eval"]["train_loss"]),)),
        "ln 27": (r"not ln (\d+) ≈ ([\d.]+)", (vocab, round(math.log(vocab), 1))),
        "the lecture's run": (
            r"batch (\d+), lr ([\d.]+), ([\d,]+) steps",
            (hp["batch_size"], hp["lr"], hp["max_steps"]),
        ),
        "the sweep form": (
            r"learning rate from ([\d.]+) to ([\d.]+), (\d+) rates, ([\d,]+) steps each",
            (
                lr_range["min"]["default"],
                lr_range["max"]["default"],
                lr_range["n"]["default"],
                sweep["properties"]["base"]["default"]["max_steps"],
            ),
        ),
        "the sweep picture": (
            r"\*(\d+) rates × ([\d,]+) steps, as the browser test",
            (number(form["lr-n"]), number(form["steps"])),
        ),
        "the built-in list": (r"\(([\d,]+) names, built by", (len(DEFAULT_DATA.read_text().split()),)),
        # what the server says of its built-in list (backend/runs/datasets.py), in the same words
        "the lecture's list": (
            r"has ([\d,]+), and the lecture's recipe gives a dev loss of ([\d.]+) here against ([\d.]+) there",
            tuple(number(g) for g in about.groups()),
        ),
        "python": (r"needs Python (\d+\.\d+) or newer", (number(requires.removeprefix(">=")),)),
        "the image's user": (r"owned by uid (\d+)", (number(uid[1]),)),
    }


# Not checked here: the figures that take training to see (seconds on an idle 2-core machine, far
# more beside other tests). Measured by hand with the README's own requests: its sweep (7 rates x
# 20,000 steps, 11 s) has its lowest final dev losses at 0.0316 (2.482) and 0.1 (2.522), the valley
# it names; the lecture's recipe (200,000 steps, x0.1 at 100,000) ends at dev 2.1831 (26 s), the
# 2.183 it quotes; the browser test's 1,500-step sweep (docs/sweep.png) is lowest at 0.1.
def test_the_readmes_figures_are_the_codes(figures: dict[str, tuple[str, tuple[float, ...]]]) -> None:
    problems = figure_problems(README.read_text(), figures)
    assert not problems, "\n".join(problems)


def test_the_figure_check_can_fail(figures: dict[str, tuple[str, tuple[float, ...]]]) -> None:
    text = README.read_text()
    stale = text.replace("7 rates, 20,000 steps each", "7 rates, 10,000 steps each")
    assert [p.split(":")[0] for p in figure_problems(stale, figures)] == ["the sweep form"]
    reworded = text.replace("tanh units", "hidden units")
    assert [p.split(":")[0] for p in figure_problems(reworded, figures)] == ["the lecture's model"]


def test_the_readmes_flags_paths_and_files(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    """The flags `python -m backend` takes, the default home, the image's token file and health
    check: as the README names them."""
    text = " ".join(README.read_text().split())
    with pytest.raises(SystemExit):
        main(["--help"])
    flags = set(re.findall(r"--[a-z][a-z-]+", capsys.readouterr().out))
    passed = re.search(r"passes flags to `python -m backend` \(([^)]*)\)", text)
    assert passed is not None
    named = set(re.findall(r"`(--[a-z-]+)`", passed[1])) | {"--rotate-token"}
    assert len(named) >= 5 and named <= flags, named - flags
    monkeypatch.delenv("XDG_DATA_HOME", raising=False)
    home = re.search(r"checkpoint files under `([^`]+)`", text)
    assert home is not None and Path(home[1]).expanduser() == default_home()
    assert "(`/data/token`)" in text and token_path(Path("/data")) == Path("/data/token")
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "ENV MAKEMORE_HOME=/data" in dockerfile
    assert "a `HEALTHCHECK` polls `/api/health`" in text
    assert re.search(r'HEALTHCHECK [^\n]*\\\n *CMD \["python", "-m", "backend.healthcheck"\]', dockerfile)
    assert "/api/health" in (ROOT / "backend" / "healthcheck.py").read_text()
