"""Issue 11, item 5: momentum and Adam train at >= 0.8x plain SGD's steps/s at batch 32.

- `trainer`: the server's Trainer on its own thread, as a worker runs it (default run settings,
  evaluations every 1,000 steps, checkpoints, no server or viewer), at batch 32 and 512, for
  plain SGD and for momentum and Adam two ways: "fused" (backend/core/optim.py, the app) and
  "torch.optim" (TorchOptimizer below: the code before, SGDStep's gradients handed to
  torch.optim). Variants take turns, round after round; each round's momentum/SGD and Adam/SGD
  ratios come from that round's own SGD figure.
- `updates`: in-process at batch 32, one thread, the update rules the fused path chose between:
  torch's fused kernels (the app) against writing mu * buf + g straight into the momentum
  buffers and one _foreach_add_, and against Adam as six _foreach_ ops.

Each figure comes twice: steps per second of wall time (the target's measure) and steps per
second of this process's CPU time, which other tenants of a shared machine disturb far less
(at batch 512 it also counts OpenMP workers spinning). In a process of its own, each variant
on a thread that ends with it (see throughput.levers).

    python -m bench.optimizers '[[32, 512], 2, 8]'    # batches, seconds per window, rounds
"""

from __future__ import annotations

import copy
import json
import math
import os
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

import torch

from backend.config import DEFAULT_DATA
from backend.core.data import Dataset, Examples, Splits
from backend.core.model import MLP, ModelShape, SGDStep
from backend.core.optim import ADAM_BETAS, ADAM_EPS, Optimizer, OptimizerKind, OptimizerSpec
from backend.training.protocol import Status
from backend.training.spec import RunSpec
from backend.training.trainer import Trainer
from bench.stats import Figure
from bench.throughput import _on_fresh_thread
from harness.server import ROOT

MIN_STEPS = 20  # a window with fewer steps (an evaluation in it, a loaded machine) says little
LR = {"sgd": 0.1, "momentum": 0.01, "adam": 0.001}  # rates that train, from the scaled init


class TorchOptimizer:
    """The optimizer as it was before the fused path: SGDStep writes the gradients of the mean
    loss into buffers attached to the parameters as .grad, then torch.optim (foreach) applies
    its update. Plain SGD was fused already. Same interface as backend.core.optim.Optimizer."""

    def __init__(self, model: MLP, spec: OptimizerSpec) -> None:
        self.spec = spec
        self._grads = [torch.zeros_like(t) for t in model.tensors()]
        gC, gW1, gb1, gW2b = self._grads
        for p, g in zip(model.parameters(), [gC, gW1, gb1, gW2b[:-1], gW2b[-1]], strict=True):
            p.grad = g
        params = model.parameters()
        self.torch_optim: torch.optim.Optimizer | None = None
        if spec.kind == "momentum":
            self.torch_optim = torch.optim.SGD(params, lr=0.1, momentum=spec.momentum, foreach=True)
        elif spec.kind == "adam":
            self.torch_optim = torch.optim.Adam(params, lr=1e-3, foreach=True)
        self.step = SGDStep(model, update=None if self.torch_optim is None else self._update)

    def _update(self, step: SGDStep, lr: float) -> None:
        assert self.torch_optim is not None
        step.add_gradients(self._grads, 1.0, accumulate=False)
        for group in self.torch_optim.param_groups:
            group["lr"] = lr
        self.torch_optim.step()

    def __call__(self, X: torch.Tensor, Y: torch.Tensor, idx: torch.Tensor, lr: float) -> torch.Tensor:
        return self.step(X, Y, idx, lr)

    def state(self) -> dict[str, Any] | None:
        return None if self.torch_optim is None else copy.deepcopy(self.torch_optim.state_dict())

    def load_state(self, state: dict[str, Any] | None) -> None:
        if self.torch_optim is not None and state is not None:
            self.torch_optim.load_state_dict(copy.deepcopy(state))


# ---- in the trainer --------------------------------------------------------------------------------
Rate = tuple[float, float]  # (steps per wall second, steps per CPU second)


def trainer_rate(splits: Splits, kind: OptimizerKind, path: str, batch: int, seconds: float) -> Rate:
    """A Trainer thread running `kind` the `path` way ("fused" or "torch.optim")."""
    spec = RunSpec(optimizer=kind, lr=LR[kind], batch_size=batch, init="scaled", max_steps=10**8)
    chars = tuple(".abcdefghijklmnopqrstuvwxyz")
    t = Trainer(spec, splits, chars, lambda e: None, max_threads=os.cpu_count() or 1)
    if path == "torch.optim":
        t._opt = TorchOptimizer(t.model, spec.optimizer_spec())  # type: ignore[assignment]
    t.start(running=True)
    deadline = time.monotonic() + 120
    while t.step < 100 and time.monotonic() < deadline:  # warm-up: the step-0 evaluation, first steps
        time.sleep(0.01)  # poll interval
    s0, t0, c0 = t.step, time.perf_counter(), time.process_time()
    time.sleep(seconds)  # the measurement window, stretched until it holds a few steps
    while t.step - s0 < MIN_STEPS and time.perf_counter() - t0 < 120:
        time.sleep(0.01)  # poll interval
    steps, wall, cpu = t.step - s0, time.perf_counter() - t0, time.process_time() - c0
    status = t.status
    t.stop()
    if status is not Status.RUNNING:
        raise RuntimeError(f"{kind} ({path}) stopped training: {t.detail}")
    return steps / wall, steps / cpu


def _table(title: str, rates: dict[str, list[Rate]]) -> dict[str, Any]:
    """Medians, ranges and per-round ratios to the first variant (SGD), printed and returned."""
    base = next(iter(rates.values()))
    print(f"  {title}: steps/s, wall | CPU time", file=sys.stderr, flush=True)
    out: dict[str, Any] = {}
    for name, xs in rates.items():
        entry: dict[str, Any] = {}
        line = f"    {name:<44}"
        for i, clock in enumerate(("wall", "cpu")):
            fig = Figure([x[i] for x in xs])
            ratio = Figure([x[i] / b[i] for x, b in zip(xs, base, strict=True)])
            entry[f"{clock}_steps_per_s"], entry[f"{clock}_ratio_to_sgd"] = fig.as_dict(), ratio.as_dict()
            line += f" {fig.fmt(0):>22} {ratio.fmt(2)}x SGD |"
        print(line.rstrip(" |"), file=sys.stderr, flush=True)
        out[name] = entry
    return out


TRAINER_VARIANTS: list[tuple[OptimizerKind, str]] = [
    ("sgd", "fused"),
    ("momentum", "torch.optim"),
    ("momentum", "fused"),
    ("adam", "torch.optim"),
    ("adam", "fused"),
]


def _trainer(splits: Splits, batches: list[int], seconds: float, rounds: int) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for batch in batches:
        rates: dict[str, list[Rate]] = {f"{k} ({p})": [] for k, p in TRAINER_VARIANTS}
        for _ in range(rounds):  # A B C D E A B C D E ...
            for kind, path in TRAINER_VARIANTS:
                rates[f"{kind} ({path})"].append(_on_fresh_thread(trainer_rate, splits, kind, path, batch, seconds))
        out[str(batch)] = _table(f"trainer, batch {batch}", rates)
    return out


# ---- update rules, in-process ----------------------------------------------------------------------
def _zeros(model: MLP) -> list[torch.Tensor]:
    return [torch.zeros_like(t) for t in model.tensors()]


def _momentum_foreach(model: MLP, mu: float = 0.9) -> Callable[[SGDStep, float], None]:
    """buf = mu * buf + g straight from the gradient products (no gradient buffers; C needs a
    mul_ of its own), then p -= lr * buf for all four tensors in one _foreach_add_."""
    params, bufs = model.tensors(), _zeros(model)

    def update(step: SGDStep, lr: float) -> None:
        C, W1, b1, W2b = bufs
        a = 1.0 / step._batch
        W2b.addmm_(step._h1_t, step.logits, beta=mu, alpha=a)
        W1.addmm_(step._emb_t, step.dz, beta=mu, alpha=a)
        b1.addmv_(step._dz_t, step._ones, beta=mu, alpha=a)
        C.mul_(mu).index_add_(0, step._X_flat, step._demb_rows, alpha=a)
        torch._foreach_add_(params, bufs, alpha=-lr)

    return update


def _adam_foreach(model: MLP) -> Callable[[SGDStep, float], None]:
    """torch.optim.Adam's foreach arithmetic with the bias corrections folded into the step size
    and eps: six _foreach_ ops on the gradient buffers."""
    params, grads, m, v = model.tensors(), _zeros(model), _zeros(model), _zeros(model)
    beta1, beta2 = ADAM_BETAS
    t = [0]

    def update(step: SGDStep, lr: float) -> None:
        step.add_gradients(grads, 1.0, accumulate=False)
        t[0] += 1
        bc1, bc2_sqrt = 1 - beta1 ** t[0], math.sqrt(1 - beta2 ** t[0])
        torch._foreach_lerp_(m, grads, 1 - beta1)
        torch._foreach_mul_(v, beta2)
        torch._foreach_addcmul_(v, grads, grads, value=1 - beta2)
        denom = torch._foreach_sqrt(v)
        torch._foreach_add_(denom, ADAM_EPS * bc2_sqrt)
        torch._foreach_addcdiv_(params, m, denom, value=-lr * bc2_sqrt / bc1)

    return update


def _fused(kind: OptimizerKind) -> Callable[[MLP], Callable[..., torch.Tensor]]:
    return lambda model: Optimizer(model, OptimizerSpec(kind))


UPDATE_VARIANTS: dict[str, Callable[[MLP], Callable[..., torch.Tensor]]] = {
    "sgd (fused into the products)": _fused("sgd"),
    "momentum: torch._fused_sgd_ (the app)": _fused("momentum"),
    "momentum: into the buffers + _foreach_add_": lambda m: SGDStep(m, update=_momentum_foreach(m)),
    "adam: torch._fused_adam_ (the app)": _fused("adam"),
    "adam: six _foreach_ ops": lambda m: SGDStep(m, update=_adam_foreach(m)),
}


def update_rate(ex: Examples, make: Callable[[MLP], Callable[..., torch.Tensor]], seconds: float) -> Rate:
    torch.set_num_threads(1)
    step = make(MLP.scaled_init(ModelShape(27)))
    idx = torch.empty(32, dtype=torch.long)
    g = torch.Generator().manual_seed(0)

    def one() -> None:
        torch.randint(0, len(ex), (32,), generator=g, out=idx)
        step(ex.X, ex.Y, idx, 1e-3).item()

    for _ in range(20):  # warm-up
        one()
    i, t0, c0 = 0, time.perf_counter(), time.thread_time()
    while True:
        one()
        i += 1
        if i % 16 == 0 and time.perf_counter() - t0 >= seconds:
            return i / (time.perf_counter() - t0), i / (time.thread_time() - c0)


def _updates(ex: Examples, seconds: float, rounds: int) -> dict[str, Any]:
    rates: dict[str, list[Rate]] = {k: [] for k in UPDATE_VARIANTS}
    for _ in range(rounds):
        for name, make in UPDATE_VARIANTS.items():
            rates[name].append(_on_fresh_thread(update_rate, ex, make, seconds))
    return _table("update rules, in-process, batch 32, 1 thread", rates)


def _main(batches: list[int], seconds: float, rounds: int) -> dict[str, Any]:
    splits = _on_fresh_thread(lambda: Dataset.from_file(DEFAULT_DATA).splits(3))
    return {
        "trainer": _trainer(splits, batches, seconds, rounds),
        "updates": _updates(splits.train, seconds / 2, rounds),
        "seconds": seconds,
        "rounds": rounds,
    }


def optimizers(batches: list[int], seconds: float, rounds: int) -> dict[str, Any]:
    """The whole part, in a process of its own; the table goes to stderr as it is measured."""
    out = subprocess.run(
        [sys.executable, "-m", "bench.optimizers", json.dumps([batches, seconds, rounds])],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
        check=True,
    )
    result: dict[str, Any] = json.loads(out.stdout)
    return result


if __name__ == "__main__":
    print(json.dumps(_main(*json.loads(sys.argv[1]) if len(sys.argv) > 1 else ([32, 512], 4, 5))))
