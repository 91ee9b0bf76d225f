"""The bodies and answers of the sweeps' routes (POST /api/sweeps, GET /api/sweeps...): a run's
settings (training/spec.py), each given as a list of values, or a range of learning rates."""

from __future__ import annotations

from typing import Annotated, Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic.json_schema import SkipJsonSchema

from backend.api.schemas import RunName, RunPublic
from backend.training.spec import (
    LR,
    BatchSize,
    BlockSize,
    Init,
    Integral,
    NEmbd,
    NHidden,
    OptimizerName,
    RunSpec,
    Schedule,
    Seed,
    Strict,
)

# ---- sweeps ---------------------------------------------------------------------------------------
T = TypeVar("T")
Values = Annotated[list[T], Field(min_length=1, max_length=64)]  # a parameter's values in a sweep


class SweepGrid(Strict):
    """Lists of values; the sweep runs every combination (at most 64 runs)."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, json_schema_extra={"minProperties": 1})

    lr: Values[LR] | SkipJsonSchema[None] = None
    batch_size: Values[BatchSize] | SkipJsonSchema[None] = None
    optimizer: Values[OptimizerName] | SkipJsonSchema[None] = None
    init: Values[Init] | SkipJsonSchema[None] = None
    n_embd: Values[NEmbd] | SkipJsonSchema[None] = None
    n_hidden: Values[NHidden] | SkipJsonSchema[None] = None
    block_size: Values[BlockSize] | SkipJsonSchema[None] = None
    schedule: Values[Schedule] | SkipJsonSchema[None] = None
    seed: Values[Seed] | SkipJsonSchema[None] = None

    @field_validator("*", mode="before")
    @classmethod
    def _no_null(cls, value: object) -> object:
        # absent is fine; an explicit null is not (the schema says a list)
        if value is None:
            raise ValueError("leave it out rather than null")
        return value

    @model_validator(mode="after")
    def _not_empty(self) -> SweepGrid:
        # as its schema says (minProperties 1): an empty grid is a mistake, not "nothing to vary"
        if all(getattr(self, name) is None for name in type(self).model_fields):
            raise ValueError("a grid names at least one parameter; leave it out to sweep an lr_range alone")
        return self


class LrRange(Strict):
    """n learning rates spaced evenly in log10 from min to max (the lecture's search)."""

    # the lecture's search: 10^-3 to 10^0 (the page's sweep form starts from these)
    min: LR = 0.001
    max: LR = 1.0
    n: Annotated[int, Field(ge=2, le=64, strict=True), Integral] = 7

    @model_validator(mode="after")
    def _ordered(self) -> LrRange:
        if self.min >= self.max:
            raise ValueError("min must be below max")
        return self


SWEEP_STEPS = 20_000


class SweepCreate(Strict):
    # a grid, a range, or both (the range gives the rates, the grid the rest)
    model_config = ConfigDict(
        extra="forbid",
        allow_inf_nan=False,
        json_schema_extra={"anyOf": [{"required": ["grid"]}, {"required": ["lr_range"]}]},
    )

    base: RunSpec = Field(
        default_factory=lambda: RunSpec(max_steps=SWEEP_STEPS),
        description="any field of POST /api/runs (but name and start); left out: the lecture's run, "
        f"{SWEEP_STEPS:,} steps long (a sweep compares many runs: each short)",
        json_schema_extra={"default": {"max_steps": SWEEP_STEPS}},
    )
    grid: SweepGrid | SkipJsonSchema[None] = None
    lr_range: LrRange | SkipJsonSchema[None] = Field(
        default=None, description="instead of (or besides) a grid without lr"
    )
    name: RunName | SkipJsonSchema[None] = None

    @field_validator("grid", "lr_range", "name", mode="before")
    @classmethod
    def _no_null(cls, value: object) -> object:
        # absent is fine; an explicit null is not (the schema says an object or a string)
        if value is None:
            raise ValueError("leave it out rather than null")
        return value

    @model_validator(mode="after")
    def _something_to_sweep(self) -> SweepCreate:
        grid = self.grid.model_dump(exclude_none=True) if self.grid else {}
        if not grid and self.lr_range is None:
            raise ValueError("give a grid (lists of values) or an lr_range")
        return self


class SweepPublic(BaseModel):
    id: str
    name: str
    status: Literal["running", "finished", "paused", "stopped"] = Field(
        description="running while any of its runs trains or waits; stopped once deleted"
    )
    swept: list[str] = Field(description="the parameters it varies")
    created_at: float
    request: dict[str, Any] = Field(description="the body that created it")
    runs: list[RunPublic]
