import subprocess
import sys
from pathlib import Path

import pytest
import torch

from backend.config import DEFAULT_DATA
from backend.core.data import Dataset, Vocab, build_examples, split_words
from backend.core.words import DatasetError, Limits, parse_words, read_words
from tests.conftest import LECTURE_NAMES, ROOT


def test_hand_checked_examples() -> None:
    vocab = Vocab.from_words(["emma", "bo"])
    assert vocab.chars == (".", "a", "b", "e", "m", "o")
    ex = build_examples(["emma", "bo"], vocab, block_size=3)
    decoded = [(vocab.decode(x), vocab.chars[y]) for x, y in zip(ex.X.tolist(), ex.Y.tolist(), strict=True)]
    assert decoded == [
        ("...", "e"),
        ("..e", "m"),
        (".em", "m"),
        ("emm", "a"),
        ("mma", "."),
        ("...", "b"),
        ("..b", "o"),
        (".bo", "."),
    ]
    assert ex.X.dtype == torch.long and ex.X.shape == (8, 3)


def test_block_size_one_and_longer_than_word() -> None:
    vocab = Vocab.from_words(["ab"])
    one = build_examples(["ab"], vocab, 1)
    assert [(vocab.decode(x), vocab.chars[y]) for x, y in zip(one.X.tolist(), one.Y.tolist(), strict=True)] == [
        (".", "a"),
        ("a", "b"),
        ("b", "."),
    ]
    five = build_examples(["ab"], vocab, 5)
    assert [vocab.decode(x) for x in five.X.tolist()] == [".....", "....a", "...ab"]


def test_parse_words_format() -> None:
    raw = "\ufeffAnna\r\n\n  bob \n\t\nçé ü\n" + "x\n" * 7
    words = parse_words(raw.encode(), "t.txt")
    assert words[:3] == ["Anna", "bob", "çé ü"]
    assert len(words) == 10
    assert Vocab.from_words(words).chars == (".", " ", "A", "a", "b", "n", "o", "x", "ç", "é", "ü")


@pytest.mark.parametrize(
    ("raw", "problem"),
    [
        (b"", "no words"),
        (b"\n \n\n", "no words"),
        (b"\xff\xfe\x00a", "not UTF-8"),
        (b"ann.a\n" + b"x\n" * 20, "line 1 contains '.'"),
        (b"a\nb\n", "only 2 words"),
        (("x" * 300 + "\n").encode() + b"y\n" * 20, "line 1 has 300 characters"),
        (b"a\x00b\n" + b"x\n" * 20, "control character U+0000"),
    ],
)
def test_bad_word_lists(raw: bytes, problem: str) -> None:
    with pytest.raises(DatasetError, match=r"^bad\.txt: ") as e:
        parse_words(raw, "bad.txt")
    assert problem in str(e.value)


def test_too_many_characters_and_bytes() -> None:
    words = [chr(0x4E00 + i) * 2 for i in range(300)]
    with pytest.raises(DatasetError, match="300 distinct characters"):
        parse_words("\n".join(words).encode(), "cjk.txt")
    with pytest.raises(DatasetError, match="bytes is more than"):
        parse_words(b"abc\n" * 100, "big.txt", Limits(max_bytes=100))


def test_read_words_errors(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="no such file"):
        read_words(tmp_path / "missing.txt")
    with pytest.raises(DatasetError, match="is a directory"):
        read_words(tmp_path)


def test_split_is_fixed_and_80_10_10() -> None:
    words = [f"w{i}" for i in range(1000)]
    train, dev, test = split_words(words)
    assert (len(train), len(dev), len(test)) == (800, 100, 100)
    assert sorted(train + dev + test) == sorted(words)
    assert split_words(words) == (train, dev, test)
    assert train[:5] != words[:5]  # shuffled


def test_default_dataset_shape() -> None:
    words = read_words(DEFAULT_DATA)
    assert len(words) == 29_910
    assert len(set(words)) == len(words)
    assert Vocab.from_words(words).size == 27
    assert words[:3] == ["emma", "liam", "olivia"]  # most frequent first


def test_default_dataset_is_what_the_script_builds() -> None:
    pytest.importorskip("pyarrow")
    script = ROOT / "data" / "build_names.py"
    result = subprocess.run([sys.executable, str(script), "--check"], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr


@pytest.mark.skipif(not LECTURE_NAMES.exists(), reason="makemore's names.txt is not in ../shared/data")
def test_lecture_split_sizes() -> None:
    """The lecture's notebook prints 182625 / 22655 / 22866 for random.seed(42)."""
    ds = Dataset.from_file(LECTURE_NAMES)
    s = ds.splits(3)
    assert len(ds.words) == 32_033
    assert (len(s.train), len(s.dev), len(s.test)) == (182_625, 22_655, 22_866)
    assert len(s.train) + len(s.dev) + len(s.test) == 228_146


def test_each_word_knows_its_split() -> None:
    words = [f"w{chr(97 + i % 26)}{chr(97 + i // 26)}" for i in range(200)]
    d = Dataset("d", [*words, words[0]])  # a word listed twice lands in the first split it is in
    train, dev, test = d.parts
    assert {d.split_of[w] for w in train} == {"train"}
    assert all(d.split_of[w] == ("train" if w in train else "dev") for w in dev)
    assert all(d.split_of[w] in ("train", "dev", "test") for w in test)
    assert set(d.split_of) == set(words)
    assert "zzz" not in d.split_of


def test_examples_of_only_the_latest_block_sizes_are_kept(small_dataset: Dataset) -> None:
    ds = Dataset("fresh", small_dataset.words[:300])
    first = ds.splits(3)
    assert ds.splits(3) is first  # cached
    ds.splits(5)
    ds.splits(8)  # a third block size pushes out the oldest
    assert ds.splits(8) is ds.splits(8)
    again = ds.splits(3)
    assert again is not first and torch.equal(again.train.X, first.train.X)
