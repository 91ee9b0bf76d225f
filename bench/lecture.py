"""The baseline: the lecture's training loop exactly as the lecture writes it (makemore part 2,
final cell): plain autograd, `p.data += -lr * p.grad`, a `.item()` every step, torch's default
threads. Run as a subprocess so that nothing of the benchmark process (threads, caches) leaks in.

    python -m bench.lecture --batch 32 --seconds 10 [--threads 1]  ->  prints {"steps_per_s": ...}
"""

from __future__ import annotations

import argparse
import json
import time

import torch
import torch.nn.functional as F

from backend.config import DEFAULT_DATA
from backend.core.data import Dataset


def lecture_loop(Xtr: torch.Tensor, Ytr: torch.Tensor, batch_size: int, seconds: float) -> float:
    """Steps per second of the lecture's loop, timed after a short warm-up."""
    g = torch.Generator().manual_seed(2147483647)  # for reproducibility
    C = torch.randn((27, 10), generator=g)
    W1 = torch.randn((30, 200), generator=g)
    b1 = torch.randn(200, generator=g)
    W2 = torch.randn((200, 27), generator=g)
    b2 = torch.randn(27, generator=g)
    parameters = [C, W1, b1, W2, b2]
    for p in parameters:
        p.requires_grad = True
    lossi, stepi = [], []
    start, i = 0.0, 0
    while True:
        if i == 20:
            start = time.perf_counter()
        elif i > 20 and i % 16 == 0 and time.perf_counter() - start >= seconds:
            return (i - 20) / (time.perf_counter() - start)
        # minibatch construct
        ix = torch.randint(0, Xtr.shape[0], (batch_size,))
        # forward pass
        emb = C[Xtr[ix]]  # (32, 3, 10)
        h = torch.tanh(emb.view(-1, 30) @ W1 + b1)  # (32, 200)
        logits = h @ W2 + b2  # (32, 27)
        loss = F.cross_entropy(logits, Ytr[ix])
        # backward pass
        for p in parameters:
            p.grad = None
        loss.backward()
        # update
        lr = 0.1 if i < 100000 else 0.01
        for p in parameters:
            p.data += -lr * p.grad
        # track stats
        stepi.append(i)
        lossi.append(loss.log10().item())
        i += 1


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--threads", type=int, help="torch threads (default: torch's, one per core)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    train = Dataset.from_file(DEFAULT_DATA).splits(3).train
    rate = lecture_loop(train.X, train.Y, args.batch, args.seconds)
    print(json.dumps({"steps_per_s": rate, "threads": torch.get_num_threads()}))


if __name__ == "__main__":
    main()
