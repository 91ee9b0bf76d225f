import threading
import time

import pytest

from backend.runtime.pacing import Pacer
from tests.conftest import wait_for


def test_jobs_of_a_busy_run_keep_to_their_share() -> None:
    """After a job that cost t, the next one starts no sooner than t * (1 - share) / share later."""
    starts: list[float] = []
    ends: list[float] = []

    def job() -> float:
        starts.append(time.monotonic())
        ends.append(time.monotonic())
        return 0.05  # as if it had taken 50 ms of the trainer's time

    pacer = Pacer(busy=lambda: True, share=0.2)
    pacer.start()
    for _ in range(3):
        pacer.put(job)
    wait_for(lambda: len(starts) == 3, what="three jobs")
    pacer.stop()
    gaps = [b - a for a, b in zip(ends, starts[1:], strict=False)]
    assert all(gap >= 0.2 - 0.005 for gap in gaps), gaps  # 0.05 * 0.8 / 0.2


def test_jobs_of_an_idle_run_do_not_wait_and_stop_runs_the_rest() -> None:
    done: list[int] = []
    gate = threading.Event()
    pacer = Pacer(busy=lambda: False, share=0.01)  # would wait 99 s after each job if busy
    pacer.start()
    pacer.put(lambda: gate.wait(30) and 1.0)
    for i in range(5):
        pacer.put(lambda i=i: done.append(i) or 1.0)
    gate.set()
    wait_for(lambda: len(done) == 5, what="five jobs of an idle run")
    assert done == [0, 1, 2, 3, 4]
    busy = Pacer(busy=lambda: True, share=0.01)
    busy.start()
    busy.put(lambda: 1.0)  # the next would wait 99 s ...
    busy.put(lambda: done.append(5) or 1.0)
    busy.stop()  # ... but stopping runs it at once
    assert done[-1] == 5


def test_a_failing_job_does_not_end_the_pacer() -> None:
    ran: list[str] = []

    def bad() -> float:
        raise RuntimeError("boom")

    pacer = Pacer(busy=lambda: False)
    pacer.start()
    pacer.put(bad)
    pacer.put(lambda: ran.append("after") or 0.0)
    wait_for(lambda: ran == ["after"], what="the job after a failing one")
    pacer.stop()


def test_share_is_bounded() -> None:
    with pytest.raises(ValueError, match="share"):
        Pacer(busy=lambda: True, share=0)
