"""`python -m backend.healthcheck`: exit 0 if the local server answers /api/health (Docker's
HEALTHCHECK). Reads the port from the same settings as the server."""

from __future__ import annotations

import json
import sys
import urllib.request

from backend.config import Settings


def main() -> int:
    url = f"http://127.0.0.1:{Settings().port}/api/health"
    try:
        with urllib.request.urlopen(url, timeout=3) as r:
            body = json.load(r)
            status = body.get("status") if isinstance(body, dict) else None
            # degraded (the disk full) passes: the server holds unwritten data in memory, which a
            # restart by an orchestrator would lose; the reason goes to Docker's health log
            ok = r.status == 200 and status in ("ok", "degraded")
            if status == "degraded":
                sys.stderr.write(f"{url}: degraded: {body.get('reason')}\n")
    except (OSError, ValueError) as e:
        sys.stderr.write(f"{url}: {e}\n")
        return 1
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
