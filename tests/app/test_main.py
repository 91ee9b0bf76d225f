import json
import socket
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from backend.config import Settings
from harness.server import ROOT, running_server


def start_fails(data: Path) -> str:
    result = subprocess.run(
        [sys.executable, "-m", "backend", "--data", str(data), "--port", "1"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr  # one line, no traceback
    assert str(data) in lines[0]
    return lines[0]


def test_bad_data_files_stop_the_server_with_one_line(tmp_path: Path) -> None:
    assert "no such file" in start_fails(tmp_path / "missing.txt")
    (tmp_path / "empty.txt").write_text("")
    assert "no words" in start_fails(tmp_path / "empty.txt")
    (tmp_path / "latin1.txt").write_bytes("zoë\n".encode("latin-1") * 20)
    assert "not UTF-8" in start_fails(tmp_path / "latin1.txt")
    (tmp_path / "binary.bin").write_bytes(bytes(range(256)) * 10)
    assert "binary.bin" in start_fails(tmp_path / "binary.bin")
    assert "is a directory" in start_fails(tmp_path)


def test_settings_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MAKEMORE_HOST", "0.0.0.0")
    monkeypatch.setenv("MAKEMORE_PORT", "9001")
    monkeypatch.setenv("MAKEMORE_DATA", "/tmp/words.txt")
    monkeypatch.setenv("MAKEMORE_ALLOWED_ORIGINS", "http://a.example, http://b.example/")
    s = Settings()
    assert (s.host, s.port, str(s.data)) == ("0.0.0.0", 9001, "/tmp/words.txt")
    assert s.allowed_origins == ["http://a.example", "http://b.example"]
    assert Settings(port=8080).port == 8080  # command-line flags win


@pytest.mark.slow
def test_real_server_on_custom_data(tmp_path: Path) -> None:
    words = tmp_path / "pokemon.txt"
    words.write_text("\n".join(["pikachu", "bulbasaur", "charmander", "squirtle", "eevee", "mew"] * 5) + "\n")
    with running_server("--data", str(words)) as server:
        run = json.load(urllib.request.urlopen(f"{server.url}/api/runs/current"))
        assert run["dataset"]["name"] == "pokemon.txt" and run["dataset"]["words"] == 30
        assert run["status"] == "paused"
    with running_server(env={"MAKEMORE_DATA": str(words)}) as server:
        assert json.load(urllib.request.urlopen(f"{server.url}/api/runs/current"))["dataset"]["words"] == 30


def test_listening_socket_has_a_small_send_buffer() -> None:
    from backend.__main__ import SEND_BUFFER, listening_socket

    sock = listening_socket("127.0.0.1", 0)
    try:
        assert sock.getsockname()[0] == "127.0.0.1"
        # Linux doubles the value it is given; accepted connections inherit it
        assert SEND_BUFFER <= sock.getsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF) <= 2 * SEND_BUFFER
    finally:
        sock.close()
