"""The one Settings class: environment (MAKEMORE_*) first, command-line flags on top."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "data" / "names.txt"


def default_home() -> Path:
    """$XDG_DATA_HOME/makemore-live, or ~/.local/share/makemore-live (the XDG default)."""
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "makemore-live"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="MAKEMORE_", extra="ignore")

    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=0, le=65535)
    data: Path = DEFAULT_DATA
    # Extra origins (scheme://host:port) whose pages may open our websockets; the server's own
    # origin is always allowed. Comma-separated in the environment.
    allowed_origins: Annotated[list[str], NoDecode] = []
    # Torch threads that the training runs share for big batches (batches under 256 use one
    # each: per-op overhead, not arithmetic, sets their pace). Default: the cores.
    torch_threads: int | None = Field(default=None, ge=1, le=1024)
    # Where runs last: the database and checkpoint files.
    home: Path = Field(default_factory=default_home)
    # Runs that train at once; the others wait, queued. Default: the cores (or a Ray cluster's CPUs).
    max_running: int | None = Field(default=None, ge=1, le=1024)
    # Workers as Ray actors on a cluster: "auto", "host:port" or "ray://host:port". Unset: local processes.
    ray_address: str | None = None
    # Uploaded word lists kept at most (count, and their text in bytes in all).
    max_uploads: int = Field(default=100, ge=1, le=10_000)
    max_upload_bytes: int = Field(default=200_000_000, ge=1_000, le=10**11)
    # Learning-rate sweeps under way at once (each takes a core while it lasts).
    max_sweeps: int = Field(default=2, ge=1, le=64)
    # Bench only (bench/store_cost.py measures what storing costs the training): runs keep their
    # records, but no steps, evaluations or checkpoints are written. Never for real use: nothing
    # of a run's history or weights survives its worker or a restart.
    bench_no_store: bool = False

    @field_validator("allowed_origins", mode="before")
    @classmethod
    def _split_origins(cls, value: object) -> object:
        if isinstance(value, str):
            return [part.strip().rstrip("/") for part in value.split(",") if part.strip()]
        return value
