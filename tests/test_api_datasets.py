from fastapi.testclient import TestClient

from tests.conftest import wait_for

POKEMON = "\n".join(["pikachu", "bulbasaur", "charmander", "squirtle", "eevee", "mewtwo", "snorlax"] * 10)


def upload(client: TestClient, data: bytes, name: str = "pokemon.txt") -> tuple[int, dict]:  # type: ignore[type-arg]
    r = client.post("/api/datasets", files={"file": (name, data, "text/plain")})
    return r.status_code, r.json()


def test_list_has_the_builtin_names(client: TestClient) -> None:
    (builtin,) = client.get("/api/datasets").json()
    assert builtin == {"id": "builtin", "name": "small", "words": 2000, "vocab_size": 27, "builtin": True}


def test_upload_and_train_on_it(client: TestClient) -> None:
    status, body = upload(client, POKEMON.encode())
    assert status == 201, body
    assert body["name"] == "pokemon.txt" and body["words"] == 70 and not body["builtin"]
    assert body["vocab_size"] == len(set(POKEMON.replace("\n", ""))) + 1
    assert [d["id"] for d in client.get("/api/datasets").json()] == ["builtin", body["id"]]
    r = client.post("/api/runs", json={"dataset": body["id"], "batch_size": 8})
    assert r.status_code == 201, r.text
    run = r.json()
    assert run["dataset"]["name"] == "pokemon.txt" and run["config"]["dataset"] == body["id"]
    assert run["dataset"]["vocab_size"] == body["vocab_size"]
    wait_for(lambda: client.get("/api/runs/current").json()["step"] > 500, what="training on the upload")
    names = client.get("/api/sample", params={"n": 50}).json()["names"]
    assert set("".join(names)) <= set(POKEMON)
    assert client.post("/api/runs", json={"dataset": body["id"], "batch_size": 10**6}).status_code == 422


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
        assert status == 422 and problem in body["detail"] and body["detail"].startswith("file: "), body
    status, body = upload(client, b"x" * 5_000_001)
    assert status == 413 and "5,000,000" in body["detail"]
    r = client.post("/api/datasets", data={"nofile": "1"})
    assert r.status_code == 422
    assert len(client.get("/api/datasets").json()) == 1  # nothing kept
