"""A run's settings: the one definition that builds the run and goes into its checkpoint (as
nanoGPT's config does). The API's RunCreate adds only what is not a setting (a name, whether to
start); HParamsFields is the part a user may change while it trains.

Strict numbers: JSON `true` or "0.1" is not a number. No NaN, no infinity anywhere.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from backend.core.model import MLP, ModelShape
from backend.core.optim import OptimizerSpec
from backend.core.schedule import Schedule


def _integral(value: object) -> object:
    """JSON has one kind of number: 1194.0 is the integer 1194 (as JSON Schema says), 1.5 is not
    an integer, and neither are true or "12" (the strict check after this refuses them)."""
    if isinstance(value, float) and value.is_integer() and abs(value) < 2**63:
        return int(value)
    return value


Integral = BeforeValidator(_integral)
LR = Annotated[float, Field(gt=0, le=10, strict=True, allow_inf_nan=False, description="learning rate, in (0, 10]")]
# The upper bound that depends on the data (the number of training examples) is checked where the
# data is known; this one keeps absurd integers out of everything before that.
BatchSize = Annotated[
    int, Field(ge=1, le=10_000_000, strict=True, description="1 to the number of training examples"), Integral
]
EvalEvery = Annotated[int, Field(ge=1, le=1_000_000, strict=True), Integral]
MaxSteps = Annotated[int, Field(ge=1, le=100_000_000, strict=True), Integral]
Step = Annotated[int, Field(ge=0, le=100_000_000, strict=True), Integral]
Seed = Annotated[int, Field(ge=0, le=2**53 - 1, strict=True), Integral]  # exact in JSON numbers and JavaScript
DatasetId = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")]
BlockSize = Annotated[int, Field(ge=1, le=16, strict=True), Integral]
NEmbd = Annotated[int, Field(ge=2, le=64, strict=True), Integral]
NHidden = Annotated[int, Field(ge=8, le=1024, strict=True), Integral]
Init = Literal["lecture", "scaled"]
OptimizerName = Literal["sgd", "momentum", "adam"]


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


def schedule_of(s: ConstantSchedule | StepSchedule | CosineSchedule | None) -> Schedule:
    if isinstance(s, StepSchedule):
        return Schedule("step", at=s.at, factor=s.factor)
    if isinstance(s, CosineSchedule):
        return Schedule("cosine", min_lr=s.min_lr)
    return Schedule()


def schedule_in(s: Schedule) -> ConstantSchedule | StepSchedule | CosineSchedule:
    if s.kind == "step":
        return StepSchedule(kind="step", at=s.at, factor=s.factor)
    if s.kind == "cosine":
        return CosineSchedule(kind="cosine", min_lr=s.min_lr)
    return ConstantSchedule(kind="constant")


# ---- the run's settings ------------------------------------------------------------------------
class RunSpec(Strict):
    """What a run is: its model and data, and the hyperparameters it starts with."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, frozen=True)

    block_size: BlockSize = 3
    n_embd: NEmbd = 10
    n_hidden: NHidden = 200
    seed: Seed = 2147483647
    init: Init = Field(
        default="lecture",
        description='"lecture": plain randn (first loss ~27); "scaled": part 3\'s fixes (first loss ~ln 27)',
    )
    optimizer: OptimizerName = "sgd"
    momentum: Annotated[float, Field(ge=0, lt=1, strict=True, allow_inf_nan=False)] = 0.9
    dataset: DatasetId = Field(default="builtin", description="an id from GET /api/datasets")
    max_steps: MaxSteps = 200_000
    lr: LR = 0.1
    batch_size: BatchSize = 32
    eval_every: EvalEvery = 1000
    schedule: ScheduleIn | None = None

    def shape(self, vocab_size: int) -> ModelShape:
        return ModelShape(vocab_size, self.block_size, self.n_embd, self.n_hidden)

    def init_model(self, vocab_size: int) -> MLP:
        init = MLP.scaled_init if self.init == "scaled" else MLP.lecture_init
        return init(self.shape(vocab_size), self.seed)

    def optimizer_spec(self) -> OptimizerSpec:
        return OptimizerSpec(self.optimizer, self.momentum)

    def default_name(self) -> str:
        """A short name from what sets this run apart, e.g. "lr 0.1 · b 32"."""
        parts = [f"lr {self.lr:g}", f"b {self.batch_size}"]
        if self.optimizer != "sgd":
            parts.append(self.optimizer)
        if self.init != "lecture":
            parts.append(f"{self.init} init")
        if (self.block_size, self.n_embd, self.n_hidden) != (3, 10, 200):
            parts.append(f"{self.block_size}×{self.n_embd}→{self.n_hidden}")
        if self.schedule is not None and self.schedule.kind != "constant":
            parts.append(self.schedule.kind)
        return " · ".join(parts)
