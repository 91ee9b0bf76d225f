"""Target 7: `python -m backend` answers /api/health within 4 s of start, on the default data."""

from __future__ import annotations

from bench.stats import Figure
from tests.server import running_server


def startup(repeats: int = 5) -> dict[str, object]:
    took = []
    for _ in range(repeats):
        with running_server() as server:
            took.append(server.started_in)
    fig = Figure(took)
    print(f"  python -m backend -> /api/health: {fig.fmt(2, ' s')} over {repeats} starts (limit 4 s)")
    return {"seconds": fig.as_dict()}
