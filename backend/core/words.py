"""Word lists: one item per line, UTF-8, blank lines ignored; checked before anything else runs.

This module does not import torch, so a bad file stops the server at once.
"""

from __future__ import annotations

import os
import stat
import unicodedata
from dataclasses import dataclass
from pathlib import Path

BOUNDARY = "."  # start and end token


class DatasetError(ValueError):
    """A word list we cannot train on; the message names the source and the problem."""


@dataclass(frozen=True)
class Limits:
    max_bytes: int = 50_000_000
    max_chars: int = 256  # distinct characters, boundary excluded
    max_word_len: int = 256
    min_words: int = 10  # so that an 80/10/10 split leaves every part non-empty


DEFAULT_LIMITS = Limits()


def parse_words(raw: bytes, source: str, limits: Limits = DEFAULT_LIMITS) -> list[str]:
    """Decode and check a word list. Blank lines are ignored, surrounding whitespace stripped."""
    if len(raw) > limits.max_bytes:
        raise DatasetError(f"{source}: {len(raw):,} bytes is more than the {limits.max_bytes:,} allowed")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise DatasetError(f"{source}: not UTF-8 text (byte {e.start}: {e.reason})") from None
    words: list[str] = []
    for lineno, line in enumerate(text.split("\n"), start=1):
        word = line.strip()
        if not word:
            continue
        if BOUNDARY in word:
            raise DatasetError(f"{source}: line {lineno} contains '{BOUNDARY}', the boundary token")
        if len(word) > limits.max_word_len:
            raise DatasetError(
                f"{source}: line {lineno} has {len(word):,} characters "
                f"(at most {limits.max_word_len} per item: one name or word per line)"
            )
        bad = next((c for c in word if unicodedata.category(c) in ("Cc", "Cs")), None)
        if bad is not None:
            raise DatasetError(f"{source}: line {lineno} contains the control character U+{ord(bad):04X}")
        words.append(word)
    if not words:
        raise DatasetError(f"{source}: no words (the file is empty or blank)")
    if len(words) < limits.min_words:
        raise DatasetError(
            f"{source}: only {len(words)} words; at least {limits.min_words} are needed for a train/dev/test split"
        )
    n_chars = len(set("".join(words)))
    if n_chars > limits.max_chars:
        raise DatasetError(f"{source}: {n_chars} distinct characters (at most {limits.max_chars})")
    return words


def read_words(path: Path, limits: Limits = DEFAULT_LIMITS) -> list[str]:
    """A regular file only, and at most `limits.max_bytes` of it: a FIFO would block the start
    for ever, and /dev/zero would be read until memory runs out."""
    try:
        # O_NONBLOCK: opening a FIFO with no writer returns at once (it blocks otherwise); checked
        # on the open file, so that nothing can swap the path between the check and the read
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except FileNotFoundError:
        raise DatasetError(f"{path}: no such file") from None
    except OSError as e:
        raise DatasetError(f"{path}: cannot read ({e.strerror})") from None
    try:
        info = os.fstat(fd)
        if stat.S_ISDIR(info.st_mode):
            raise DatasetError(f"{path}: is a directory, not a word list")
        if not stat.S_ISREG(info.st_mode):
            raise DatasetError(f"{path}: not a regular file (a FIFO, a device or a socket); give a word list file")
        if info.st_size > limits.max_bytes:
            raise DatasetError(f"{path}: {info.st_size:,} bytes is more than the {limits.max_bytes:,} allowed")
        with open(fd, "rb", closefd=False) as f:
            raw = f.read(limits.max_bytes + 1)  # it may grow while we read: parse_words says so
    except OSError as e:
        raise DatasetError(f"{path}: cannot read ({e.strerror})") from None
    finally:
        os.close(fd)
    return parse_words(raw, str(path), limits)
