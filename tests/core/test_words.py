"""Reading a word list from disk (backend/core/words.py): regular files only, at most the limit."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest

from backend.core.words import DatasetError, Limits, read_words
from tests.app.test_main import start_fails


@pytest.mark.timeout(30)  # a FIFO used to block the start for ever
def test_a_fifo_is_refused_at_once(tmp_path: Path) -> None:
    fifo = tmp_path / "words.fifo"
    os.mkfifo(fifo)
    with pytest.raises(DatasetError, match="not a regular file"):
        read_words(fifo)


def test_devices_and_sockets_are_refused(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="not a regular file"):
        read_words(Path("/dev/zero"))  # used to read until memory ran out
    path = tmp_path / "s.sock"
    with socket.socket(socket.AF_UNIX) as server:
        server.bind(str(path))
        with pytest.raises(DatasetError, match=r"cannot read|not a regular file"):
            read_words(path)


def test_a_link_to_a_regular_file_is_fine(tmp_path: Path) -> None:
    real = tmp_path / "real.txt"
    real.write_text("\n".join(["anna", "bob", "carla", "dave", "eve", "fred", "gina", "hank", "ivy", "jo"]))
    link = tmp_path / "link.txt"
    link.symlink_to(real)
    assert len(read_words(link)) == 10


def test_at_most_the_limit_is_read(tmp_path: Path) -> None:
    big = tmp_path / "big.txt"
    big.write_bytes(b"name\n" * 1000)
    with pytest.raises(DatasetError, match="5,000 bytes is more than the 4,000 allowed"):
        read_words(big, Limits(max_bytes=4000))


@pytest.mark.timeout(60)
def test_the_server_refuses_a_fifo_or_a_device_with_one_line(tmp_path: Path) -> None:
    fifo = tmp_path / "words.fifo"
    os.mkfifo(fifo)
    assert "not a regular file" in start_fails(fifo)
    assert "not a regular file" in start_fails(Path("/dev/zero"))
