from collections.abc import Callable
from pathlib import Path

from fastapi.testclient import TestClient

from tests.conftest import wait_for

POKEMON = "\n".join(["pikachu", "bulbasaur", "charmander", "squirtle", "eevee", "mewtwo", "snorlax"] * 10)


def upload(client: TestClient, data: bytes, name: str = "pokemon.txt") -> tuple[int, dict]:  # type: ignore[type-arg]
    r = client.post("/api/datasets", files={"file": (name, data, "text/plain")})
    return r.status_code, r.json()


def test_list_has_the_builtin_names(client: TestClient) -> None:
    (builtin,) = client.get("/api/datasets").json()
    assert builtin["builtin"] and len(builtin["id"]) == 12  # named by its words' hash
    assert (builtin["name"], builtin["words"], builtin["vocab_size"]) == ("small", 2000, 27)
    assert builtin["bytes"] > 10_000 and builtin["created_at"] > 0
    assert client.delete(f"/api/datasets/{builtin['id']}").status_code == 409  # never deleted
    assert client.delete("/api/datasets/builtin").status_code == 409


def test_upload_and_train_on_it(client: TestClient) -> None:
    status, body = upload(client, POKEMON.encode())
    assert status == 201, body
    assert body["name"] == "pokemon.txt" and body["words"] == 70 and not body["builtin"]
    assert body["vocab_size"] == len(set(POKEMON.replace("\n", ""))) + 1
    builtin = client.get("/api/datasets").json()[0]["id"]
    assert [d["id"] for d in client.get("/api/datasets").json()] == [builtin, body["id"]]
    assert upload(client, POKEMON.encode(), "again.txt")[1]["id"] == body["id"]  # the same words: the same dataset
    r = client.post("/api/runs", json={"dataset": body["id"], "batch_size": 8})
    assert r.status_code == 201, r.text
    run = r.json()
    assert run["dataset"]["name"] == "pokemon.txt" and run["config"]["dataset"] == body["id"]
    assert run["dataset"]["vocab_size"] == body["vocab_size"]
    wait_for(lambda: client.get("/api/runs/current").json()["step"] > 500, what="training on the upload")
    names = client.get("/api/sample", params={"n": 50}).json()["names"]
    assert set("".join(names)) <= set(POKEMON)
    assert client.post("/api/runs", json={"dataset": body["id"], "batch_size": 10**6}).status_code == 409
    r = client.delete(f"/api/datasets/{body['id']}")
    assert r.status_code == 409 and "1 stored run uses it" in r.json()["detail"]
    assert client.delete(f"/api/runs/{run['id']}").status_code == 204
    assert client.delete(f"/api/datasets/{body['id']}").status_code == 204
    assert client.delete(f"/api/datasets/{body['id']}").status_code == 404
    assert [d["id"] for d in client.get("/api/datasets").json()] == [builtin]


def test_bad_uploads(client: TestClient) -> None:
    cases = [
        ("zoë\n".encode("latin-1") * 20, "not UTF-8"),
        (b"", "no words"),
        ("\n".join(chr(0x4E00 + i) * 3 for i in range(70)).encode(), "70 distinct characters (at most 64)"),
        (b"a.b\n" * 20, "boundary token"),
        (b"ab\ncd\n", "only 2 words"),
    ]
    for data, problem in cases:
        status, body = upload(client, data)
        assert status == 422 and problem in body["detail"][0]["msg"] and body["detail"][0]["loc"] == ["body", "file"]
    status, body = upload(client, b"x" * 5_000_001)
    assert status == 413 and "5,000,000" in body["detail"]
    r = client.post("/api/datasets", data={"nofile": "1"})
    assert r.status_code == 422
    assert len(client.get("/api/datasets").json()) == 1  # nothing kept


def test_uploads_are_bounded_in_count_and_bytes(make_client: Callable[..., TestClient]) -> None:
    client = make_client(max_uploads=2, max_upload_bytes=2_000)
    for i in range(2):
        status, _ = upload(client, "\n".join(f"w{i}{c}" for c in "abcdefghijkl").encode())
        assert status == 201
    status, body = upload(client, POKEMON.encode())
    assert status == 409 and "2 uploads at most" in body["detail"]
    small = make_client(max_uploads=10, max_upload_bytes=1_000)
    status, body = upload(small, POKEMON.encode() * 2)
    assert status == 409 and "1,000 bytes" in body["detail"]
    assert len(small.get("/api/datasets").json()) == 1


def test_uploads_survive_a_restart(make_client: Callable[..., TestClient], tmp_path: Path) -> None:
    first = make_client(home=tmp_path)
    _, body = upload(first, POKEMON.encode())
    first.__exit__(None, None, None)
    again = make_client(home=tmp_path)
    ids = [d["id"] for d in again.get("/api/datasets").json()]
    assert body["id"] in ids
    r = again.post("/api/runs", json={"dataset": body["id"], "start": False})
    assert r.status_code == 201 and r.json()["dataset"]["words"] == 70
