"""runtime/priority.py: every thread of the process moves, those started before and after."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

from backend.runtime.priority import MAX_NICENESS

pytestmark = pytest.mark.skipif(not os.path.isdir("/proc/self/task"), reason="per-thread niceness is Linux's")

CHILD = textwrap.dedent(
    """
    import json, os, sys, threading
    from backend.runtime.priority import lower_priority

    def nice(tid): return os.getpriority(os.PRIO_PROCESS, tid)

    ready, done, later = threading.Event(), threading.Event(), []
    def waiting():
        ready.set(); done.wait()
    before = threading.Thread(target=waiting); before.start(); ready.wait()
    base = nice(threading.get_native_id())
    lower_priority(int(sys.argv[1]))
    after = threading.Thread(target=lambda: later.append(nice(threading.get_native_id()))); after.start(); after.join()
    print(json.dumps({"base": base, "main": nice(threading.get_native_id()), "before": nice(before.native_id),
                      "after": later[0]}))
    done.set()
    """
)


def niceness_after(increment: int) -> dict[str, int]:
    """A child process (a niceness cannot be lowered again) with a thread started before the
    call and one after."""
    out = subprocess.run([sys.executable, "-c", CHILD, str(increment)], capture_output=True, text=True, check=True)
    result: dict[str, int] = json.loads(out.stdout)
    return result


def test_every_thread_moves_by_the_increment() -> None:
    n = niceness_after(3)
    want = min(MAX_NICENESS, n["base"] + 3)
    assert n["base"] < want  # (a test process at 19 already would prove nothing)
    assert (n["main"], n["before"], n["after"]) == (want, want, want)


def test_capped_at_the_lowest_priority_and_zero_is_nothing() -> None:
    assert niceness_after(40)["main"] == MAX_NICENESS
    n = niceness_after(0)
    assert n["main"] == n["before"] == n["after"] == n["base"]
