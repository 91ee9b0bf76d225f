"""Issue 23: the network's inside (backend/core/diagnostics.py) and the minibatch gradient against
the full one (backend/core/gradcos.py), each figure against an independent reference: autograd,
torch.optim, NumPy's histogram and makemore part 3's formulas, on the same probe."""

import json
import math
from typing import Any

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from backend.core import diagnostics as diag
from backend.core import gradcos
from backend.core.data import Dataset, Examples
from backend.core.evaluate import CountedExamples, evaluate
from backend.core.model import MLP, ModelShape
from backend.core.noise import batch_sq_norms
from backend.core.optim import Optimizer, OptimizerSpec
from tests.core.test_model import lecture_forward

SMALL = ModelShape(27, 3, 10, 40)


def np_hist(x: torch.Tensor, lo: float, hi: float) -> np.ndarray:
    """64 bins on [lo, hi], what lies outside in the end bins: NumPy's own binning, in float64."""
    return np.histogram(np.clip(x.double().numpy(), lo, hi), bins=64, range=(lo, hi))[0]


def close_counts(ours: list[int], ref: np.ndarray, slack: int = 2) -> None:
    """The same counts but for a value or two that the two float paths put on either side of an edge."""
    assert sum(ours) == int(ref.sum())
    assert int(np.abs(np.array(ours) - ref).sum()) <= slack


def trained(ex: Examples, steps: int = 300, seed: int = 0) -> MLP:
    m = MLP.scaled_init(ModelShape(27))
    opt, gen = Optimizer(m, OptimizerSpec("sgd")), torch.Generator().manual_seed(seed)
    for _ in range(steps):
        opt(ex.X, ex.Y, torch.randint(0, len(ex), (32,), generator=gen), 0.1)
    return m


# --- the probe -------------------------------------------------------------------------------


def test_probe_is_fixed_by_its_seed_and_touches_no_other_generator() -> None:
    train_gen = torch.Generator().manual_seed(1234)
    before, global_before = train_gen.get_state(), torch.get_rng_state()
    a = diag.probe_rows(180_000, 1234)
    assert torch.equal(train_gen.get_state(), before) and torch.equal(torch.get_rng_state(), global_before)
    assert torch.equal(a, diag.probe_rows(180_000, 1234))  # the same probe for the same run, always
    assert a.shape == (1024,) and len(set(a.tolist())) == 1024 and torch.equal(a, a.sort().values)
    assert int(a.min()) >= 0 and int(a.max()) < 180_000
    assert not torch.equal(a, diag.probe_rows(180_000, 1235))
    # not the run's first batch either: the probe's stream is not the training generator's
    first_batch = torch.randint(0, 180_000, (1024,), generator=torch.Generator().manual_seed(1234))
    assert len(set(a.tolist()) & set(first_batch.tolist())) < 30
    assert torch.equal(diag.probe_rows(500, 7), torch.arange(500))  # a small split: all of it


def _train_with_diagnostics(
    ex: Examples, opt: Optimizer, gen: torch.Generator, model: MLP, start: int, stop: int, every: int
) -> dict[int, dict[str, Any]]:
    """Steps start..stop-1 as the trainer takes them; if `every`, a diagnostic point and the
    gradient-direction figures at every `every`-th step (probe and draws from the run's seed)."""
    points = {}
    counted = CountedExamples.from_splits([ex], 27)
    probe = ex.X[diag.probe_rows(len(ex), 99, size=256)]
    for step in range(start, stop):
        idx = torch.randint(0, len(ex), (32,), generator=gen)
        due = every and step % every == 0
        before = diag.snapshot(model) if due else None
        opt.step(ex.X, ex.Y, idx, 0.05)
        if before is not None:
            point = diag.diagnostic_point(
                step, model, probe, diag.step_gradients(opt.step), diag.applied_updates(model, before)
            )
            full = gradcos.full_gradient(model, counted)
            point["cos"] = gradcos.cosines(model, ex, full, gradcos.draw_generator(99, step), (1, 8), draws=3)
            points[step] = point
    return points


@pytest.mark.parametrize("kind", ["sgd", "adam"])
def test_diagnostics_change_nothing_and_a_resumed_run_gives_the_same(small_dataset: Dataset, kind: str) -> None:
    ex = small_dataset.splits(3).train
    shape = ModelShape(27, 3, 10, 40)

    def fresh() -> tuple[MLP, Optimizer, torch.Generator]:
        m = MLP.scaled_init(shape, seed=5)
        return m, Optimizer(m, OptimizerSpec(kind)), torch.Generator().manual_seed(99)

    plain_m, plain_opt, plain_gen = fresh()
    _train_with_diagnostics(ex, plain_opt, plain_gen, plain_m, 0, 40, every=0)
    seen_m, seen_opt, seen_gen = fresh()
    points = _train_with_diagnostics(ex, seen_opt, seen_gen, seen_m, 0, 40, every=10)
    assert len(points) == 4
    for a, b in zip(plain_m.tensors(), seen_m.tensors(), strict=True):
        assert torch.equal(a, b)  # bit for bit
    assert torch.equal(plain_gen.get_state(), seen_gen.get_state())
    # stopped at step 20 and resumed from what a checkpoint keeps (weights, optimizer, generator)
    first_m, first_opt, first_gen = fresh()
    _train_with_diagnostics(ex, first_opt, first_gen, first_m, 0, 20, every=10)
    m = first_m.clone()
    opt = Optimizer(m, OptimizerSpec(kind))
    opt.load_state(first_opt.state())
    gen = torch.Generator().manual_seed(0)
    gen.set_state(first_gen.get_state())
    resumed = _train_with_diagnostics(ex, opt, gen, m, 20, 40, every=10)
    for a, b in zip(m.tensors(), seen_m.tensors(), strict=True):
        assert torch.equal(a, b)
    assert list(resumed) == [20, 30]
    for step in (20, 30):
        assert resumed[step] == points[step]


# --- the hidden layer ------------------------------------------------------------------------


def test_hidden_stats_against_the_lecture(small_dataset: Dataset) -> None:
    ex = small_dataset.splits(3).train
    m = MLP.lecture_init(SMALL)
    m.b1[:3] = torch.tensor([40.0, -40.0, 40.0])  # three units saturated whatever the row
    X = ex.X[diag.probe_rows(len(ex), 3)]
    got = diag.hidden_stats(m, X)
    C, W1, b1, _, _ = m.parameters()
    hpreact = C[X].view(X.shape[0], -1) @ W1 + b1  # the lecture's lines
    h = torch.tanh(hpreact)
    assert got["rows"] == 1024 and got["units"] == 40
    assert got["preact"]["mean"] == pytest.approx(float(hpreact.mean()), rel=1e-3)
    assert got["preact"]["std"] == pytest.approx(float(hpreact.std()), rel=1e-3)
    assert got["tanh"]["mean"] == pytest.approx(float(h.mean()), rel=1e-3, abs=1e-6)
    assert got["tanh"]["std"] == pytest.approx(float(h.std()), rel=1e-3)
    assert got["saturated"] == pytest.approx(float((h.abs() > 0.97).float().mean()), abs=1e-4)
    assert got["dead"] == int((h.abs() > 0.97).all(0).sum()) >= 3
    close_counts(got["tanh"]["hist"], np_hist(h, -1, 1))
    close_counts(got["preact"]["hist"], np_hist(hpreact, -5, 5))
    # the std of ~sqrt(31) puts a good share beyond +-5, counted in the end bins
    beyond = int((hpreact.abs() >= 5).sum())
    assert got["preact"]["hist"][0] + got["preact"]["hist"][-1] >= beyond > 0.2 * h.numel()


def test_the_lecture_init_saturates_and_the_scaled_one_much_less(small_dataset: Dataset) -> None:
    """REFERENCE §7: at step 0, ~0.70 of the hidden units saturated with plain randn (z has std
    ~sqrt(31)), ~0.19 with the scaled init (std ~5/3)."""
    ex = small_dataset.splits(3).train
    X = ex.X[diag.probe_rows(len(ex), 2147483647)]
    plain = diag.hidden_stats(MLP.lecture_init(ModelShape(27)), X)
    scaled = diag.hidden_stats(MLP.scaled_init(ModelShape(27)), X)
    assert plain["saturated"] > 0.5 and scaled["saturated"] < 0.3
    assert plain["preact"]["std"] == pytest.approx(31**0.5, rel=0.1)
    assert scaled["preact"]["std"] == pytest.approx(5 / 3, rel=0.1)
    # most of the plain init's tanh outputs sit in the two end bins, the scaled one's do not
    for stats, share in ((plain, 0.5), (scaled, 0.3)):
        hist = stats["tanh"]["hist"]
        assert ((hist[0] + hist[-1]) / sum(hist) > share) == (stats is plain)


def test_histogram_edges_and_non_numbers() -> None:
    x = torch.tensor([-math.inf, -9.0, -5.0, 0.0, 4.99, 5.0, 7.0, math.inf, math.nan])
    counts = diag.histogram(x, -5, 5)
    assert len(counts) == 64 and sum(counts) == 8  # NaN in no bin
    assert counts[0] == 3 and counts[32] == 1 and counts[63] == 4  # outside: the end bins


def test_a_broken_model_still_gives_json(small_dataset: Dataset) -> None:
    """A diverging run's weights may hold NaN or inf before the trainer notices: no exception, and
    figures that are not numbers go out as null."""
    ex = small_dataset.splits(3).train
    m = MLP.scaled_init(SMALL)
    m.W1[0, 0], m.W2[0, 0] = math.nan, math.inf
    grads = [torch.full_like(p, math.nan) for p in m.parameters()]
    point = diag.diagnostic_point(0, m, ex.X[:100], grads, grads)
    json.dumps(point, allow_nan=False)
    assert point["hidden"]["preact"]["mean"] is None and point["params"]["W1"]["std"] is None
    assert sum(point["hidden"]["tanh"]["hist"]) == 100 * 39  # the 100 rows of the 39 units still numbers


# --- the parameters: against autograd and torch.optim ---------------------------------------


REFERENCE_OPTIMIZERS = {
    "sgd": lambda ps, lr: torch.optim.SGD(ps, lr=lr),
    "momentum": lambda ps, lr: torch.optim.SGD(ps, lr=lr, momentum=0.9),
    "adam": lambda ps, lr: torch.optim.Adam(ps, lr=lr),
}


@pytest.mark.parametrize("kind", ["sgd", "momentum", "adam"])
def test_param_stats_against_autograd_and_torch_optim(small_dataset: Dataset, kind: str) -> None:
    ex = small_dataset.splits(3).train
    lr = 0.01 if kind == "adam" else 0.1
    m = MLP.scaled_init(SMALL, seed=11)
    ref = [p.clone().requires_grad_() for p in m.parameters()]
    ref_opt = REFERENCE_OPTIMIZERS[kind](ref, lr)
    opt = Optimizer(m, OptimizerSpec(kind))
    gen = torch.Generator().manual_seed(4)
    for _ in range(4):  # the last step is measured, with the optimizers' state built up
        idx = torch.randint(0, len(ex), (32,), generator=gen)
        before = diag.snapshot(m)
        opt(ex.X, ex.Y, idx, lr)
        ref_before = [p.detach().clone() for p in ref]
        ref_opt.zero_grad()
        F.cross_entropy(lecture_forward(ref, ex.X[idx]), ex.Y[idx]).backward()
        ref_opt.step()
    got = diag.param_stats(m, diag.step_gradients(opt.step), diag.applied_updates(m, before))
    assert list(got) == ["C", "W1", "b1", "W2", "b2"]
    for name, p, p0 in zip(got, ref, ref_before, strict=True):
        g, data = p.grad, p.detach()
        assert g is not None
        # the lecture's update:data is log10(std(lr * grad) / std(data)) for SGD; the others'
        # update is what torch.optim's step did
        update = -lr * g if kind == "sgd" else data - p0
        s = got[name]
        assert s["std"] == pytest.approx(float(data.std()), rel=1e-3)
        assert s["norm"] == pytest.approx(float(data.norm()), rel=1e-3)
        assert s["grad_mean"] == pytest.approx(float(g.mean()), rel=1e-2, abs=1e-7)
        assert s["grad_std"] == pytest.approx(float(g.std()), rel=1e-3)
        assert s["grad_norm"] == pytest.approx(float(g.norm()), rel=1e-3)
        assert s["grad_data"] == pytest.approx(float(g.std() / data.std()), rel=1e-3)
        assert s["update_data"] == pytest.approx(float((update.std() / p0.std()).log10()), abs=1e-3)
        nonzero = g.abs()[g != 0]
        assert s["grad_zeros"] == g.numel() - nonzero.numel()
        close_counts(s["grad_hist"], np_hist(nonzero.log10(), -10, 0))
    assert got["C"]["grad_zeros"] > 0  # rows of characters the batch never used


def test_update_data_falls_by_one_when_lr_falls_tenfold(small_dataset: Dataset) -> None:
    ex = small_dataset.splits(3).train
    idx = torch.randint(0, len(ex), (32,), generator=torch.Generator().manual_seed(8))
    points = []
    for lr in (0.1, 0.01):
        m = MLP.lecture_init(SMALL, seed=3)
        for p in m.parameters():
            p.mul_(0.2)
        opt = Optimizer(m, OptimizerSpec("sgd"))
        before = diag.snapshot(m)
        opt(ex.X, ex.Y, idx, lr)
        grads = diag.step_gradients(opt.step)
        points.append((grads, diag.param_stats(m, grads, diag.applied_updates(m, before))))
    (g_a, a), (g_b, b) = points
    for x, y in zip(g_a, g_b, strict=True):
        assert torch.equal(x, y)  # the same gradients
    for name in a:
        assert a[name]["update_data"] - b[name]["update_data"] == pytest.approx(1.0, abs=2e-4)


def test_a_point_is_json_and_at_most_8_kb(small_dataset: Dataset) -> None:
    for shape in (ModelShape(27), ModelShape(27, 16, 64, 1024)):  # its size does not grow with the model
        m = MLP.scaled_init(shape)  # b2 is 0 before the step: its update:data is not a number
        ex_b = small_dataset.splits(shape.block_size).train
        opt = Optimizer(m, OptimizerSpec("adam"))
        before = diag.snapshot(m)
        opt(ex_b.X, ex_b.Y, torch.arange(32), 0.01)
        point = diag.diagnostic_point(
            123_456,
            m,
            ex_b.X[diag.probe_rows(len(ex_b), 1)],
            diag.step_gradients(opt.step),
            diag.applied_updates(m, before),
        )
        text = json.dumps(point, allow_nan=False)  # no NaN or Infinity: they are not JSON
        assert len(text.encode()) <= 8192, len(text)
        assert json.loads(text) == point
        assert point["params"]["b2"]["update_data"] is None and point["params"]["W1"]["update_data"] is not None


# --- the minibatch gradient against the full one ---------------------------------------------


def _autograd_gradient(m: MLP, X: torch.Tensor, Y: torch.Tensor) -> torch.Tensor:
    ref = [p.clone().requires_grad_() for p in m.parameters()]
    F.cross_entropy(lecture_forward(ref, X), Y).backward()
    return torch.cat([p.grad.reshape(-1) for p in ref if p.grad is not None])


def test_full_gradient_against_autograd(small_dataset: Dataset) -> None:
    splits = small_dataset.splits(3)
    m = MLP.lecture_init(SMALL)
    for p in m.parameters():
        p.mul_(0.3)
    data = CountedExamples.from_splits([splits.train, splits.dev], 27, chunk=500)  # several chunks
    calls = []
    G = gradcos.flat(gradcos.full_gradient(m, data, between=lambda: calls.append(1)))
    assert len(calls) == len(data.splits[0].chunk_ends) - 1 > 0
    expected = _autograd_gradient(m, splits.train.X, splits.train.Y)
    assert torch.allclose(G, expected, rtol=1e-4, atol=1e-6)
    assert float(G.double().square().sum()) == pytest.approx(evaluate(m, data, gradient=True).grad_sq_norm, rel=1e-6)


def test_cosines_against_autograd_on_the_same_draws(small_dataset: Dataset) -> None:
    ex = small_dataset.splits(3).train
    m = trained(ex, steps=100)
    G = _autograd_gradient(m, ex.X, ex.Y)
    gen = torch.Generator().manual_seed(21)
    replay = torch.Generator().manual_seed(21)
    # at most 128 rows a size, but 4 draws at least: 64 rows get 4 draws (256 rows), the others 5
    got = gradcos.cosines(m, ex, G, gen, batch_sizes=(4, 1, 64), current=8, draws=5, max_rows=128)
    assert got["batch_sizes"] == [1, 4, 8, 64] and got["draws"] == [5, 5, 5, 4]
    for i, B in enumerate(got["batch_sizes"]):
        idx = torch.randint(0, len(ex), (got["draws"][i], B), generator=replay)
        cos = torch.stack([F.cosine_similarity(_autograd_gradient(m, ex.X[r], ex.Y[r]), G, dim=0) for r in idx])
        assert got["mean"][i] == pytest.approx(float(cos.mean()), abs=1e-4)
        assert got["std"][i] == pytest.approx(float(cos.std()), abs=1e-4)
        assert got["min"][i] == pytest.approx(float(cos.min()), abs=1e-4)
        assert got["max"][i] == pytest.approx(float(cos.max()), abs=1e-4)
    assert torch.equal(gen.get_state(), replay.get_state())


def test_cosine_rises_with_batch_size_as_the_noise_scale_predicts(small_dataset: Dataset) -> None:
    """cos^2(g_B, G) ~ B / (B + B_noise), with B_noise = tr(Sigma) / |G|^2 computed exactly from
    every example's own gradient (the population the batches are drawn from). It holds from a few
    hundred rows on; below, the mean cosine runs under it (measured at B 16: 0.15 for 0.20), as a
    few examples with large gradients make up most of a small batch's."""
    splits = small_dataset.splits(3)
    ex = splits.train
    m = trained(ex)
    full = gradcos.full_gradient(m, CountedExamples.from_splits([ex, splits.dev], 27))
    gen = torch.Generator().manual_seed(5)
    got = gradcos.cosines(m, ex, full, gen, current=32, draws=32, max_rows=32 * 1024)
    mean = dict(zip(got["batch_sizes"], got["mean"], strict=True))
    assert got["batch_sizes"] == [1, 4, 16, 32, 64, 256, 1024]
    assert mean[32] > 0.1  # random directions in 11,897 dimensions: ~0.01
    assert mean[1] < mean[16] < mean[256] < mean[1024]
    g2 = float(gradcos.flat(full).double().square().sum())
    per_example = torch.cat(
        [
            batch_sq_norms(m, ex.X, ex.Y, torch.arange(i, min(i + 4096, len(ex))).view(-1, 1))
            for i in range(0, len(ex), 4096)
        ]
    )
    b_noise = (float(per_example.double().mean()) - g2) / g2
    for B in (256, 1024):
        predicted = gradcos.predicted_cos(B, b_noise)
        assert predicted is not None and mean[B] == pytest.approx(predicted, abs=0.05)


def test_predicted_cos() -> None:
    assert gradcos.predicted_cos(32, 96) == 0.5
    assert gradcos.predicted_cos(32, 0) == 1.0 and gradcos.predicted_cos(32, -5) == 1.0
    assert gradcos.predicted_cos(32, math.inf) == 0.0 and gradcos.predicted_cos(32, math.nan) is None


def test_draws_depend_on_seed_and_step_only() -> None:
    def draw(seed: int, step: int) -> torch.Tensor:
        return torch.randint(0, 1000, (8,), generator=gradcos.draw_generator(seed, step))

    assert torch.equal(draw(1, 500), draw(1, 500))
    assert not torch.equal(draw(1, 500), draw(1, 501)) and not torch.equal(draw(1, 500), draw(2, 500))
