"""A run's settings, defined once: `RunConfig` (what the run is: its model, initialisation,
optimizer, seed and data, fixed for its life) and `HParams` (what a user steers while it trains).
`RunSpec` is both, flat: what a run is and starts with, the body of POST /api/runs and what a
checkpoint and the store keep (as nanoGPT's config goes into its checkpoints). `HParamsPatch` is
a change to HParams, None leaving a field as it is; `HParams.merged` applies it, the one place
that rule is written. The API's schemas derive from these (api/schemas.py), and
`model_dump`/`model_validate` is their one codec: the store, checkpoints, the worker and the
websocket messages carry them that way.

Strict numbers: JSON `true` or "0.1" is not a number. No NaN, no infinity anywhere.
"""

from __future__ import annotations

import math
from typing import Annotated, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from backend.core.model import MLP, ModelShape
from backend.core.optim import OptimizerSpec


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
Momentum = Annotated[float, Field(ge=0, lt=1, strict=True, allow_inf_nan=False)]
Init = Literal["lecture", "scaled"]
OptimizerName = Literal["sgd", "momentum", "adam"]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


class Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, frozen=True)


# ---- schedules: the rate of each step from the base rate the slider sets -----------------------
class ConstantSchedule(Frozen):
    """lr at every step."""

    kind: Literal["constant"]

    def lr(self, base: float, step: int, max_steps: int) -> float:
        return base


class StepSchedule(Frozen):
    """The lecture's: lr until step `at`, then lr * factor (0.1 -> 0.01 at 100,000)."""

    kind: Literal["step"]
    at: Step
    factor: Annotated[float, Field(gt=0, le=10, strict=True, allow_inf_nan=False)] = 0.1

    def lr(self, base: float, step: int, max_steps: int) -> float:
        return base * self.factor if step >= self.at else base


class CosineSchedule(Frozen):
    """From lr at step 0 down to min_lr at max_steps along half a cosine (then min_lr)."""

    kind: Literal["cosine"]
    min_lr: Annotated[float, Field(ge=0, le=10, strict=True, allow_inf_nan=False)] = 0.0

    def lr(self, base: float, step: int, max_steps: int) -> float:
        progress = min(step / max_steps, 1.0)
        return self.min_lr + (base - self.min_lr) * 0.5 * (1.0 + math.cos(math.pi * progress))


Schedule = Annotated[ConstantSchedule | StepSchedule | CosineSchedule, Field(discriminator="kind")]
CONSTANT = ConstantSchedule(kind="constant")


def _null_is_constant(value: object) -> object:
    return {"kind": "constant"} if value is None else value


# A run's schedule: null (as a create body may say, and runs stored before schedules say) is constant.
RunSchedule = Annotated[Schedule, BeforeValidator(_null_is_constant, json_schema_input_type=Schedule | None)]


# ---- the run's settings ------------------------------------------------------------------------
class RunConfig(Frozen):
    """What a run is, for its whole life: its model, initialisation, optimizer, seed and data."""

    block_size: BlockSize = 3
    n_embd: NEmbd = 10
    n_hidden: NHidden = 200
    seed: Seed = 2147483647
    init: Init = Field(
        default="lecture",
        description='"lecture": plain randn (first loss ~27); "scaled": part 3\'s fixes (first loss ~ln 27)',
    )
    optimizer: OptimizerName = "sgd"
    momentum: Momentum = Field(default=0.9, description='used by optimizer "momentum"')
    dataset: DatasetId = Field(default="builtin", description="an id from GET /api/datasets")

    def shape(self, vocab_size: int) -> ModelShape:
        return ModelShape(vocab_size, self.block_size, self.n_embd, self.n_hidden)

    def init_model(self, vocab_size: int) -> MLP:
        init = MLP.scaled_init if self.init == "scaled" else MLP.lecture_init
        return init(self.shape(vocab_size), self.seed)

    def optimizer_spec(self) -> OptimizerSpec:
        return OptimizerSpec(self.optimizer, self.momentum)


class HParams(Frozen):
    """What a user may change while the run trains; a trainer applies a change between two steps."""

    lr: LR = Field(default=0.1, description="the base rate; the schedule gives each step's rate from it")
    batch_size: BatchSize = 32
    eval_every: EvalEvery = 1000
    max_steps: MaxSteps = 200_000
    schedule: RunSchedule = CONSTANT

    def merged(self, patch: HParamsPatch) -> HParams:
        """These hparams with the patch's fields that are not None (None keeps the old value)."""
        changes = {k: v for k in HParams.model_fields if (v := getattr(patch, k)) is not None}
        return self.model_copy(update=changes) if changes else self


class HParamsPatch(Strict):
    """A change to a run's HParams: PATCH's body, the websocket's `set`, a trainer's Update."""

    lr: LR | None = None
    batch_size: BatchSize | None = None
    eval_every: EvalEvery | None = None
    max_steps: MaxSteps | None = None
    schedule: Schedule | None = None

    def changes_hparams(self) -> bool:
        return any(getattr(self, k) is not None for k in HParams.model_fields)


class RunSpec(RunConfig, HParams):
    """What a run is (RunConfig) and the hyperparameters it starts with (HParams), flat."""

    def config(self) -> RunConfig:
        return RunConfig.model_validate(self.model_dump(include=set(RunConfig.model_fields)))

    def hparams(self) -> HParams:
        return HParams.model_validate(self.model_dump(include=set(HParams.model_fields)))

    def default_name(self, dataset: str | None = None) -> str:
        """A short name from what sets this run apart from the lecture's, e.g. "lr 0.1 · b 32" or
        "lr 0.1 · b 32 · names.txt · adam"; `dataset`: its data's name when not the built-in."""
        return " · ".join([f"lr {self.lr:g}", f"b {self.batch_size}", *self.differences(dataset)])

    def differences(self, dataset: str | None = None, skip: frozenset[str] = frozenset()) -> list[str]:
        """What differs from the lecture's run besides the rate and batch (the data, the
        initialisation, the optimizer, the model's size, the schedule), `skip`'s fields left out;
        `dataset`: the data's name when not the built-in (the caller knows which that is)."""
        parts = []
        if dataset is not None and "dataset" not in skip:
            parts.append(dataset)
        if self.optimizer != "sgd" and "optimizer" not in skip:
            parts.append(self.optimizer)
        if self.init != "lecture" and "init" not in skip:
            parts.append(f"{self.init} init")
        size = (self.block_size, self.n_embd, self.n_hidden)
        if size != (3, 10, 200) and not skip & {"block_size", "n_embd", "n_hidden"}:
            # ASCII: fonts without the arrow glyph showed a box
            parts.append(f"{self.block_size}x{self.n_embd}->{self.n_hidden}")
        if self.schedule.kind != "constant" and "schedule" not in skip:
            parts.append(self.schedule.kind)
        return parts
