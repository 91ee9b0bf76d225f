"""The optimizers a run can use. Plain SGD is the fast path fused into SGDStep; momentum and Adam
are torch.optim's, applied to the gradients SGDStep leaves in the parameters' .grad."""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any, Literal

import torch

from backend.core.model import MLP, SGDStep

OptimizerKind = Literal["sgd", "momentum", "adam"]


@dataclass(frozen=True)
class OptimizerSpec:
    kind: OptimizerKind = "sgd"
    momentum: float = 0.9  # for "momentum"


class Optimizer:
    """One training step: SGDStep's forward and backward, then this optimizer's update."""

    def __init__(self, model: MLP, spec: OptimizerSpec) -> None:
        self.spec = spec
        self.step = SGDStep(model, keep_gradients=spec.kind != "sgd")
        params = model.parameters()
        self.torch_optim: torch.optim.Optimizer | None
        if spec.kind == "momentum":
            self.torch_optim = torch.optim.SGD(params, lr=0.1, momentum=spec.momentum, foreach=True)
        elif spec.kind == "adam":
            self.torch_optim = torch.optim.Adam(params, lr=1e-3, foreach=True)
        else:
            self.torch_optim = None

    def __call__(self, X: torch.Tensor, Y: torch.Tensor, idx: torch.Tensor, lr: float) -> torch.Tensor:
        """Train on rows `idx`; return the minibatch loss before the update (0-d)."""
        loss = self.step(X, Y, idx, lr)
        if self.torch_optim is not None:
            for group in self.torch_optim.param_groups:
                group["lr"] = lr
            self.torch_optim.step()
        return loss

    def state(self) -> dict[str, Any] | None:
        """A copy of the optimizer's state (momentum buffers, Adam's moments), for checkpoints."""
        return None if self.torch_optim is None else _copy(self.torch_optim.state_dict())

    def load_state(self, state: dict[str, Any] | None) -> None:
        if self.torch_optim is not None and state is not None:
            self.torch_optim.load_state_dict(_copy(state))  # the checkpoint must not share tensors


def _copy(state: dict[str, Any]) -> dict[str, Any]:
    return {
        "state": {
            k: {n: t.clone() if isinstance(t, torch.Tensor) else t for n, t in v.items()}
            for k, v in state["state"].items()
        },
        "param_groups": copy.deepcopy(state["param_groups"]),
    }
