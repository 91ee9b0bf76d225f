import html
import posixpath
import re
from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient

from backend.api.pages import MAX_COMPARED
from backend.core.data import Dataset
from tests.conftest import wait_for


def current(client: TestClient) -> dict[str, Any]:
    r = client.get("/api/runs/current")
    assert r.status_code == 200
    body: dict[str, Any] = r.json()
    return body


def builtin_id(client: TestClient) -> str:
    ids = [d["id"] for d in client.get("/api/datasets").json() if d["builtin"]]
    assert len(ids) == 1
    return ids[0]


def test_health_and_default_run(client: TestClient) -> None:
    assert client.get("/api/health").json() == {"status": "ok"}
    run = current(client)
    assert run["status"] == "paused" and run["step"] == 0
    assert run["config"] == {
        "block_size": 3,
        "n_embd": 10,
        "n_hidden": 200,
        "seed": 2147483647,
        "init": "lecture",
        "optimizer": "sgd",
        "momentum": 0.9,
        "dataset": builtin_id(client),
    }
    assert run["hparams"] == {
        "lr": 0.1,
        "batch_size": 32,
        "eval_every": 1000,
        "max_steps": 200_000,
        "schedule": {"kind": "constant"},
    }
    assert run["params"] == 11_897
    assert run["name"] == "lr 0.1 · b 32" and run["parent"] is None and run["created_at"] > 0
    ds = run["dataset"]
    assert ds["name"] == "small" and ds["words"] == 2000 and ds["vocab_size"] == 27
    assert ds["train_examples"] + ds["dev_examples"] + ds["test_examples"] > 10_000
    evaluated = wait_for(lambda: current(client)["last_eval"], what="the step-0 evaluation")
    assert evaluated["step"] == 0 and evaluated["train_loss"] > 15


def test_create_list_get_side_by_side(client: TestClient) -> None:
    first = current(client)
    r = client.post("/api/runs", json={"lr": 0.05, "batch_size": 64, "max_steps": 5000, "start": False, "name": "slow"})
    assert r.status_code == 201
    second = r.json()
    assert second["status"] == "paused" and second["hparams"]["lr"] == 0.05 and second["hparams"]["max_steps"] == 5000
    assert second["name"] == "slow"
    client.patch(f"/api/runs/{first['id']}", json={"status": "running"})
    r = client.post("/api/runs")  # no body at all: the defaults, started; the first goes on
    assert r.status_code == 201
    third = r.json()
    assert third["status"] == "running"
    assert [run["id"] for run in client.get("/api/runs").json()] == [third["id"], second["id"], first["id"]]
    assert current(client)["id"] == third["id"]
    wait_for(lambda: current(client)["step"] > 100, what="training")
    wait_for(lambda: client.get(f"/api/runs/{first['id']}").json()["step"] > 100, what="the first run training too")
    assert client.get(f"/api/runs/{first['id']}").json()["status"] == "running"
    assert client.get("/api/runs", params={"status": "paused"}).json()[0]["id"] == second["id"]
    assert [r["id"] for r in client.get("/api/runs", params={"limit": 1, "offset": 1}).json()] == [second["id"]]
    assert client.get("/api/runs/nope").status_code == 404


def test_smaller_model_and_block_size(client: TestClient) -> None:
    r = client.post("/api/runs", json={"block_size": 5, "n_embd": 2, "n_hidden": 8, "start": False})
    assert r.status_code == 201
    assert r.json()["params"] == 27 * 2 + 10 * 8 + 8 + 8 * 27 + 27


BAD_CREATE = [
    ({"block_size": 0}, "block_size"),
    ({"block_size": 17}, "block_size"),
    ({"n_embd": 1}, "n_embd"),
    ({"n_embd": 65}, "n_embd"),
    ({"n_hidden": 7}, "n_hidden"),
    ({"n_hidden": 1025}, "n_hidden"),
    ({"lr": 0}, "lr"),
    ({"lr": -0.1}, "lr"),
    ({"lr": 10.0001}, "lr"),
    ({"lr": "0.1"}, "lr"),
    ({"batch_size": 0}, "batch_size"),
    ({"batch_size": 10**9}, "batch_size"),
    ({"batch_size": 3.5}, "batch_size"),
    ({"batch_size": True}, "batch_size"),
    ({"eval_every": 0}, "eval_every"),
    ({"eval_every": 1_000_001}, "eval_every"),
    ({"max_steps": 0}, "max_steps"),
    ({"max_steps": 100_000_001}, "max_steps"),
    ({"seed": -1}, "seed"),
    ({"start": "yes"}, "start"),
    ({"colour": "red"}, "colour"),
]


@pytest.mark.parametrize(("body", "field"), BAD_CREATE)
def test_create_rejects_bad_values(client: TestClient, body: dict[str, Any], field: str) -> None:
    before = current(client)["id"]
    r = client.post("/api/runs", json=body)
    assert r.status_code == 422, r.text
    assert any(field in err["loc"] for err in r.json()["detail"]), r.text
    assert current(client)["id"] == before  # nothing created, nothing stopped


@pytest.mark.parametrize("raw", [b'{"lr": NaN}', b'{"lr": Infinity}', b'{"lr": -Infinity}', b'{"lr": 1e999}'])
def test_non_finite_numbers_are_rejected(client: TestClient, raw: bytes) -> None:
    run_id = current(client)["id"]
    for r in (
        client.post("/api/runs", content=raw, headers={"content-type": "application/json"}),
        client.patch(f"/api/runs/{run_id}", content=raw, headers={"content-type": "application/json"}),
    ):
        assert r.status_code == 422, r.text
        assert r.json()["detail"][0]["loc"][-1] == "lr"
    assert current(client)["hparams"]["lr"] == 0.1


def test_patch_applies_and_reports(client: TestClient) -> None:
    run = current(client)
    r = client.patch(f"/api/runs/{run['id']}", json={"lr": 0.02, "batch_size": 128, "eval_every": 50, "max_steps": 900})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["hparams"] == {
        "lr": 0.02,
        "batch_size": 128,
        "eval_every": 50,
        "max_steps": 900,
        "schedule": {"kind": "constant"},
    }
    r = client.patch("/api/runs/current", json={"status": "running"})
    assert r.json()["status"] == "running"
    wait_for(lambda: current(client)["status"] == "finished", what="max_steps")
    done = current(client)
    assert done["step"] == 900 and done["last_eval"]["step"] == 900
    r = client.patch("/api/runs/current", json={"status": "running"})
    assert r.status_code == 409 and "max_steps" in r.json()["detail"]
    r = client.patch("/api/runs/current", json={"status": "running", "max_steps": 1000})
    assert r.status_code == 200
    wait_for(lambda: current(client)["step"] == 1000, what="the extra steps")


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"lr": 11}, "lr"),
        ({"batch_size": 0}, "batch_size"),
        ({"batch_size": 10**7 + 1}, "batch_size"),
        ({"batch_size": 2.5}, "batch_size"),
        ({"eval_every": 0}, "eval_every"),
        ({"max_steps": 10**8 + 1}, "max_steps"),
        ({"status": "stopped"}, "status"),
        ({"step": 5}, "step"),
    ],
)
def test_patch_rejects_bad_values(client: TestClient, body: dict[str, Any], field: str) -> None:
    r = client.patch("/api/runs/current", json=body)
    assert r.status_code == 422
    assert field in r.json()["detail"][0]["loc"]


def test_what_the_data_cannot_give_is_a_conflict(client: TestClient) -> None:
    """Values the schema allows but this run's dataset cannot give: 409, saying why."""
    examples = current(client)["dataset"]["train_examples"]
    for r in (
        client.patch("/api/runs/current", json={"batch_size": examples + 1}),
        client.post("/api/runs", json={"batch_size": examples + 1}),
        client.post("/api/runs/current/lr-find", json={"batch_size": examples + 1}),
    ):
        assert r.status_code == 409 and f"{examples:,} training examples" in r.json()["detail"], r.text
    assert client.patch("/api/runs/current", json={"batch_size": examples}).status_code == 200
    assert client.patch("/api/runs/current", json={"batch_size": 64.0}).json()["hparams"]["batch_size"] == 64


def test_resume_at_max_steps_conflicts_until_raised(client: TestClient) -> None:
    run = client.post("/api/runs", json={"max_steps": 300}).json()
    wait_for(lambda: client.get(f"/api/runs/{run['id']}").json()["status"] == "finished", what="max_steps")
    r = client.patch(f"/api/runs/{run['id']}", json={"status": "running"})
    assert r.status_code == 409 and "max_steps" in r.json()["detail"]
    r = client.patch(f"/api/runs/{run['id']}", json={"status": "running", "max_steps": 600, "name": "longer"})
    assert r.status_code == 200 and r.json()["name"] == "longer"
    wait_for(lambda: client.get(f"/api/runs/{run['id']}").json()["step"] == 600, what="the raised max_steps")
    assert client.patch("/api/runs/nope", json={"lr": 0.5}).status_code == 404


def test_sample(client: TestClient) -> None:
    run_id = current(client)["id"]
    a = client.get(f"/api/runs/{run_id}/sample", params={"n": 30, "seed": 42}).json()
    b = client.get("/api/sample", params={"n": 30, "seed": 42, "temperature": 1.0}).json()
    assert a == b and a["seed"] == 42 and len(a["names"]) == 30
    assert all(set(name) <= set("abcdefghijklmnopqrstuvwxyz") for name in a["names"])
    c = client.get("/api/sample").json()
    assert len(c["names"]) == 20 and isinstance(c["seed"], int)
    assert client.get("/api/sample", params={"n": 1000}).status_code == 200


@pytest.mark.parametrize(
    "params",
    [
        {"n": 0},
        {"n": 1001},
        {"temperature": 0},
        {"temperature": 10.5},
        {"temperature": "nan"},
        {"temperature": "inf"},
        {"seed": -1},
        {"n": "many"},
        {"bogus": 1},
    ],
)
def test_sample_rejects_bad_queries(client: TestClient, params: dict[str, Any]) -> None:
    r = client.get("/api/sample", params=params)
    assert r.status_code == 422, r.text
    assert r.json()["detail"][0]["loc"][0] == "query"


def test_page_and_offline_plotly(client: TestClient) -> None:
    page = client.get("/")
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    assert "/vendor/plotly.min.js" in page.text
    js = client.get("/vendor/plotly.min.js")
    assert js.status_code == 200 and "javascript" in js.headers["content-type"]
    assert "plotly.js v" in js.text[:200]
    # gzipped once, not per request; the same bytes when gzip is not accepted; revalidated by ETag
    assert js.headers["content-encoding"] == "gzip" and "Accept-Encoding" in js.headers["vary"]
    plain = client.get("/vendor/plotly.min.js", headers={"Accept-Encoding": "identity"})
    assert "content-encoding" not in plain.headers and plain.content == js.content
    assert plain.headers["etag"] != js.headers["etag"] and plain.headers["vary"] == "Accept-Encoding"
    again = client.get("/vendor/plotly.min.js", headers={"If-None-Match": js.headers["etag"]})
    assert again.status_code == 304 and not again.content


@pytest.mark.parametrize(
    ("query", "view", "not_linked"),
    [
        ({}, "single.js", None),
        ({"compare": "0123456789ab"}, "compare/view.js", "single.js"),
        ({"sweep": "x"}, "compare/view.js", "single.js"),
    ],
)
def test_page_lists_every_module_it_imports(
    client: TestClient, query: dict[str, str], view: str, not_linked: str | None
) -> None:
    """The page names each of the modules of the view its address asks for in a modulepreload
    link (the browser asks for them at once, not one level of imports at a time): the entries,
    the view main.js imports, and whatever any of them imports; the compare view leaves the single
    view's modules out (and plotly.js's preload)."""
    page = client.get("/", params=query).text
    assert "<!-- modulepreload -->" not in page and "<!-- plotly -->" not in page
    # plotly.js's bytes ahead for the single view; the compare view draws its first picture without
    plotly = '<link rel="preload" href="/vendor/plotly.min.js" as="script">' in page
    assert plotly == (view == "single.js")
    linked = re.findall(r'<link rel="modulepreload" href="/static/js/([^"]+)">', page)
    assert {"main.js", "compare/prefetch.js", view} <= set(linked) and len(linked) == len(set(linked))
    for module in linked:
        r = client.get(f"/static/js/{module}")
        assert r.status_code == 200 and "javascript" in r.headers["content-type"], module
        for target in re.findall(r'from\s+"(\.\.?/[^"]+)"', r.text):
            assert posixpath.normpath(posixpath.join(posixpath.dirname(module), target)) in linked, (module, target)
    if not_linked is not None:
        assert not_linked not in linked and "controls.js" not in linked and len(linked) < 30, linked
    main = client.get("/static/js/main.js").text
    assert f'import("./{view}")' in main  # the view is what main.js loads for this address
    # written showing that view, the other's markup hidden (not laid out, then swapped)
    compare = view == "compare/view.js"
    assert ('<main class="layout" hidden>' in page) == compare and ('<body data-view="compare">' in page) == compare
    assert ('<section id="compare" class="compare" aria-label="compare runs" hidden>' in page) != compare
    # the server's bound, not the page's own copy: how many runs the compare view takes
    assert f'<html lang="en" data-max-compared="{MAX_COMPARED}">' in page
    assert "dataset.maxCompared" in client.get("/static/js/compare/address.js").text


def test_openapi_documents_the_api(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    for path in ("/api/health", "/api/runs", "/api/runs/{run_id}", "/api/runs/{run_id}/sample", "/api/sample"):
        assert path in paths
    assert set(paths["/api/runs/{run_id}"]) == {"get", "patch", "delete"}


def test_no_runs_yet_is_404(make_client: Callable[..., TestClient]) -> None:
    c = make_client()
    run_id = current(c)["id"]  # the default run, once built
    assert c.delete(f"/api/runs/{run_id}").status_code == 204
    assert c.get("/api/runs/current").status_code == 404
    assert c.get("/api/sample").status_code == 404
    assert c.get(f"/api/runs/{run_id}").status_code == 404
    assert c.delete(f"/api/runs/{run_id}").status_code == 404


def test_model_choices(client: TestClient) -> None:
    r = client.post(
        "/api/runs",
        json={"init": "scaled", "optimizer": "momentum", "momentum": 0.8, "block_size": 4, "n_embd": 3, "start": False},
    )
    assert r.status_code == 201, r.text
    config = r.json()["config"]
    assert config["init"] == "scaled" and config["optimizer"] == "momentum" and config["momentum"] == 0.8
    assert config["dataset"] == builtin_id(client)
    first = wait_for(lambda: current(client)["last_eval"], what="the step-0 evaluation")
    assert abs(first["train_loss"] - 3.2958) < 0.2  # scaled init: ~ln 27, not ~27
    assert current(client)["hparams"]["schedule"] == {"kind": "constant"}


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"init": "xavier"}, "init"),
        ({"optimizer": "lbfgs"}, "optimizer"),
        ({"momentum": 1.0}, "momentum"),
        ({"momentum": -0.1}, "momentum"),
        ({"dataset": "../etc/passwd"}, "dataset"),
        ({"schedule": {"kind": "exp"}}, "schedule"),
        ({"schedule": {"kind": "step", "at": -1}}, "at"),
        ({"schedule": {"kind": "step", "at": 10, "factor": 0}}, "factor"),
        ({"schedule": {"kind": "cosine", "min_lr": -1}}, "min_lr"),
        ({"schedule": {"kind": "cosine", "min_lr": 0.0, "extra": 1}}, "extra"),
    ],
)
def test_create_rejects_bad_choices(client: TestClient, body: dict[str, Any], field: str) -> None:
    r = client.post("/api/runs", json=body)
    assert r.status_code == 422, r.text
    assert any(field in err["loc"] for err in r.json()["detail"]), r.text


def test_unknown_dataset_is_404(client: TestClient) -> None:
    r = client.post("/api/runs", json={"dataset": "nope"})
    assert r.status_code == 404 and "no dataset with id 'nope'" in r.json()["detail"]


def test_schedule_through_patch(client: TestClient) -> None:
    r = client.patch("/api/runs/current", json={"schedule": {"kind": "step", "at": 100000, "factor": 0.1}})
    assert r.status_code == 200
    assert r.json()["hparams"]["schedule"] == {"kind": "step", "at": 100000, "factor": 0.1}
    r = client.patch("/api/runs/current", json={"schedule": {"kind": "cosine", "min_lr": 0.001}})
    assert r.json()["hparams"]["schedule"] == {"kind": "cosine", "min_lr": 0.001}
    assert client.patch("/api/runs/current", json={"schedule": {"kind": "cosine", "min_lr": "x"}}).status_code == 422


def test_next_character_probabilities(client: TestClient) -> None:
    r = client.get("/api/runs/current/next", params={"context": "emm"})
    assert r.status_code == 200
    body = r.json()
    assert body["window"] == "emm" and body["chars"][0] == "." and len(body["probs"]) == 27
    assert sum(body["probs"]) == pytest.approx(1.0, abs=1e-5)
    assert client.get("/api/runs/current/next", params={"context": "xemm"}).json()["window"] == "emm"
    assert client.get("/api/runs/current/next").json()["window"] == "..."
    assert client.get("/api/runs/current/next", params={"context": "e"}).json()["window"] == "..e"
    bad = client.get("/api/runs/current/next", params={"context": "em3"})
    assert bad.status_code == 422 and "'3'" in bad.json()["detail"][0]["msg"]
    assert "its characters: abcdefghijklmnopqrstuvwxyz" in bad.json()["detail"][0]["msg"]
    assert bad.json()["detail"][0]["loc"] == ["query", "context"]
    plain = client.get("/api/runs/current/next", params={"context": "emma"}).json()
    assert plain["read_as"] == "emma" and plain["folded"] is False
    assert client.get("/api/runs/current/next", params={"context": "x" * 101}).status_code == 422


def test_capitals_are_read_in_lower_case_when_the_dataset_has_none(
    make_client: Callable[..., TestClient], small_dataset: Dataset
) -> None:
    folded = make_client().get("/api/runs/current/next", params={"context": "Emma"}).json()
    assert (folded["context"], folded["read_as"], folded["folded"], folded["window"]) == ("Emma", "emma", True, "mma")
    lower = make_client().get("/api/runs/current/next", params={"context": "emma"}).json()
    assert folded["probs"] == lower["probs"]
    # a dataset with capitals reads them as they are: an unknown one is an error, not folded
    cased = make_client(Dataset("cased", ["Anna", "Bob", *small_dataset.words[:100]]))
    assert cased.get("/api/runs/current/next", params={"context": "Bo"}).json()["folded"] is False
    bad = cased.get("/api/runs/current/next", params={"context": "Emma"})
    assert bad.status_code == 422 and "'E'" in bad.json()["detail"][0]["msg"]


def test_samples_say_which_names_are_new(client: TestClient, small_dataset: Dataset) -> None:
    body = client.get("/api/sample", params={"n": 200, "seed": 1}).json()
    assert len(body["new"]) == len(body["split"]) == 200
    assert body["new_share"] == pytest.approx(sum(body["new"]) / 200)
    train, dev, test = (set(part) for part in small_dataset.parts)
    for name, new, split in zip(body["names"], body["new"], body["split"], strict=True):
        expected = "train" if name in train else "dev" if name in dev else "test" if name in test else None
        assert split == expected, name
        assert new == (split is None), name  # new: not a word of the dataset in any split


def test_evaluate_test_split(client: TestClient) -> None:
    r = client.post("/api/runs/current/evaluate-test")
    assert r.status_code == 200
    body = r.json()
    run = current(client)
    assert body["step"] == 0 and body["test_examples"] == run["dataset"]["test_examples"]
    assert body["test_loss"] > 15  # lecture init


def test_embeddings_endpoint(client: TestClient) -> None:
    body = wait_for(lambda: client.get("/api/runs/current/embeddings").json().get("chars"), what="a map")
    r = client.get("/api/runs/current/embeddings").json()
    assert body[0] == "." and len(r["x"]) == len(r["y"]) == 27 and r["method"] == "pca"
    client.post("/api/runs", json={"n_embd": 2, "start": False})
    raw = wait_for(lambda: client.get("/api/runs/current/embeddings").json().get("method"), what="a map")
    assert raw == "raw"


def test_lr_find_endpoints(client: TestClient) -> None:
    assert client.get("/api/runs/current/lr-find").status_code == 404
    r = client.post("/api/runs/current/lr-find", json={"steps": 200})
    assert r.status_code == 202
    assert r.json()["batch_size"] == 32 and r.json()["min_lr"] == 0.001
    result = wait_for(
        lambda: (x := client.get("/api/runs/current/lr-find")).status_code == 200 and x.json(), what="the sweep"
    )
    assert result["lr"][0] == pytest.approx(0.001) and len(result["loss"]) == len(result["smoothed"])
    assert result["suggestion"] is not None and "valley" in result["method"]
    assert current(client)["step"] == 0 and current(client)["status"] == "paused"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"min_lr": 0}, "min_lr"),
        ({"max_lr": 11}, "max_lr"),
        ({"steps": 9}, "steps"),
        ({"steps": 5001}, "steps"),
        ({"batch_size": 0}, "batch_size"),
        ({"batch_size": 10**7 + 1}, "batch_size"),
        ({"min_lr": 0.5, "max_lr": 0.1}, "min_lr must be below max_lr"),
    ],
)
def test_lr_find_rejects_bad_values(client: TestClient, body: dict[str, Any], field: str) -> None:
    r = client.post("/api/runs/current/lr-find", json=body)
    assert r.status_code == 422
    assert field in str(r.json()["detail"])


def test_lr_find_one_at_a_time_cancellable_and_bounded(client: TestClient) -> None:
    run_id = current(client)["id"]
    assert client.delete(f"/api/runs/{run_id}/lr-find").status_code == 409  # none under way
    # small rates: it would run all 5,000 steps
    assert (
        client.post(f"/api/runs/{run_id}/lr-find", json={"min_lr": 1e-4, "max_lr": 1e-3, "steps": 5000}).status_code
        == 202
    )
    assert client.post(f"/api/runs/{run_id}/lr-find").status_code == 409  # one at a time
    assert client.delete(f"/api/runs/{run_id}/lr-find").status_code == 204
    result = wait_for(
        lambda: (x := client.get(f"/api/runs/{run_id}/lr-find")).status_code == 200 and x.json(), what="the end"
    )
    assert result["stopped_early"] and len(result["lr"]) < 5000
    too_much = client.post(f"/api/runs/{run_id}/lr-find", json={"steps": 5000, "batch_size": 8192})
    assert too_much.status_code == 409 and "examples per sweep" in too_much.json()["detail"]


def test_method_not_allowed_lists_every_method_of_the_address(client: TestClient) -> None:
    expected = {"/api/runs": "GET, POST", "/api/runs/abc": "DELETE, GET, PATCH", "/api/sweeps": "GET, POST"}
    for path, methods in expected.items():
        r = client.options(path)
        assert r.status_code == 405 and r.headers["allow"] == methods, (path, r.headers)
    assert client.put("/api/runs/current/lr-find").headers["allow"] == "DELETE, GET, POST"


def test_dependencies_cost_no_thread_hop(client: TestClient, monkeypatch: pytest.MonkeyPatch) -> None:
    """FastAPI runs a plain `def` dependency on its thread pool: the getters of the registry, the
    points and the settings are `async def`, so a request for a live run's record makes no hop."""
    from starlette.concurrency import run_in_threadpool as real

    hops: list[str] = []

    async def counted(func: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        hops.append(getattr(func, "__name__", repr(func)))
        return await real(func, *args, **kwargs)

    monkeypatch.setattr("fastapi.dependencies.utils.run_in_threadpool", counted)
    run = current(client)  # the default run: live
    assert client.get(f"/api/runs/{run['id']}").status_code == 200
    assert hops == []


def test_compare_address_preloads_its_points(client: TestClient) -> None:
    """The compare view's address gets a preload of its one request for the runs' points, before
    any module (the browser sends it as it reads the page); the ids as the page reads them."""
    a, b = "0123456789ab", "ba9876543210"
    page = client.get("/", params={"compare": f"{a}, {b},{a},nope"}).text
    link = re.findall(r'<link rel="preload" as="fetch" crossorigin href="([^"]+)" data-ids="([^"]+)">', page)
    assert link == [(f"/api/runs/points?ids={a}%2C{b}&amp;points=1452", f"{a},{b}")]
    assert page.index('as="fetch"') < page.index('rel="modulepreload"') and "<!-- points -->" not in page
    r = client.get(html.unescape(link[0][0]))
    assert r.status_code == 200 and r.json() == {"runs": [], "missing": [a, b]}
    many = [f"{i:012x}" for i in range(25)]
    page = client.get("/", params={"compare": ",".join(many)}).text
    assert f'data-ids="{",".join(many[:20])}"' in page and "points=726" in page  # the view's 20
    for q in ({}, {"run": a}, {"sweep": "s", "compare": a}, {"compare": "nope"}, {"compare": ""}):
        assert 'as="fetch"' not in client.get("/", params=q).text, q
