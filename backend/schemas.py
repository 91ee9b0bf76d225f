"""Pydantic schemas of the HTTP and websocket API, named by role."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from backend.trainer import Status

# Strict numbers: JSON `true` or "0.1" is not a number. No NaN, no infinity anywhere.
LR = Annotated[float, Field(gt=0, le=10, strict=True, allow_inf_nan=False, description="learning rate, in (0, 10]")]
BatchSize = Annotated[int, Field(ge=1, strict=True, description="1 to the number of training examples")]
EvalEvery = Annotated[int, Field(ge=1, le=1_000_000, strict=True)]
MaxSteps = Annotated[int, Field(ge=1, le=100_000_000, strict=True)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


class RunCreate(Strict):
    block_size: Annotated[int, Field(ge=1, le=16, strict=True)] = 3
    n_embd: Annotated[int, Field(ge=2, le=64, strict=True)] = 10
    n_hidden: Annotated[int, Field(ge=8, le=1024, strict=True)] = 200
    seed: Annotated[int, Field(ge=0, le=2**63 - 1, strict=True)] = 2147483647
    max_steps: MaxSteps = 200_000
    lr: LR = 0.1
    batch_size: BatchSize = 32
    eval_every: EvalEvery = 1000
    start: Annotated[bool, Field(strict=True)] = True


class HParamsUpdate(Strict):
    lr: LR | None = None
    batch_size: BatchSize | None = None
    eval_every: EvalEvery | None = None
    max_steps: MaxSteps | None = None
    status: Literal["running", "paused"] | None = None


class ConfigPublic(BaseModel):
    block_size: int
    n_embd: int
    n_hidden: int
    seed: int
    max_steps: int


class HParamsPublic(BaseModel):
    lr: float
    batch_size: int
    eval_every: int


class DatasetPublic(BaseModel):
    name: str
    words: int
    vocab_size: int
    train_examples: int
    dev_examples: int
    test_examples: int


class EvalPublic(BaseModel):
    step: int
    train_loss: float | None
    dev_loss: float | None


class RunPublic(BaseModel):
    id: str
    status: Status
    detail: str = Field(description="why the status is what it is (e.g. why a run diverged)")
    step: int
    config: ConfigPublic
    hparams: HParamsPublic
    dataset: DatasetPublic
    params: int
    last_eval: EvalPublic | None


class SampleQuery(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    n: Annotated[int, Field(ge=1, le=1000)] = 20
    temperature: Annotated[float, Field(gt=0, le=10, allow_inf_nan=False)] = 1.0
    seed: Annotated[int | None, Field(ge=0, le=2**63 - 1)] = None


class SamplePublic(BaseModel):
    names: list[str]
    seed: int = Field(description="pass it back to get the same names from the same weights")


class Health(BaseModel):
    status: Literal["ok"] = "ok"


# Client -> server websocket messages
class SetMessage(Strict):
    type: Literal["set"]
    lr: LR | None = None
    batch_size: BatchSize | None = None
    eval_every: EvalEvery | None = None
    max_steps: MaxSteps | None = None


class PauseMessage(Strict):
    type: Literal["pause"]


class ResumeMessage(Strict):
    type: Literal["resume"]


class ClientMessage(BaseModel):
    msg: Annotated[SetMessage | PauseMessage | ResumeMessage, Field(discriminator="type")]
