"""Pydantic schemas of the HTTP and websocket API, named by role."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from backend.core.schedule import Schedule
from backend.training.trainer import Status, Update

# Strict numbers: JSON `true` or "0.1" is not a number. No NaN, no infinity anywhere.
LR = Annotated[float, Field(gt=0, le=10, strict=True, allow_inf_nan=False, description="learning rate, in (0, 10]")]
BatchSize = Annotated[int, Field(ge=1, strict=True, description="1 to the number of training examples")]
EvalEvery = Annotated[int, Field(ge=1, le=1_000_000, strict=True)]
MaxSteps = Annotated[int, Field(ge=1, le=100_000_000, strict=True)]
Step = Annotated[int, Field(ge=0, le=100_000_000, strict=True)]
DatasetId = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


# ---- schedules ---------------------------------------------------------------------------------
class ConstantSchedule(Strict):
    kind: Literal["constant"]


class StepSchedule(Strict):
    """The lecture's: lr until step `at`, then lr * factor (0.1 -> 0.01 at 100,000)."""

    kind: Literal["step"]
    at: Step
    factor: Annotated[float, Field(gt=0, le=10, strict=True, allow_inf_nan=False)] = 0.1


class CosineSchedule(Strict):
    """From lr at step 0 down to min_lr at max_steps along half a cosine."""

    kind: Literal["cosine"]
    min_lr: Annotated[float, Field(ge=0, le=10, strict=True, allow_inf_nan=False)] = 0.0


ScheduleIn = Annotated[ConstantSchedule | StepSchedule | CosineSchedule, Field(discriminator="kind")]


def schedule_of(s: ConstantSchedule | StepSchedule | CosineSchedule) -> Schedule:
    if isinstance(s, StepSchedule):
        return Schedule("step", at=s.at, factor=s.factor)
    if isinstance(s, CosineSchedule):
        return Schedule("cosine", min_lr=s.min_lr)
    return Schedule()


# ---- runs ----------------------------------------------------------------------------------------
class RunCreate(Strict):
    block_size: Annotated[int, Field(ge=1, le=16, strict=True)] = 3
    n_embd: Annotated[int, Field(ge=2, le=64, strict=True)] = 10
    n_hidden: Annotated[int, Field(ge=8, le=1024, strict=True)] = 200
    seed: Annotated[int, Field(ge=0, le=2**63 - 1, strict=True)] = 2147483647
    max_steps: MaxSteps = 200_000
    lr: LR = 0.1
    batch_size: BatchSize = 32
    eval_every: EvalEvery = 1000
    schedule: ScheduleIn | None = None
    init: Literal["lecture", "scaled"] = Field(
        default="lecture",
        description='"lecture": plain randn (first loss ~27); "scaled": part 3\'s fixes (first loss ~ln 27)',
    )
    optimizer: Literal["sgd", "momentum", "adam"] = "sgd"
    momentum: Annotated[float, Field(ge=0, lt=1, strict=True, allow_inf_nan=False)] = 0.9
    dataset: DatasetId = Field(default="builtin", description="an id from GET /api/datasets")
    start: Annotated[bool, Field(strict=True)] = True


class HParamsFields(Strict):
    """What a user may change in a running run: PATCH's body and the websocket's `set`."""

    lr: LR | None = None
    batch_size: BatchSize | None = None
    eval_every: EvalEvery | None = None
    max_steps: MaxSteps | None = None
    schedule: ScheduleIn | None = None

    def update(self, status: Status | None = None) -> Update:
        return Update(
            lr=self.lr,
            batch_size=self.batch_size,
            eval_every=self.eval_every,
            max_steps=self.max_steps,
            schedule=schedule_of(self.schedule) if self.schedule else None,
            status=status,
        )


class HParamsUpdate(HParamsFields):
    status: Literal["running", "paused"] | None = None


class ConfigPublic(BaseModel):
    block_size: int
    n_embd: int
    n_hidden: int
    seed: int
    max_steps: int
    init: str
    optimizer: str
    momentum: float | None
    dataset: str  # the dataset's id


class HParamsPublic(BaseModel):
    lr: float
    batch_size: int
    eval_every: int
    schedule: dict[str, Any]


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
    b_noise: float | None = Field(description="gradient noise scale at that step (McCandlish et al. 2018)")


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
    train_seconds: float = Field(description="seconds spent training (pauses excluded)")


# ---- sampling and reading the model ------------------------------------------------------------
class SampleQuery(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    n: Annotated[int, Field(ge=1, le=1000)] = 20
    temperature: Annotated[float, Field(gt=0, le=10, allow_inf_nan=False)] = 1.0
    seed: Annotated[int | None, Field(ge=0, le=2**63 - 1)] = None


class SamplePublic(BaseModel):
    names: list[str]
    new: list[bool] = Field(description="for each name: made up, not a word of the dataset (in any split)")
    split: list[Literal["train", "dev", "test"] | None] = Field(
        description='for each name: the split it is a word of ("train", "dev", "test"), or null if it is new'
    )
    new_share: float = Field(description="the share of new names")
    seed: int = Field(description="pass it back to get the same names from the same weights")
    step: int


class NextQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")

    context: Annotated[str, Field(max_length=100, description="the start of a word; '' for its first character")] = ""


class NextPublic(BaseModel):
    context: str
    read_as: str = Field(description="the context as the model read it: in lower case if the dataset has no capitals")
    folded: bool = Field(description="true when read_as differs from context (capitals folded to lower case)")
    window: str = Field(description="the block_size characters the model sees, padded with '.'")
    chars: list[str]
    probs: list[float]
    step: int


class TestEvalPublic(BaseModel):
    step: int
    test_loss: float
    test_examples: int
    ms: float


class EmbeddingsPublic(BaseModel):
    step: int
    chars: list[str]
    x: list[float]
    y: list[float]
    method: Literal["raw", "pca"]


# ---- the learning-rate finder ------------------------------------------------------------------
class LrFindCreate(Strict):
    min_lr: LR = 1e-3
    max_lr: LR = 1.0
    steps: Annotated[int, Field(ge=10, le=5000, strict=True)] = 1000
    batch_size: BatchSize | None = None

    @model_validator(mode="after")
    def _ordered(self) -> LrFindCreate:
        if self.min_lr >= self.max_lr:
            raise ValueError("min_lr must be below max_lr")
        return self


class LrFindStarted(BaseModel):
    min_lr: float
    max_lr: float
    steps: int
    batch_size: int
    detail: str = "sweeping: progress streams over the run's websocket (lrfind, then lrfind_done)"


class LrFindPublic(BaseModel):
    lr: list[float]
    loss: list[float | None]
    smoothed: list[float | None]
    suggestion: float | None
    method: str
    step: int = Field(description="the run's step when the sweep was taken")
    batch_size: int
    seconds: float
    stopped_early: bool


# ---- datasets ------------------------------------------------------------------------------------
class DatasetInfo(BaseModel):
    id: str
    name: str
    words: int
    vocab_size: int
    builtin: bool


# ---- client -> server websocket messages -------------------------------------------------------
class SetMessage(HParamsFields):
    type: Literal["set"]


class PauseMessage(Strict):
    type: Literal["pause"]


class ResumeMessage(Strict):
    type: Literal["resume"]


class ClientMessage(BaseModel):
    msg: Annotated[SetMessage | PauseMessage | ResumeMessage, Field(discriminator="type")]
