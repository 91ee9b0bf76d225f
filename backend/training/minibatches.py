"""Random minibatches for the trainer's steps, drawn a block of steps at a time.

A step's minibatch is batch_size row indices drawn with replacement from the training split, by
the run's own generator; exact resume needs to know where that generator stands mid-block, so
`position()` says it and `restore()` puts it back (checkpoint.py stores the pair).
"""

from __future__ import annotations

import torch


class Minibatches:
    """Row indices of random minibatches, drawn with replacement from n rows.

    One torch.randint per block of steps instead of one per step: the generator gives exactly the
    same numbers either way (tests/training/test_trainer.py checks), and a step costs one tensor op less.
    `position()` and `restore()` save and put back where it stands, for exact resume."""

    def __init__(self, n: int, batch_size: int, gen: torch.Generator, block_rows: int = 65_536) -> None:
        self.n, self.batch_size, self._gen = n, batch_size, gen
        self._steps = max(1, block_rows // batch_size)  # steps per block
        self._block = torch.empty((self._steps, batch_size), dtype=torch.long)
        self._next = self._steps  # the block is used up: draw at the first call
        self._state = gen.get_state()  # the generator's state before the current block was drawn

    def __call__(self) -> torch.Tensor:
        if self._next == self._steps:
            self._state = self._gen.get_state()
            torch.randint(0, self.n, (self._steps, self.batch_size), generator=self._gen, out=self._block)
            self._next = 0
        row = self._block[self._next]  # (batch_size,), contiguous
        self._next += 1
        return row

    def position(self) -> tuple[torch.Tensor, int]:
        """(the generator's state before the current block, steps of it used)."""
        if self._next == self._steps:  # no block in use: the next call draws from the state now
            return self._gen.get_state(), self._steps
        return self._state.clone(), self._next

    def restore(self, state: torch.Tensor, cursor: int) -> None:
        """Stand where `position()` stood: redraw the same block, skip its used steps."""
        self._gen.set_state(state)
        self._next = self._steps
        if cursor < self._steps:
            self()  # draws the block (and remembers the state it was drawn from)
            self._next = cursor
