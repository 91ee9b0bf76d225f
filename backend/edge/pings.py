"""How many pings (and pongs) a websocket client may send: a token bucket per connection.

The websockets library answers every ping it parses; four clients sending pings as fast as they
could cut a training run beside them to a third of its speed. A client's control frames are
answered at `rate` a second, `burst` at once; past that they are dropped unanswered, and a client
that runs `flood_seconds` of its allowance behind (it went on sending, unanswered) is flooding:
its connection is closed. A browser answers our keepalive ping every 20 s and sends none of its
own, so it never comes near.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Literal

Verdict = Literal["answer", "drop", "flood"]


class PingBudget:
    def __init__(
        self,
        rate: float = 10.0,
        burst: float = 20.0,
        flood_seconds: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.rate, self.burst, self.clock = rate, burst, clock
        self._floor = -rate * flood_seconds  # the allowance a client may run behind, in pings
        self._tokens = burst
        self._at = clock()

    def take(self) -> Verdict:
        """One control frame from the client: answer it, drop it, or close the connection."""
        now = self.clock()
        self._tokens = min(self.burst, self._tokens + (now - self._at) * self.rate)
        self._at = now
        self._tokens -= 1.0  # a dropped one is owed too: a client that never pauses never catches up
        if self._tokens >= 0.0:
            return "answer"
        return "drop" if self._tokens >= self._floor else "flood"
