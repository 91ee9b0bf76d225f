"""Inside the network: makemore part 3's diagnostics, as plain numbers (issue 23).

- The hidden layer on a fixed probe of training rows: pre-activation z = emb @ W1 + b1 and
  h = tanh(z), their mean and std, the share of saturated units (|h| > 0.97, the lecture's
  threshold), the units saturated on every probe row ("dead": their gradient is ~0 whatever the
  row), and 64-bin histograms: h on [-1, 1]; z on [-5, 5] with what falls outside counted in the
  end bins (the lecture's plain randn init gives z a std of ~sqrt(31), so its end bins are full).
- Each parameter (C, W1, b1, W2, b2): its std and norm; its gradient's mean, std and norm;
  grad:data = std(grad) / std(param); update:data = log10(std(update) / std(param)) with the
  lecture's guide at -3, against the weights the step was applied to (the lecture divides by the
  weights after it: ~0.1% apart at -3); a 64-bin histogram of log10|grad| on [-10, 0] (the end
  bins take what falls outside; exact zeros, e.g. the rows of C no character of the batch used,
  are counted apart).

The probe is chosen once per run from its own generator, never the training one, so that taking
diagnostics changes nothing a run does: a resumed run stays bit for bit the same.

The update is the change the optimizer step made to the weights, `after - before` around the
step (`snapshot` then `applied_updates`), for every optimizer alike. That is exact: two floats
within a factor 2 of each other subtract without rounding (Sterbenz), so for every weight the step
moved by less than half its size the difference is the applied change itself, the step's own
rounding included (lr * g in the lecture's formula is not what lands on a weight when the step is
below its rounding). It is also cheap (a copy of the 4 parameter tensors before the step, ~12k
floats for the lecture's model, and one subtraction), and needs nothing from an optimizer's
private state (momentum's buffer times lr; Adam's bias-corrected moments).

Every figure goes out as a plain float (4 significant digits), int or list, and None where it is
not finite (a zero-std parameter such as the scaled init's b2 at step 0): JSON-ready, a few KB.
"""

from __future__ import annotations

import functools
import math
from typing import Any

import torch
from torch import Tensor

from backend.core.model import MLP, SGDStep

PROBE_SIZE = 1024
# Mixed into the run's seed: the probe's stream is not the training generator's (seeded with the
# run's seed itself), so the probe's rows are not the first batches' rows.
PROBE_SALT = 0x6A09E667F3BCC908
SATURATED = 0.97  # |tanh| above this: the unit passes almost no gradient (1 - h^2 < 0.06)
BINS = 64
TANH_RANGE = (-1.0, 1.0)
PREACT_RANGE = (-5.0, 5.0)
LOG_GRAD_RANGE = (-10.0, 0.0)
NAMES = ("C", "W1", "b1", "W2", "b2")
_MINUS_ONE = torch.tensor(-1.0)


def probe_rows(n_train: int, seed: int, size: int = PROBE_SIZE) -> Tensor:
    """`size` distinct training rows (all of them if fewer), sorted: a pure function of
    (n_train, seed, size) drawn from a generator of its own."""
    gen = torch.Generator().manual_seed((seed + PROBE_SALT) % 2**63)
    return torch.randperm(n_train, generator=gen)[: min(size, n_train)].sort().values


def num(x: float) -> float | None:
    """A figure for JSON: 4 significant digits, None if not finite."""
    return float(f"{x:.4g}") if math.isfinite(x) else None


def num_log(x: float) -> float | None:
    """A log10 figure for JSON: 4 decimals (0.01% in the ratio), None if not finite."""
    return round(x, 4) if math.isfinite(x) else None


def histogram(x: Tensor, lo: float, hi: float, bins: int = BINS, scratch: Scratch | None = None) -> list[int]:
    """Counts of x in `bins` equal bins on [lo, hi] (the last one closed, as torch.histc's);
    values outside land in the end bins, NaN in none. Through bincount on int32 bin numbers:
    ~5x faster than torch.histc here (the lecture's 1,024 x 200 pre-activations)."""
    s = scratch or Scratch()
    t = torch.sub(x.reshape(-1), lo, out=s.get("bin", x.numel(), x.dtype))
    t.mul_(bins / (hi - lo)).clamp_(0, bins - 1).nan_to_num_(-1.0)
    i = s.get("bin_i", x.numel(), torch.int32)
    i.copy_(t).add_(1)  # float to int truncates: bin + 1, NaN's -1 + 1 = 0, counted apart and left out
    return [int(c) for c in torch.bincount(i, minlength=bins + 1)[1:].tolist()]


class Scratch:
    """Work tensors kept from one point to the next: the probe's hidden layer needs a few 1,024 x
    200 tensors (~800 KB each), big enough that the allocator maps each one fresh from the system
    and unmaps it after; kept, a point allocates nothing that big (the trainer's Diagnoser keeps
    one: ~3.4 MB for the lecture's model)."""

    def __init__(self) -> None:
        self._t: dict[tuple[str, torch.dtype], Tensor] = {}

    def get(self, name: str, n: int, dtype: torch.dtype = torch.float32) -> Tensor:
        """A flat tensor of `n` elements (contents undefined)."""
        t = self._t.get((name, dtype))
        if t is None or t.numel() != n:
            t = self._t[(name, dtype)] = torch.empty(n, dtype=dtype)
        return t


def _moments(x: Tensor, scratch: Scratch | None = None) -> tuple[float, float]:
    """(mean, std), std with Bessel's correction as the lecture's `.std()`. Two passes: the sum
    (torch sums float32 in cascade: ~1e-7 relative) and the centred values' dot product;
    torch.std_mean took ~1.1 ms on the lecture's 1,024 x 200 pre-activations here, this ~0.15 ms."""
    n = x.numel()
    mean = float(x.sum()) / n
    if n < 2:
        return mean, math.nan
    centred = torch.sub(x.reshape(-1), mean, out=(scratch or Scratch()).get("centred", n))
    return mean, math.sqrt(float(torch.dot(centred, centred)) / (n - 1))


def hidden_stats(model: MLP, X_probe: Tensor, scratch: Scratch | None = None) -> dict[str, Any]:
    """The hidden layer's pre-activations and outputs on the probe's contexts (N, block_size).
    z is kept doubled, as the training step computes it (model.py's tanh): 2z is exact, so its
    mean and std halved and its histogram on [-10, 10] are z's own."""
    s = scratch or Scratch()
    N, H = X_probe.shape[0], model.shape.n_hidden
    with torch.no_grad():
        emb = model.C[X_probe].view(N, -1)
        z2 = torch.addmm(model.b1, emb, model.W1, beta=2, alpha=2, out=s.get("z2", N * H).view(N, H))
        z2_mean, z2_std = _moments(z2, s)
        z_hist = histogram(z2, 2 * PREACT_RANGE[0], 2 * PREACT_RANGE[1], scratch=s)
        h = torch.sigmoid(z2, out=s.get("h", N * H).view(N, H))
        torch.add(_MINUS_ONE, h, alpha=2, out=h)  # tanh(z) = 2 sigmoid(2z) - 1
        h_mean, h_std = _moments(h, s)
        h_hist = histogram(h, *TANH_RANGE, scratch=s)
        a = torch.abs(h, out=z2)  # (z2 is done with)
        saturated = int(torch.gt(a, SATURATED, out=s.get("sat", N * H, torch.bool).view(N, H)).sum())
        return {
            "rows": N,
            "units": H,
            "preact": {"mean": num(z2_mean / 2), "std": num(z2_std / 2), "hist": z_hist},
            "tanh": {"mean": num(h_mean), "std": num(h_std), "hist": h_hist},
            "saturated": num(saturated / (N * H)),
            "dead": int((a.amin(0) > SATURATED).sum()),  # (NaN propagates through amin: not dead)
        }


def step_gradients(step: SGDStep) -> list[Tensor]:
    """The minibatch gradients (C, W1, b1, W2, b2) of the step `step` just took: its buffers
    still hold that step's forward and backward, which `add_gradients` reads (never the weights,
    which the step has changed since). Valid until its next call."""
    C, W1, b1, W2b = (torch.empty_like(t) for t in step.model.tensors())
    step.add_gradients([C, W1, b1, W2b], 1.0, accumulate=False)
    return [C, W1, b1, W2b[:-1], W2b[-1]]


def snapshot(model: MLP) -> list[Tensor]:
    """A copy of the weights, to take just before the step whose update is wanted."""
    return [t.clone() for t in model.tensors()]


def applied_updates(model: MLP, before: list[Tensor]) -> list[Tensor]:
    """What the step since `snapshot` changed, per parameter (C, W1, b1, W2, b2)."""
    C, W1, b1, W2b = (after - b for after, b in zip(model.tensors(), before, strict=True))
    return [C, W1, b1, W2b[:-1], W2b[-1]]


def _ratio(a: float, b: float) -> float:
    return a / b if b > 0 else math.nan


def _log_ratio(a: float, b: float) -> float:
    return math.log10(a / b) if a > 0 and b > 0 else math.nan


@functools.lru_cache(maxsize=8)
def _bin_offsets(sizes: tuple[int, ...]) -> Tensor:
    """Per value of the parameters one after the other (cut into `sizes`): its parameter's
    number times BINS + 1, which puts each parameter's histogram in a range of its own."""
    return torch.repeat_interleave(torch.arange(len(sizes)) * (BINS + 1), torch.tensor(sizes))


def param_stats(model: MLP, grads: list[Tensor], updates: list[Tensor]) -> dict[str, dict[str, Any]]:
    """Per parameter (C, W1, b1, W2, b2), given its gradient and the update the optimizer applied.
    The parameters, gradients, updates and weights before the update go as the rows of one
    float64 matrix (4 x ~12k values for the lecture's model), summed a parameter at a time for
    all four rows at once, and the five gradient histograms are one bincount: ~40 small ops in
    all, not ~30 a parameter (at this size an op's overhead, not its arithmetic, is what costs)."""
    params = model.parameters()
    sizes = tuple(p.numel() for p in params)
    k = len(sizes)
    with torch.no_grad():
        P, G, U = (torch.cat([t.reshape(-1) for t in ts]) for ts in (params, grads, updates))
        # the update against the weights it was applied to, P - U (exact: see the module's
        # docstring): then the ratio scales with lr alone, as lr * g / p does
        M = torch.stack([P, G, U, P - U]).double()  # (4, N)
        n = torch.tensor(sizes, dtype=torch.float64)

        def sums(x: Tensor) -> Tensor:  # (rows, k): each row's sum over each parameter's values
            return torch.stack([part.sum(-1) for part in torch.split(x, list(sizes), dim=-1)], dim=-1)

        total, squares = sums(M), sums(M.square())
        mean = total / n
        # float64 sums: the squares' cancellation costs nothing at 4 significant digits
        std = ((squares - total * mean) / (n - 1)).clamp_(min=0).sqrt_()
        norm = squares.sqrt()
        zeros = sums(G == 0)
        # log10|g| in 64 bins per parameter, their numbers offset by the parameter's: one bincount.
        # Exact zeros give -inf, the first bin, taken out of it below; NaN goes to the dropped bin -1
        lo, hi = LOG_GRAD_RANGE
        t = G.abs().log10_().sub_(lo).mul_(BINS / (hi - lo)).clamp_(0, BINS - 1).nan_to_num_(-1.0)
        bins = t.to(torch.int64).add_(1).add_(_bin_offsets(sizes))
        hists = torch.bincount(bins, minlength=k * (BINS + 1)).view(k, BINS + 1)[:, 1:]
    (p_std, g_std, u_std, before_std), (_, g_mean, _, _) = std.tolist(), mean.tolist()
    (p_norm, g_norm, _, _), n_zeros = norm.tolist(), [int(z) for z in zeros.tolist()]
    out: dict[str, dict[str, Any]] = {}
    for i, (name, hist) in enumerate(zip(NAMES, hists.tolist(), strict=True)):
        hist[0] -= n_zeros[i]
        out[name] = {
            "std": num(p_std[i]),
            "norm": num(p_norm[i]),
            "grad_mean": num(g_mean[i]),
            "grad_std": num(g_std[i]),
            "grad_norm": num(g_norm[i]),
            "grad_data": num(_ratio(g_std[i], p_std[i])),
            "update_data": num_log(_log_ratio(u_std[i], before_std[i])),
            "grad_zeros": n_zeros[i],
            "grad_hist": hist,
        }
    return out


def diagnostic_point(
    step: int, model: MLP, X_probe: Tensor, grads: list[Tensor], updates: list[Tensor], scratch: Scratch | None = None
) -> dict[str, Any]:
    """One point of the live view: the hidden layer on the probe, the parameters, and the
    histograms' ranges (once, not per histogram)."""
    return {
        "step": step,
        "ranges": {"preact": [*PREACT_RANGE], "tanh": [*TANH_RANGE], "log10_grad": [*LOG_GRAD_RANGE], "bins": BINS},
        "hidden": hidden_stats(model, X_probe, scratch),
        "params": param_stats(model, grads, updates),
    }
