"""python -m backend [--host H] [--port P] [--data FILE]"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

import uvicorn

from backend.config import Settings
from backend.words import DatasetError, read_words


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m backend", description="makemore live: the server")
    parser.add_argument("--host", help="address to bind (env MAKEMORE_HOST, default 127.0.0.1)")
    parser.add_argument("--port", type=int, help="port (env MAKEMORE_PORT, default 8000)")
    parser.add_argument(
        "--data", type=Path, help="word list, one per line (env MAKEMORE_DATA, default: built-in names)"
    )
    args = parser.parse_args(argv)
    overrides = {k: v for k, v in vars(args).items() if v is not None}
    settings = Settings(**overrides)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        words = read_words(settings.data)
    except DatasetError as e:
        sys.stderr.write(f"makemore live: cannot start: {e}\n")
        return 2

    # torch loads only now: a bad file fails in a fraction of a second
    from backend.app import create_app  # noqa: PLC0415
    from backend.data import Dataset  # noqa: PLC0415

    uvicorn.run(
        create_app(settings, Dataset(settings.data.name, words)),
        host=settings.host,
        port=settings.port,
        ws_max_size=4096,  # our control messages are tiny; bigger frames are refused (1009)
        log_level="info",
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
