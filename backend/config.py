"""The one Settings class: environment (MAKEMORE_*) first, command-line flags on top."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

DEFAULT_DATA = Path(__file__).resolve().parents[1] / "data" / "names.txt"


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
    # Niceness added to each run's worker (0-19): training takes what the server leaves idle, so
    # that it answers at once while runs train on every core (runtime/priority.py).
    worker_nice: int = Field(default=10, ge=0, le=19)
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
    # ---- who may talk to the server, and how much (backend/edge/; README "Security") ----------
    # The token every request but GET /api/health needs. Off loopback one is generated when none
    # is given; auth="none" turns the token off on purpose (with a warning in the log).
    token: str | None = Field(default=None, min_length=8, pattern=r"^[A-Za-z0-9._~-]+$")  # URL- and cookie-safe
    auth: Literal["token", "none"] = "token"
    # Host names, besides loopback and the bound address, answered when no token is in force
    # (against DNS rebinding); "*.example.org" covers its subdomains. Comma-separated.
    allowed_hosts: Annotated[list[str], NoDecode] = []
    # Limits (backend/edge/limits.py)
    max_body_bytes: int = Field(default=6_000_000, ge=1024, le=10**9)  # uploads: 5 MB + the form's framing
    ws_per_client: int = Field(default=128, ge=1, le=100_000)  # open websockets per client address
    ws_messages_per_s: float = Field(default=20.0, gt=0, le=10_000, allow_inf_nan=False)  # per websocket
    sample_budget: int = Field(default=2000, ge=1000, le=10**6)  # names being drawn at once, all requests
    # Deadlines in seconds (backend/edge/protocols.py)
    header_timeout: float = Field(default=10.0, gt=0, le=3600, allow_inf_nan=False)  # for a request's head
    body_timeout: float = Field(default=30.0, gt=0, le=3600, allow_inf_nan=False)  # silence within a body
    stall_timeout: float = Field(default=60.0, gt=0, le=3600, allow_inf_nan=False)  # an answer left unread
    # Seconds open connections get to finish after SIGTERM or Ctrl-C. The runs are paused at the
    # signal meanwhile (registry.stop_runs), so the whole shutdown stays within ~this + 1 s.
    shutdown_timeout: int = Field(default=3, ge=1, le=3600)
    # Websocket keepalive. A viewer that stopped reading cannot answer a ping (it waits behind
    # what the viewer has not read): it is dropped after ws_ping_timeout, and its page reconnects.
    ws_ping_interval: float = Field(default=20.0, gt=0, le=3600, allow_inf_nan=False)
    ws_ping_timeout: float = Field(default=100.0, gt=0, le=3600, allow_inf_nan=False)
    # Bench only (bench/store_cost.py measures what storing costs the training): runs keep their
    # records, but no steps, evaluations or checkpoints are written. Never for real use: nothing
    # of a run's history or weights survives its worker or a restart.
    bench_no_store: bool = False

    @field_validator("allowed_origins", "allowed_hosts", mode="before")
    @classmethod
    def _split_origins(cls, value: object) -> object:
        if isinstance(value, str):
            return [part.strip().rstrip("/") for part in value.split(",") if part.strip()]
        return value
