"""The optimizers a run can use, each fused into the hand-written step (SGDStep): no autograd, no
torch.optim, their state in buffers allocated once.

At batch 32 a step is about twenty tensor ops and PyTorch's per-op overhead, not arithmetic, is
what it costs (REFERENCE §2), so what an optimizer costs is the ops it adds to plain SGD's:
- SGD: none. The backward's gradient products add -lr * grad to the parameters themselves.
- momentum (torch.optim.SGD's: buf = mu * buf + g, p -= lr * buf; dampening 0, no Nesterov) and
  Adam (torch.optim.Adam's defaults: betas (0.9, 0.999), eps 1e-8, bias correction, no weight
  decay, no amsgrad): the same products write g into gradient buffers (one cheap zero_ more),
  then one call of the kernel behind torch.optim's `fused=True`, torch._fused_sgd_ or
  torch._fused_adam_, updates the state and the parameters of all four tensors in one
  vectorised pass. Measured side by side (bench/optimizers.py, `updates`): for momentum about
  the same as writing mu * buf + g straight into the buffers and one _foreach_add_ (a C.mul_
  and four kernels), so both take the one shape; for Adam well ahead of its six _foreach_ ops.
  What either still adds is mostly memory traffic: gradients, state and parameters, 12k floats
  each, touched once a step.
torch.optim on the same gradients spends more on its Python (param groups, state lookups, a
kernel per tensor and per stage) than the step's own ops do: in the trainer at batch 32 it ran
momentum at ~0.7x and Adam at ~0.5x plain SGD's steps/s.

The parameters live in four tensors (MLP.tensors): W2 and b2 are one, W2b, and an elementwise
update of W2b is the same as of W2 and b2 apart. `state()` and `load_state()` still speak
torch.optim's state_dict with W2 and b2 as params 3 and 4, so checkpoints (checkpoint.py) written
when these optimizers were torch.optim's load unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import torch
from torch import Tensor

from backend.core.model import MLP, SGDStep

OptimizerKind = Literal["sgd", "momentum", "adam"]
ADAM_BETAS = (0.9, 0.999)
ADAM_EPS = 1e-8


@dataclass(frozen=True)
class OptimizerSpec:
    kind: OptimizerKind = "sgd"
    momentum: float = 0.9  # for "momentum"


class Optimizer:
    """One training step: SGDStep's forward and backward, and this optimizer's update fused in."""

    def __init__(self, model: MLP, spec: OptimizerSpec) -> None:
        self.spec = spec
        self._params = model.tensors()  # C, W1, b1, W2b
        self._grads: list[Tensor] = []  # the minibatch's gradients, for momentum and Adam
        # state name -> one buffer per parameter tensor. They start at zero, which makes the
        # first step torch.optim's first step: buf = mu * 0 + g = g, Adam's moments likewise.
        self._slots: dict[str, list[Tensor]] = {}
        # Adam's step count t: a float32 tensor, as torch.optim keeps it and its kernel reads it
        # (exact up to 2^24 steps; by then the bias corrections are 1 to float precision anyway).
        # It is counted in Python and written through a NumPy view of the tensor's memory: a
        # torch op on a 0-d tensor (t.add_(1)) cost ~14 us a step in the loop, about a third of
        # what Adam adds to SGD at batch 32; the write costs ~0.4 us.
        self._t = torch.zeros(())
        self._t_view = self._t.numpy()  # shares the tensor's memory
        self._count = 0
        self._t_each = [self._t] * len(self._params)  # one step count for all four tensors
        update = None
        if spec.kind == "momentum" and spec.momentum > 0:  # momentum 0 is plain SGD, as in torch.optim
            self._grads = _zeros_like(self._params)
            self._slots = {"momentum_buffer": _zeros_like(self._params)}
            update = self._momentum
        elif spec.kind == "adam":
            self._grads = _zeros_like(self._params)
            self._slots = {"exp_avg": _zeros_like(self._params), "exp_avg_sq": _zeros_like(self._params)}
            update = self._adam
        # The trainer's hot loop calls `step` directly; `__call__` is the same for other callers.
        self.step = SGDStep(model, update=update)

    @property
    def torch_optim(self) -> None:
        """Always None: no optimizer goes through torch.optim any more. The trainer still asks
        (it picks `step` over `__call__` by it); kept until that line goes."""
        return None

    def __call__(self, X: Tensor, Y: Tensor, idx: Tensor, lr: float) -> Tensor:
        """Train on rows `idx`; return the minibatch loss before the update (0-d)."""
        return self.step(X, Y, idx, lr)

    def _momentum(self, step: SGDStep, lr: float) -> None:
        step.add_gradients(self._grads, 1.0, accumulate=False)  # g
        torch._fused_sgd_(  # buf = mu * buf + g; p -= lr * buf
            self._params,
            self._grads,
            self._slots["momentum_buffer"],
            weight_decay=0.0,
            momentum=self.spec.momentum,
            lr=lr,
            dampening=0.0,
            nesterov=False,
            maximize=False,
            is_first_step=False,  # zero buffers already make the first step buf = g
        )

    def _adam(self, step: SGDStep, lr: float) -> None:
        step.add_gradients(self._grads, 1.0, accumulate=False)  # g
        self._count += 1  # t counts this step, as torch.optim's does before its bias correction
        self._t_view[()] = self._count
        beta1, beta2 = ADAM_BETAS
        torch._fused_adam_(  # both moments, their bias correction and the parameters, in one pass
            self._params,
            self._grads,
            self._slots["exp_avg"],
            self._slots["exp_avg_sq"],
            [],  # max_exp_avg_sqs: no amsgrad
            self._t_each,
            lr=lr,
            beta1=beta1,
            beta2=beta2,
            weight_decay=0.0,
            eps=ADAM_EPS,
            amsgrad=False,
            maximize=False,
        )

    def state(self) -> dict[str, Any] | None:
        """A copy of the optimizer's state (momentum buffers, Adam's moments and step) as a
        torch.optim state_dict over (C, W1, b1, W2, b2), for checkpoints; None for plain SGD."""
        if not self._slots:
            return None
        per_param: dict[int, dict[str, Any]] = {i: {} for i in range(5)}
        for name, bufs in self._slots.items():
            for i, t in enumerate(_split_w2b(bufs)):
                per_param[i][name] = t.clone()
        if self.spec.kind == "adam":
            for values in per_param.values():
                values["step"] = self._t.clone()
        return {"state": per_param, "param_groups": [self._group()]}

    def load_state(self, state: dict[str, Any] | None) -> None:
        """Continue from `state()`'s copy (or a torch.optim state_dict of the same optimizer);
        None or an empty state starts afresh (zero buffers: the same as torch.optim's first step).
        Copies into the buffers: the caller's tensors are never shared."""
        for bufs in self._slots.values():
            torch._foreach_zero_(bufs)
        self._set_count(0)
        if state is None or not self._slots:
            return
        saved = state["state"]
        for name, bufs in self._slots.items():
            for i, t in enumerate(_split_w2b(bufs)):
                value = saved.get(i, {}).get(name)  # torch.optim leaves out what it never made
                if value is not None:
                    t.copy_(value)
        if self.spec.kind == "adam" and 0 in saved:
            self._set_count(int(float(saved[0]["step"])))

    def _set_count(self, t: int) -> None:
        self._count = t
        self._t_view[()] = t

    def _group(self) -> dict[str, Any]:
        """torch.optim's param_groups entry, for a reader of the checkpoint (lr is per step)."""
        if self.spec.kind == "momentum":
            return {"momentum": self.spec.momentum, "dampening": 0.0, "nesterov": False, "params": list(range(5))}
        return {"betas": ADAM_BETAS, "eps": ADAM_EPS, "weight_decay": 0.0, "amsgrad": False, "params": list(range(5))}


def _zeros_like(ts: list[Tensor]) -> list[Tensor]:
    return [torch.zeros_like(t) for t in ts]


def _split_w2b(bufs: list[Tensor]) -> list[Tensor]:
    """(C, W1, b1, W2b)-shaped buffers as views shaped like (C, W1, b1, W2, b2)."""
    C, W1, b1, W2b = bufs
    return [C, W1, b1, W2b[:-1], W2b[-1]]
