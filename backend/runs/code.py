"""A run as code: a short Python script that replays the run in plain PyTorch, the lecture's
notebook loop (makemore part 2) with the run's settings and every change of its timeline applied
at the step it took effect.

Pure: a run's record and its timeline in, the script's text out. What users wrote (the run's
name, the dataset's name) goes only into comments, through `repr`, so that no name can end a
comment and become code; every number is read back through int() or float() first.

The script draws its minibatches as the trainer does (backend/training/minibatches.py):
torch.randint from a generator seeded with the run's seed, a block of 65,536 // batch_size steps
at a time, a fresh block when the batch size changes. So it sees the run's minibatches exactly,
and its losses follow the run's up to float rounding (the trainer's hand-written backward pass
and its tanh as 2 sigmoid(2x) - 1 differ from autograd's in the last bits).
"""

from __future__ import annotations

import re
from string import Template
from typing import Any

from backend.store.records import RunRecord

MINIBATCH_BLOCK_ROWS = 65_536  # minibatches.Minibatches' block_rows

SCRIPT = Template('''\
"""makemore MLP, replayed in plain PyTorch from a run of makemore live.

The lecture's notebook loop (makemore part 2: MLP) with this run's settings, and each change
the run's timeline records applied at the step it took effect. Needs torch only.

    python this_script.py [words.txt] [--steps N] [--log-every N]
"""
$about
# Changes made within a second of each other (a slider dragged) are kept as one, at the step
# of the first: from there the script uses the last values.

import argparse
import math
import random

import torch
import torch.nn.functional as F

parser = argparse.ArgumentParser(description='Replay a makemore live run in plain PyTorch.')
parser.add_argument('words', nargs='?', default='names.txt', help='the word list, one per line')
parser.add_argument('--steps', type=int, default=$steps, help="training steps (default: the run's)")
parser.add_argument('--log-every', type=int, default=0, help='print the loss every N steps (0: 10 times)')
args = parser.parse_args()
log_every = args.log_every or max(1, args.steps // 10)

# ---- the run's settings -------------------------------------------------------------------
block_size = $block_size  # context length: how many characters predict the next one
n_embd = $n_embd  # the dimensionality of the character embedding vectors
n_hidden = $n_hidden  # the number of neurons in the hidden layer
seed = $seed
# what it trained with at step 0 (its timeline changes these in the loop below)
lr = $lr  # the base learning rate; the schedule gives each step's rate from it
batch_size = $batch_size
schedule = $schedule
max_steps = $max_steps  # the run's length: a cosine schedule ends there

# ---- the data: every word plus '.' gives one example per character -------------------------
# (blank lines are skipped and each line stripped, as the server reads a word list)
words = [w.strip() for w in open(args.words, encoding='utf-8-sig').read().split('\\n') if w.strip()]
chars = sorted(set(''.join(words)))
stoi = {s: i + 1 for i, s in enumerate(chars)}
stoi['.'] = 0
vocab_size = len(stoi)


def build_dataset(words):
    X, Y = [], []
    for w in words:
        context = [0] * block_size
        for ch in w + '.':
            ix = stoi[ch]
            X.append(context)
            Y.append(ix)
            context = context[1:] + [ix]  # crop and append
    return torch.tensor(X).view(-1, block_size), torch.tensor(Y)


random.seed(42)
random.shuffle(words)
n1 = int(0.8 * len(words))
n2 = int(0.9 * len(words))
Xtr, Ytr = build_dataset(words[:n1])  # 80%
Xdev, Ydev = build_dataset(words[n1:n2])  # 10%
Xte, Yte = build_dataset(words[n2:])  # 10%
print(len(words), 'words,', Xtr.shape[0], 'training examples')

$model
parameters = [C, W1, b1, W2, b2]
print(sum(p.nelement() for p in parameters), 'parameters')
for p in parameters:
    p.requires_grad = True

$optimizer


def learning_rate(step):
    """This step's rate from the base rate `lr` and the schedule, as the run computes it."""
    if schedule['kind'] == 'step':  # lr before step `at`, lr * factor from there
        return lr * schedule['factor'] if step >= schedule['at'] else lr
    if schedule['kind'] == 'cosine':  # from lr down to min_lr at max_steps, along half a cosine
        progress = min(step / max_steps, 1.0)
        return schedule['min_lr'] + (lr - schedule['min_lr']) * 0.5 * (1.0 + math.cos(math.pi * progress))
    return lr


def minibatches(n, batch_size):
    """Each step's rows: torch.randint(0, n, (batch_size,)) as in the lecture, from the run's
    own seeded generator. The run draws them a block of steps at a time (the same numbers) and
    starts a new block when the batch size changes; so does this, to get the run's minibatches."""
    steps = max(1, $block_rows // batch_size)
    while True:
        yield from torch.randint(0, n, (steps, batch_size), generator=gb)


gb = torch.Generator().manual_seed(seed)  # the minibatches' generator
batches = minibatches(Xtr.shape[0], batch_size)
lossi = []

for i in range(args.steps):
$timeline
    # minibatch construct
    ix = next(batches)

    # forward pass
    emb = C[Xtr[ix]]  # embed the characters into vectors
    h = torch.tanh(emb.view(emb.shape[0], -1) @ W1 + b1)  # hidden layer
    logits = h @ W2 + b2  # output layer
    loss = F.cross_entropy(logits, Ytr[ix])  # loss function

    # backward pass
    for p in parameters:
        p.grad = None
    loss.backward()

    # update
$update

    # track stats
    if i % log_every == 0 or i == args.steps - 1:
        print(f'{i:7d}/{args.steps:7d}: {loss.item():.4f}')
    lossi.append(loss.log10().item())


@torch.no_grad()
def split_loss(split):
    x, y = {'train': (Xtr, Ytr), 'val': (Xdev, Ydev), 'test': (Xte, Yte)}[split]
    emb = C[x]
    h = torch.tanh(emb.view(emb.shape[0], -1) @ W1 + b1)
    logits = h @ W2 + b2
    loss = F.cross_entropy(logits, y)
    print(split, f'{loss.item():.4f}')


split_loss('train')
split_loss('val')
''')

LECTURE_INIT = """\
# ---- the model: the lecture's plain randn init (first loss ~27: the hockey stick) ----------
g = torch.Generator().manual_seed(seed)  # for reproducibility
n_in = block_size * n_embd
C = torch.randn((vocab_size, n_embd), generator=g)
W1 = torch.randn((n_in, n_hidden), generator=g)
b1 = torch.randn(n_hidden, generator=g)
W2 = torch.randn((n_hidden, vocab_size), generator=g)
b2 = torch.randn(vocab_size, generator=g)"""

SCALED_INIT = """\
# ---- the model: part 3's scaled init (first loss ~ln(vocab_size), no hockey stick) ---------
g = torch.Generator().manual_seed(seed)  # for reproducibility
n_in = block_size * n_embd
C = torch.randn((vocab_size, n_embd), generator=g)
W1 = torch.randn((n_in, n_hidden), generator=g) * ((5 / 3) / n_in**0.5)  # Kaiming for tanh
b1 = torch.randn(n_hidden, generator=g) * 0.01
W2 = torch.randn((n_hidden, vocab_size), generator=g) * 0.01
b2 = torch.randn(vocab_size, generator=g) * 0"""

SGD_UPDATE = """\
    step_lr = learning_rate(i)
    for p in parameters:
        p.data += -step_lr * p.grad"""

OPTIM_UPDATE = """\
    for group in optimizer.param_groups:
        group['lr'] = learning_rate(i)
    optimizer.step()"""


def script_filename(record: RunRecord) -> str:
    """makemore-<name>-<id>.py, the name cut down to letters, digits and dashes."""
    slug = re.sub(r"[^a-z0-9]+", "-", record.name.lower()).strip("-")[:60].strip("-")
    return f"makemore-{slug}-{record.id}.py" if slug else f"makemore-{record.id}.py"


def generate(record: RunRecord, changes: list[dict[str, Any]], dataset_name: str | None = None) -> str:
    """The script for `record`, with `changes` its timeline (oldest first, each the settings in
    effect from its `step` on, as the store keeps them)."""
    spec = record.spec
    settings = _settings(spec.model_dump(mode="json"))
    entries = sorted(enumerate(changes), key=lambda e: (int(e[1].get("step", 0)), e[0]))
    # what the run started with: its spec, then whatever its step-0 entries say (a branch's spec
    # holds the rate and batch size it branched with; its timeline, its parent's from step 0)
    for _, entry in entries:
        if int(entry.get("step", 0)) == 0:
            settings.update(_settings(entry))
    start = dict(settings)
    timeline = [_change(i, len(changes), e, settings) for i, e in entries if int(e.get("step", 0)) > 0]
    if timeline:
        timeline.insert(0, "    # the run's timeline: each change from the step it took effect")
    plain = _plain_sgd(spec.optimizer, float(spec.momentum))
    return SCRIPT.substitute(
        about=_about(record, dataset_name),
        steps=int(record.step) if record.step > 0 else start["max_steps"],
        block_size=int(spec.block_size),
        n_embd=int(spec.n_embd),
        n_hidden=int(spec.n_hidden),
        seed=int(spec.seed),
        lr=repr(start["lr"]),
        batch_size=start["batch_size"],
        schedule=repr(start["schedule"]),
        max_steps=start["max_steps"],
        model=SCALED_INIT if spec.init == "scaled" else LECTURE_INIT,
        optimizer=_optimizer(spec.optimizer, float(spec.momentum)),
        block_rows=MINIBATCH_BLOCK_ROWS,
        timeline="\n".join(timeline),
        update=SGD_UPDATE if plain else OPTIM_UPDATE,
    ).replace("\n\n    # minibatch", "\n    # minibatch")  # no timeline: no blank line at the top of the loop


def _about(record: RunRecord, dataset_name: str | None) -> str:
    """Comment lines: which run this is, where its data came from, what it cannot replay."""
    lines = [f"# run {record.id}: {record.name!r}"]
    source = f" ({dataset_name!r}): give the script the same word list" if dataset_name else ""
    lines.append(f"# dataset: {record.spec.dataset!r}{source}")
    if record.parent_id is not None:
        lines.append(
            f"# a branch of run {record.parent_id} at step {record.parent_step}: its timeline begins as its parent's"
        )
    lines.append(f"# steps done: {int(record.step)}; status: {record.status.value}")
    d = record.divergence
    if d is not None:
        lines.append(f"# NOTE: the run diverged at step {int(d.step)} and the server put back the weights of step")
        lines.append(f"# {d.restored_step}; this script does not: past step {int(d.step)} it goes its own way.")
    return "\n".join(lines)


def _schedule(raw: Any) -> dict[str, Any]:
    """A schedule from the timeline, as plain numbers (an unknown kind reads as constant)."""
    if isinstance(raw, dict) and raw.get("kind") == "step":
        return {"kind": "step", "at": int(raw["at"]), "factor": float(raw["factor"])}
    if isinstance(raw, dict) and raw.get("kind") == "cosine":
        return {"kind": "cosine", "min_lr": float(raw["min_lr"])}
    return {"kind": "constant"}


def _settings(entry: dict[str, Any]) -> dict[str, Any]:
    """The training settings a spec or a timeline entry holds (those the script replays)."""
    out: dict[str, Any] = {}
    if "lr" in entry:
        out["lr"] = float(entry["lr"])
    if "batch_size" in entry:
        out["batch_size"] = int(entry["batch_size"])
    if "schedule" in entry:
        out["schedule"] = _schedule(entry["schedule"])
    if "max_steps" in entry:
        out["max_steps"] = int(entry["max_steps"])
    return out


def _plain_sgd(optimizer: str, momentum: float) -> bool:
    return optimizer == "sgd" or (optimizer == "momentum" and momentum == 0)  # momentum 0 is plain SGD


def _optimizer(optimizer: str, momentum: float) -> str:
    if _plain_sgd(optimizer, momentum):
        return "# the optimizer: plain SGD, p += -lr * grad (in the loop)"
    if optimizer == "momentum":
        return (
            "# the optimizer: SGD with momentum (buf = momentum * buf + grad; p -= lr * buf)\n"
            f"optimizer = torch.optim.SGD(parameters, lr=lr, momentum={momentum!r})"
        )
    return (
        "# the optimizer: Adam with torch.optim's defaults (betas (0.9, 0.999), eps 1e-8)\n"
        "optimizer = torch.optim.Adam(parameters, lr=lr)"
    )


def _change(index: int, total: int, entry: dict[str, Any], current: dict[str, Any]) -> str:
    """One timeline entry as an `if i == step:` block that sets what it changed."""
    new = _settings(entry)
    changed = {k: v for k, v in new.items() if current.get(k) != v}
    said = ", ".join(f"{k} {current.get(k)!r} -> {v!r}" for k, v in changed.items()) or "nothing the loop uses"
    lines = [f"    if i == {int(entry['step'])}:  # timeline entry {index + 1} of {total}: {said}"]
    if not changed:
        lines.append("        pass  # (such as how often the run evaluates: not replayed)")
    lines += [f"        {key} = {value!r}" for key, value in changed.items()]
    if "batch_size" in changed:
        lines.append("        batches = minibatches(Xtr.shape[0], batch_size)  # so does the run: a new block of draws")
    current.update(changed)
    return "\n".join(lines)
