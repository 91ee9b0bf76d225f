"""A trainer's whole state, and its encoding as one safetensors file.

Exact resume needs more than the weights (nanoGPT keeps the model, the optimizer, the iteration
and the config; we also need every random generator and where the minibatch sampler stands):

- the weights and the optimizer's state (momentum buffers, Adam's moments and step);
- the minibatch generator, as it was before it drew the current block of minibatches, and how
  many of that block's steps are used (Minibatches draws a block of steps at a time);
- the noise-scale estimate's generator, the divergence guard (its smoothed loss, the best
  values, and the weights it would restore), the hyperparameters, the step, trained seconds.

Tensors go into safetensors (no pickle: loading a checkpoint cannot run code); everything else is
JSON in the file's metadata header. Encoding and decoding are pure: bytes in, bytes out (the store
writes the files).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

import torch
from safetensors.torch import load, save
from torch import Tensor

from backend.core.embeddings import EmbeddingMap
from backend.core.model import MLP, ModelShape
from backend.training.minibatches import Minibatches
from backend.training.protocol import EvalResult, Status
from backend.training.spec import HParams, RunSpec

if TYPE_CHECKING:
    from backend.training.trainer import Trainer

FORMAT = "makemore-live/1"
PARAMS = ("C", "W1", "b1", "W2", "b2")


@dataclass
class GuardState:
    """The divergence guard: a debiased EMA of the step loss, and the last good evaluation's
    weights to go back to."""

    ema: float = 0.0
    ema_weight: float = 0.0  # 1 - beta^n, to debias the EMA
    best_smoothed: float = float("inf")
    best_train: float = float("inf")
    restore: tuple[MLP, dict[str, Any] | None, EvalResult] | None = None


@dataclass
class TrainerState:
    step: int
    status: Status
    detail: str
    hparams: HParams  # max_steps included
    model: MLP
    opt_state: dict[str, Any] | None  # torch.optim's state_dict, or None for plain SGD
    batch_gen: Tensor  # the minibatch generator's state before it drew the current block
    batch_cursor: int  # steps of that block already used (== block length: none drawn yet)
    noise_gen: Tensor
    guard: GuardState
    last_eval: EvalResult | None
    last_eval_step: int
    noise: tuple[int, float] | None  # (step, B_noise): the latest estimate
    embedding_axes: list[list[float]] | None  # orients the next embedding map like the last
    sweeps: int  # learning-rate sweeps so far (each seeds its own generator)
    train_seconds: float


def capture(t: Trainer) -> TrainerState:
    """The whole state of `t`, between two steps (cheap: a copy of the weights and the
    generators' states)."""
    position, cursor = t._batches.position()
    axes = t.embeddings.axes if t.embeddings is not None else None
    return TrainerState(
        step=t.step,
        status=t.status,
        detail=t.detail,
        hparams=t.hparams,
        model=t.model.clone(),
        opt_state=t._opt.state(),
        batch_gen=position,
        batch_cursor=cursor,
        noise_gen=t._noise_gen.get_state(),
        guard=GuardState(**vars(t._guard)),
        last_eval=t.last_eval,
        last_eval_step=t._last_eval_step,
        noise=t.noise,
        embedding_axes=axes.tolist() if axes is not None else None,
        sweeps=t._sweeps,
        train_seconds=t.train_seconds,
    )


def restore(t: Trainer, s: TrainerState) -> None:
    """Put `s` back into `t`, a new trainer of the same run: it continues exactly as the one
    that took `s` would have (paused, unless it had finished or diverged)."""
    t.step = t._out.first = s.step
    t.hparams = s.hparams
    t.status = s.status if s.status in (Status.FINISHED, Status.DIVERGED) else Status.PAUSED
    t.detail = s.detail
    t.model.copy_(s.model)
    t._opt.load_state(s.opt_state)
    t._batches = Minibatches(len(t._train), s.hparams.batch_size, t._gen)
    t._batches.restore(s.batch_gen, s.batch_cursor)
    t._noise_gen.set_state(s.noise_gen)
    t._guard = s.guard
    t.last_eval, t._last_eval_step = s.last_eval, s.last_eval_step
    t.noise, t._sweeps, t._trained_s = s.noise, s.sweeps, s.train_seconds
    if s.embedding_axes is not None:  # orients the next map like the last one
        t.embeddings = EmbeddingMap([], [], "pca", torch.tensor(s.embedding_axes))


def _opt_tensors(prefix: str, state: dict[str, Any] | None) -> tuple[dict[str, Tensor], Any]:
    """torch.optim's state_dict as named tensors plus JSON (its param_groups and non-tensors)."""
    if state is None:
        return {}, None
    tensors: dict[str, Tensor] = {}
    plain: dict[str, dict[str, Any]] = {}
    for pid, values in state["state"].items():
        for name, value in values.items():
            if isinstance(value, Tensor):
                tensors[f"{prefix}.{pid}.{name}"] = value.detach().clone().contiguous()
            else:
                plain.setdefault(str(pid), {})[name] = value
    return tensors, {"param_groups": state["param_groups"], "plain": plain, "ids": [str(k) for k in state["state"]]}


def _opt_state(prefix: str, tensors: dict[str, Tensor], meta: Any) -> dict[str, Any] | None:
    if meta is None:
        return None
    state: dict[int, dict[str, Any]] = {int(pid): dict(meta["plain"].get(pid, {})) for pid in meta["ids"]}
    for key, value in tensors.items():
        if key.startswith(prefix + "."):
            _, pid, name = key.split(".", 2)
            state[int(pid)][name] = value
    groups = meta["param_groups"]
    for g in groups:  # JSON turned tuples (Adam's betas) into lists
        if "betas" in g:
            g["betas"] = tuple(g["betas"])
    return {"state": state, "param_groups": groups}


def _model_tensors(prefix: str, m: MLP) -> dict[str, Tensor]:
    return {f"{prefix}{n}": p.detach().clone().contiguous() for n, p in zip(PARAMS, m.parameters(), strict=True)}


def _model(prefix: str, tensors: dict[str, Tensor], shape: ModelShape) -> MLP:
    return MLP(shape, *(tensors[f"{prefix}{n}"] for n in PARAMS))


def _eval_json(e: EvalResult | None) -> dict[str, Any] | None:
    return None if e is None else asdict(e)


def _eval(d: dict[str, Any] | None) -> EvalResult | None:
    return None if d is None else EvalResult(**d)


def encode(spec: RunSpec, state: TrainerState, vocab: tuple[str, ...]) -> bytes:
    """One safetensors file: the tensors, and the rest as JSON in its metadata."""
    tensors = _model_tensors("", state.model)
    opt_tensors, opt_meta = _opt_tensors("opt", state.opt_state)
    tensors |= opt_tensors
    tensors["batch_gen"] = state.batch_gen.clone()
    tensors["noise_gen"] = state.noise_gen.clone()
    g = state.guard
    guard: dict[str, Any] = {
        "ema": g.ema,
        "ema_weight": g.ema_weight,
        "best_smoothed": g.best_smoothed,
        "best_train": g.best_train,
        "restore": None,
    }
    if g.restore is not None:
        weights, opt, at = g.restore
        guard["restore"] = {"eval": _eval_json(at)}
        # the weights of an evaluation at this very step are the checkpoint's own: not stored twice
        same = at.step == state.step and all(
            torch.equal(a, b) for a, b in zip(weights.parameters(), state.model.parameters(), strict=True)
        )
        if not same:
            tensors |= _model_tensors("guard.", weights)
            guard_opt_tensors, guard_opt_meta = _opt_tensors("guard_opt", opt)
            tensors |= guard_opt_tensors
            guard["restore"] |= {"own_weights": True, "opt": guard_opt_meta}
    meta = {
        "format": FORMAT,
        "spec": spec.model_dump(mode="json"),
        "vocab": list(vocab),
        "step": state.step,
        "status": state.status.value,
        "detail": state.detail,
        "hparams": state.hparams.model_dump(mode="json"),
        "opt": opt_meta,
        "batch_cursor": state.batch_cursor,
        "guard": guard,
        "last_eval": _eval_json(state.last_eval),
        "last_eval_step": state.last_eval_step,
        "noise": list(state.noise) if state.noise is not None else None,
        "embedding_axes": state.embedding_axes,
        "sweeps": state.sweeps,
        "train_seconds": state.train_seconds,
    }
    # JSON has no infinity: the guard's "best so far" starts there
    return save(tensors, metadata={"makemore": json.dumps(meta, allow_nan=True)})


@dataclass(frozen=True)
class Checkpoint:
    spec: RunSpec
    vocab: tuple[str, ...]
    state: TrainerState


def read_metadata(data: bytes) -> dict[str, Any]:
    """The JSON we keep in a safetensors file's header: the file starts with the header's length
    (8 bytes, little-endian) and the header, whose "__metadata__" holds string values."""
    if len(data) < 8:
        raise ValueError("not a safetensors file: too short")
    n = int.from_bytes(data[:8], "little")
    if n > len(data) - 8:
        raise ValueError("not a safetensors file: its header runs past the end")
    try:
        header = json.loads(data[8 : 8 + n])
        meta: dict[str, Any] = json.loads(header["__metadata__"]["makemore"])
    except (ValueError, KeyError, TypeError) as e:
        raise ValueError(f"not a makemore checkpoint: {e}") from None
    if meta.get("format") != FORMAT:
        raise ValueError(f"not a checkpoint of this version: {meta.get('format')!r}")
    return meta


def decode(data: bytes) -> Checkpoint:
    """The inverse of `encode`. Raises ValueError for anything that is not such a file."""
    meta = read_metadata(data)
    try:
        tensors = load(data)
    except Exception as e:  # safetensors raises its own error types
        raise ValueError(f"not a safetensors file: {e}") from None
    spec = RunSpec.model_validate(meta["spec"])
    vocab = tuple(meta["vocab"])
    shape = spec.shape(len(vocab))
    g = meta["guard"]
    restore = None
    if g["restore"] is not None:
        at = _eval(g["restore"]["eval"])
        assert at is not None
        if g["restore"].get("own_weights"):
            restore = (_model("guard.", tensors, shape), _opt_state("guard_opt", tensors, g["restore"]["opt"]), at)
    model = _model("", tensors, shape)
    opt_state = _opt_state("opt", tensors, meta["opt"])
    if g["restore"] is not None and restore is None:  # it was this very step's weights
        at = _eval(g["restore"]["eval"])
        assert at is not None
        restore = (model.clone(), _opt_state("opt", {k: v.clone() for k, v in tensors.items()}, meta["opt"]), at)
    state = TrainerState(
        step=meta["step"],
        status=Status(meta["status"]),
        detail=meta["detail"],
        hparams=hparams_of(meta),
        model=model,
        opt_state=opt_state,
        batch_gen=tensors["batch_gen"],
        batch_cursor=meta["batch_cursor"],
        noise_gen=tensors["noise_gen"],
        guard=GuardState(g["ema"], g["ema_weight"], g["best_smoothed"], g["best_train"], restore),
        last_eval=_eval(meta["last_eval"]),
        last_eval_step=meta["last_eval_step"],
        noise=(meta["noise"][0], meta["noise"][1]) if meta["noise"] is not None else None,
        embedding_axes=meta["embedding_axes"],
        sweeps=meta["sweeps"],
        train_seconds=meta["train_seconds"],
    )
    return Checkpoint(spec, vocab, state)


def hparams_of(meta: dict[str, Any]) -> HParams:
    """A checkpoint's hparams. Files written before max_steps was one of them keep it beside them."""
    h = meta["hparams"]
    return HParams.model_validate(h if "max_steps" in h else {**h, "max_steps": meta["max_steps"]})


def weights_file(spec: RunSpec, vocab: tuple[str, ...], model: MLP, step: int) -> bytes:
    """The model alone, for users: C, W1, b1, W2, b2 (float32) and, as metadata, the run's
    settings, the step and the vocabulary (itos: chars[i] is character i; "." is the boundary)."""
    meta = {"config": spec.model_dump_json(), "step": str(step), "vocab": json.dumps(list(vocab))}
    return save(_model_tensors("", model), metadata=meta)
