"""The makemore MLP (Bengio et al. 2003, as in "makemore part 2") and its hand-written SGD step.

    emb    = C[X]                      (B, block_size, n_embd) -> (B, block_size * n_embd)
    h      = tanh(emb @ W1 + b1)       (B, n_hidden)
    logits = h @ W2 + b2               (B, vocab_size)
    loss   = cross_entropy(logits, Y)

The parameters are plain tensors, not an nn.Module: training never builds an autograd graph.
`SGDStep` does forward, backward and update by hand, in about twenty preallocated tensor ops,
because at batch 32 PyTorch's per-op overhead, not arithmetic, is what a step costs
(REFERENCE §2). tests/core/test_model.py checks it against autograd.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

LECTURE_SEED = 2147483647
_MINUS_ONE = torch.tensor(-1.0)


def tanh(x: Tensor) -> Tensor:
    """tanh(x) = 2 * sigmoid(2x) - 1. torch.tanh takes a slow scalar path on this CPU build
    (~4 ns per element against ~1.3 for sigmoid); the result agrees to float rounding (~1e-7)."""
    return torch.sigmoid(x * 2).mul_(2).sub_(1)


@dataclass(frozen=True)
class ModelShape:
    vocab_size: int
    block_size: int = 3
    n_embd: int = 10
    n_hidden: int = 200

    @property
    def n_in(self) -> int:
        return self.block_size * self.n_embd

    @property
    def n_params(self) -> int:
        v, e, h = self.vocab_size, self.n_embd, self.n_hidden
        return v * e + self.n_in * h + h + h * v + v


class MLP:
    """Parameters and the plain forward pass (used for evaluation and sampling)."""

    def __init__(self, shape: ModelShape, C: Tensor, W1: Tensor, b1: Tensor, W2: Tensor, b2: Tensor):
        self.shape = shape
        self.C, self.W1, self.b1 = C, W1, b1
        # The output layer lives in one tensor, W2 on top of b2: with a column of ones after h,
        # one matrix product gives the logits, and one updates both (SGDStep).
        self.W2b = torch.cat([W2, b2.view(1, -1)])  # (n_hidden + 1, vocab_size)
        self.W2, self.b2 = self.W2b[:-1], self.W2b[-1]  # views

    @classmethod
    def lecture_init(cls, shape: ModelShape, seed: int = LECTURE_SEED) -> MLP:
        # Plain randn, drawn in the lecture's order from one seeded generator: the huge first
        # losses (~27 instead of ln 27 ~ 3.3) and the "hockey stick" come from this.
        g = torch.Generator().manual_seed(seed)
        C = torch.randn((shape.vocab_size, shape.n_embd), generator=g)
        W1 = torch.randn((shape.n_in, shape.n_hidden), generator=g)
        b1 = torch.randn(shape.n_hidden, generator=g)
        W2 = torch.randn((shape.n_hidden, shape.vocab_size), generator=g)
        b2 = torch.randn(shape.vocab_size, generator=g)
        return cls(shape, C, W1, b1, W2, b2)

    @classmethod
    def scaled_init(cls, shape: ModelShape, seed: int = LECTURE_SEED) -> MLP:
        """Part 3's fixes, drawn from the same generator: a small output layer and zero output
        bias (the first loss is ~ln(vocab_size), no hockey stick), and the hidden layer scaled by
        (5/3) / sqrt(fan_in) (Kaiming for tanh) with a small bias, so that tanh does not saturate."""
        m = cls.lecture_init(shape, seed)
        m.W1.mul_((5 / 3) / shape.n_in**0.5)
        m.b1.mul_(0.01)
        m.W2.mul_(0.01)
        m.b2.zero_()
        return m

    def parameters(self) -> list[Tensor]:
        return [self.C, self.W1, self.b1, self.W2, self.b2]

    def tensors(self) -> list[Tensor]:
        """The four tensors that hold the parameters: C, W1, b1 and W2b (W2 on top of b2)."""
        return [self.C, self.W1, self.b1, self.W2b]

    def clone(self) -> MLP:
        return MLP(self.shape, *(p.clone() for p in self.parameters()))

    def copy_(self, other: MLP) -> None:
        """Overwrite these weights in place with `other`'s (views such as SGDStep's stay valid)."""
        for mine, theirs in zip(self.parameters(), other.parameters(), strict=True):
            mine.copy_(theirs)

    def forward(self, X: Tensor) -> Tensor:
        return self.hidden_and_logits(X)[1]

    def hidden_and_logits(self, X: Tensor) -> tuple[Tensor, Tensor]:
        emb = self.C[X].view(X.shape[0], -1)  # (B, block_size * n_embd)
        # h = tanh(z) = 2 sigmoid(2z) - 1, with 2z straight from addmm: three passes over h, not five
        h = torch.addmm(self.b1, emb, self.W1, beta=2, alpha=2).sigmoid_()  # (B, n_hidden)
        torch.add(_MINUS_ONE, h, alpha=2, out=h)
        return h, torch.addmm(self.b2, h, self.W2)  # (B, vocab_size)

    def gradients(self, X: Tensor, h: Tensor, dlogits: Tensor) -> list[Tensor]:
        """d(loss)/d(params) given d(loss)/d(logits) for the rows X, with `h` from their forward
        pass. Plain and allocating: for evaluations, not for the training step."""
        emb = self.C[X].view(X.shape[0], -1)  # (N, n_in)
        dz = torch.ops.aten.tanh_backward(dlogits @ self.W2.t(), h)  # (N, n_hidden): dh * (1 - h^2)
        demb = dz @ self.W1.t()  # (N, n_in)
        dC = torch.zeros_like(self.C).index_add_(0, X.reshape(-1), demb.view(-1, self.shape.n_embd))
        return [dC, emb.t() @ dz, dz.sum(0), h.t() @ dlogits, dlogits.sum(0)]


class SGDStep:
    """One minibatch step with the backward pass written out by hand, and by default plain SGD's
    update, `p -= lr * grad`, fused into it; `update`, if given, replaces that last part (momentum
    and Adam, backend/core/optim.py): it is called with this step and the learning rate once the
    backward pass has filled the buffers, and applies its rule through `add_gradients`.

    Buffers are allocated once per batch size and reused; the output layer's weights and bias are
    one matrix product forward and one update backward (MLP.W2b). The arithmetic is the
    lecture's, with two rewrites that give the same numbers up to float rounding:
    - tanh(x) = 2 * sigmoid(2x) - 1 (see `tanh`): at batch 4,096 torch.tanh dominated the step;
    - the 1/B of the mean loss is folded into the step size, so gradients stay sums over the batch.
    """

    def __init__(
        self,
        model: MLP,
        tanh_via_sigmoid: bool = True,
        update: Callable[[SGDStep, float], None] | None = None,
    ):
        self.model = model
        self.update = update
        self._params = model.tensors()
        # Transposed views are made once: they track the parameters, which are updated in place.
        self._W1t = model.W1.t()  # (n_hidden, n_in)
        self._W2t = model.W2.t()  # (vocab_size, n_hidden)
        self._minus_one = torch.tensor(-1.0)
        self._batch = 0
        # torch.tanh is kept as an option so that the benchmark can measure what the rewrite gives
        self._hidden = self._hidden_sigmoid if tanh_via_sigmoid else self._hidden_tanh

    def _hidden_sigmoid(self, emb: Tensor) -> Tensor:
        """h = tanh(z), z = emb @ W1 + b1, computed as 2 * sigmoid(2z) - 1."""
        m = self.model
        h = torch.addmm(m.b1, emb, m.W1, beta=2, alpha=2, out=self.h)  # (B, n_hidden) = 2z
        return torch.add(self._minus_one, h.sigmoid_(), alpha=2, out=h)

    def _hidden_tanh(self, emb: Tensor) -> Tensor:
        m = self.model
        return torch.addmm(m.b1, emb, m.W1, out=self.h).tanh_()  # (B, n_hidden)

    def _allocate(self, B: int) -> None:
        s = self.model.shape
        self._batch = B
        self.X = torch.empty((B, s.block_size), dtype=torch.long)
        self.Y = torch.empty(B, dtype=torch.long)
        self._X_flat = self.X.view(-1)  # (B * block_size,)
        self._Y_col = self.Y.view(B, 1)
        self.emb = torch.empty((B, s.n_in))
        self._emb_rows = self.emb.view(B * s.block_size, s.n_embd)
        self._emb_t = self.emb.t()
        self._h1 = torch.ones((B, s.n_hidden + 1))  # [h, 1]: the last column stays 1
        self.h = self._h1[:, :-1]  # (B, n_hidden), a view
        self._h1_t = self._h1.t()
        self.logits = torch.empty((B, s.vocab_size))  # then log-softmax, then dloss/dlogits
        self.dh = torch.empty((B, s.n_hidden))
        self.dz = torch.empty((B, s.n_hidden))
        self._dz_t = self.dz.t()
        self.demb = torch.empty((B, s.n_in))
        self._demb_rows = self.demb.view(B * s.block_size, s.n_embd)
        self._ones = torch.ones(B)

    def __call__(self, X_all: Tensor, Y_all: Tensor, idx: Tensor, lr: float) -> Tensor:
        """Train on rows `idx` of (X_all, Y_all); return the minibatch loss before the update (0-d)."""
        B = idx.shape[0]
        if self._batch != B:
            self._allocate(B)
        m = self.model
        torch.index_select(X_all, 0, idx, out=self.X)  # (B, block_size)
        Y = torch.index_select(Y_all, 0, idx, out=self.Y)  # (B,)
        emb = self.emb  # (B, n_in)
        torch.index_select(m.C, 0, self._X_flat, out=self._emb_rows)
        h = self._hidden(emb)  # (B, n_hidden)
        logp = torch.mm(self._h1, m.W2b, out=self.logits)  # (B, vocab_size) = h @ W2 + b2
        torch._log_softmax(logp, 1, False, out=logp)
        loss = F.nll_loss(logp, Y)  # mean over the batch
        # backward: dloss/dlogits = softmax - onehot(Y), summed over the batch; 1/B goes in `a`
        dlogits = logp.exp_()
        dlogits.scatter_(1, self._Y_col, -1.0, reduce="add")
        dh = torch.mm(dlogits, self._W2t, out=self.dh)  # (B, n_hidden), with W2 before its update
        torch.ops.aten.tanh_backward.grad_input(dh, h, grad_input=self.dz)  # dz = dh * (1 - h^2)
        torch.mm(self.dz, self._W1t, out=self.demb)  # (B, n_in), with W1 before its update
        if self.update is None:  # plain SGD: p -= lr * grad, in the gradients' own products
            self.add_gradients(self._params, -lr, accumulate=True)
        else:
            self.update(self, lr)
        return loss

    def add_gradients(self, out: Sequence[Tensor], alpha: float, accumulate: bool) -> None:
        """out += alpha * grad (accumulate) or out = alpha * grad (not), for the gradients of the
        minibatch's mean loss with respect to (C, W1, b1, W2b) (MLP.tensors): into the parameters
        themselves (plain SGD, alpha -lr) or into an optimizer's gradient buffers (alpha 1). One
        tensor op each, C two when it overwrites; overwriting ignores what `out` held, NaN included.
        It reads only this step's forward and backward buffers, never the parameters, so it may
        update them."""
        C, W1, b1, W2b = out
        a = alpha / self._batch  # the buffers hold sums over the batch: the mean's 1/B goes here
        beta = 1.0 if accumulate else 0.0
        W2b.addmm_(self._h1_t, self.logits, beta=beta, alpha=a)  # [h, 1]^T @ dlogits: W2 and b2 at once
        W1.addmm_(self._emb_t, self.dz, beta=beta, alpha=a)  # emb^T @ dz
        b1.addmv_(self._dz_t, self._ones, beta=beta, alpha=a)  # dz summed over the batch
        if not accumulate:
            C.zero_()
        C.index_add_(0, self._X_flat, self._demb_rows, alpha=a)  # each row's demb onto its characters
