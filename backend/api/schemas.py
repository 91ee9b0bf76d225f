"""Pydantic schemas of the HTTP and websocket API, named by role. A run's settings are defined
once (training/spec.py): a create body is a RunSpec, a change an HParamsPatch, and a run shows
its RunConfig and HParams; each schema here only adds what is not a setting (a name, a status)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from backend.runs.names import DOCUMENTED_PATTERN, VALIDATED_PATTERN, visible
from backend.training.protocol import Cause, Status, Update
from backend.training.spec import (
    LR,
    BatchSize,
    HParams,
    HParamsPatch,
    Integral,
    RunConfig,
    RunSpec,
    Step,
    Strict,
)

RunName = Annotated[
    str,
    Field(min_length=1, max_length=100, pattern=VALIDATED_PATTERN, json_schema_extra={"pattern": DOCUMENTED_PATTERN}),
    AfterValidator(visible),
]


# ---- runs ----------------------------------------------------------------------------------------
class RunCreate(RunSpec):
    """A run's settings (RunSpec), and what is not a setting: its name, whether to start now."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, frozen=True)

    name: RunName | None = Field(default=None, description='default: from its settings, e.g. "lr 0.1 · b 32"')
    start: Annotated[bool, Field(strict=True)] = True

    def spec(self) -> RunSpec:
        return RunSpec.model_validate(self.model_dump(exclude={"name", "start"}))


class HParamsFields(HParamsPatch):
    """What a user may change in a running run (an HParamsPatch): PATCH's body and the websocket's `set`."""

    def update(self, status: Status | None = None) -> Update:
        return Update(status=status, **{k: getattr(self, k) for k in HParamsPatch.model_fields})


class HParamsUpdate(HParamsFields):
    status: Literal["running", "paused"] | None = Field(
        default=None, description="resume (any status; queued while every slot is taken) or pause"
    )
    name: RunName | None = None


class SettingsSchema(BaseModel):
    """A run's settings as the server checks them, for a client to build its forms from (every
    default, bound and choice): the JSON schemas of the create and the update bodies."""

    create: dict[str, Any] = Field(description="the JSON schema of POST /api/runs's body")
    update: dict[str, Any] = Field(description="the JSON schema of PATCH /api/runs/{run_id}'s body")
    sweep: dict[str, Any] = Field(default_factory=dict, description="the JSON schema of POST /api/sweeps's body")
    max_running: int | None = Field(
        default=None, description="runs this server trains at once (MAKEMORE_MAX_RUNNING); the others queue"
    )


class BranchCreate(HParamsFields):
    """A new run from one of this run's checkpoints, with its history up to there."""

    step: Step | None = Field(default=None, description="a checkpoint's step (GET .../checkpoints); default the latest")
    name: RunName | None = None
    start: Annotated[bool, Field(strict=True)] = True


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


class ParentPublic(BaseModel):
    id: str
    step: int


class TestEvalPublic(BaseModel):
    step: int
    test_loss: float
    test_examples: int
    ms: float


class DivergencePublic(BaseModel):
    step: int = Field(description="the step whose loss gave the divergence away")
    lr: float = Field(description="the base learning rate it trained at")
    loss: float | None = Field(description="that step's loss; null when not finite (inf or nan)")
    smoothed: float | None = Field(description="the smoothed training loss then")
    best_smoothed: float | None = Field(description="the lowest smoothed loss before it (null: none yet)")
    restored_step: int | None = Field(description="the evaluation whose weights came back (null: none)")
    restored_dev_loss: float | None = Field(description="that evaluation's dev loss")


class OverfitPublic(BaseModel):
    best_step: int = Field(description="the evaluation with the lowest dev loss")
    best_dev: float = Field(description="that dev loss")
    since_step: int = Field(description="the first evaluation of the stretch that shows it")


class RunPublic(BaseModel):
    id: str
    name: str
    status: Status
    detail: str = Field(description="why the status is what it is, for people (e.g. why a run diverged)")
    checkpoint_held: bool = Field(
        default=False,
        description="its checkpoint at the step it stopped at is kept in memory, not yet written (the disk refuses"
        " it: /api/health says why); the detail says so to people",
    )
    cause: Cause | None = Field(description="why the status is what it is, for programs; null: nothing to explain")
    divergence: DivergencePublic | None = Field(description="where it diverged, when its cause is diverged")
    step: int
    config: RunConfig = Field(description="what the run is, for its whole life (dataset: the dataset's id)")
    hparams: HParams = Field(description="the hyperparameters in effect now")
    dataset: DatasetPublic | None = Field(description="null if its dataset is gone")
    params: int
    last_eval: EvalPublic | None
    best_dev_loss: float | None = Field(description="the lowest dev loss of any evaluation so far")
    overfit: OverfitPublic | None = Field(
        default=None,
        description="the dev loss rising for 3 evaluations, 2% above its best, while the training loss falls "
        "(backend/runs/overfit.py; a stored run's from its stored evaluations); null: not seen",
    )
    test: TestEvalPublic | None = Field(description="the last evaluation on the test split, if any")
    train_seconds: float = Field(description="seconds spent training (pauses excluded)")
    created_at: float = Field(description="Unix time")
    updated_at: float = Field(description="Unix time")
    parent: ParentPublic | None = Field(description="the run and step it was branched from")
    sweep: str | None = Field(description="the sweep it belongs to")
    worker: str | None = Field(description='where it trains now: "local:<pid>", "ray:<node id>", or null')
    queue_position: int | None = Field(description="1 for the next to start, when queued")


class PointsPublic(BaseModel):
    step: list[int]
    loss: list[float | None]
    lr: list[float | None]
    time: list[float | None] = Field(description="seconds of training at each point's step")
    evals: list[list[float | None]] = Field(
        description="[step, train_loss, dev_loss, b_noise] in the range: every one while they are no more than"
        " `points`, else each of (points - 1) / 2 groups' lowest and highest dev loss, and the last"
    )
    changes: list[dict[str, Any]] = Field(
        default_factory=list,
        description="every change of its hyperparameters (the step-0 entry first): overlays mark them and say "
        "which values each point trained with",
    )
    start: int
    end: int


class RunPointsPublic(BaseModel):
    run: RunPublic
    points: PointsPublic


class RunsPointsPublic(BaseModel):
    runs: list[RunPointsPublic] = Field(description="in the order asked")
    missing: list[str] = Field(description="the ids asked that name no stored run")


class CheckpointPublic(BaseModel):
    step: int
    train_loss: float | None
    dev_loss: float | None
    created_at: float
    bytes: int


# ---- sampling and reading the model ------------------------------------------------------------
class SampleQuery(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    n: Annotated[int, Field(ge=1, le=1000)] = 20
    # below 0.01 the logits / temperature overflow and every name is the single likeliest one anyway
    temperature: Annotated[float, Field(ge=0.01, le=10, allow_inf_nan=False)] = 1.0
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
    steps: Annotated[int, Field(ge=10, le=5000, strict=True), Integral] = 1000
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
class SuggestedPublic(BaseModel):
    max_steps: int = Field(description="about 40 epochs of its training examples at batch 32, within 1,000-200,000")
    eval_every: int = Field(description="max_steps / 200, rounded")
    epochs: float = Field(description="the passes over its training examples that max_steps makes at batch 32")
    short: bool = Field(description="fewer steps than the lecture's 200,000: under 160,000 training examples")


class DatasetInfo(BaseModel):
    id: str
    name: str
    words: int
    vocab_size: int
    train_examples: int = Field(description="examples of its training split (a character of a word or its end)")
    builtin: bool
    about: str = Field(default="", description="what the list is and where it comes from ('' for uploads)")
    suggested: SuggestedPublic = Field(description="a new run's max_steps and eval_every for its size")
    bytes: int = Field(description="the size of its text")
    created_at: float = Field(description="Unix time")


# ---- client -> server websocket messages -------------------------------------------------------
class SetMessage(HParamsFields):
    type: Literal["set"]


class PauseMessage(Strict):
    type: Literal["pause"]


class ResumeMessage(Strict):
    type: Literal["resume"]


class ClientMessage(BaseModel):
    msg: Annotated[SetMessage | PauseMessage | ResumeMessage, Field(discriminator="type")]
