"""The token never in the server's log: uvicorn logs every request's URL, query string included,
and a websocket (or a page opened from the printed link) carries the token there (`?token=`).
Whoever can read the log (a shared terminal, `docker logs`, a log collector) could otherwise
drive the server."""

from __future__ import annotations

import logging
import re
from urllib.parse import unquote_plus

from backend.edge.token import QUERY

HIDDEN = "***"
# a query parameter: its key (as written: it may be percent-encoded) and its value
_PARAMETER = re.compile(r"(?<=[?&])([^=&\s\"#?]+)=([^&\s\"#]*)")
# uvicorn's loggers of requests: "uvicorn.access" (http) and "uvicorn.error" (websockets, errors)
LOGGERS = ("uvicorn", "uvicorn.access", "uvicorn.error")


def redact(text: str) -> str:
    """`text` with the value of every `token` query parameter replaced by ***: under any spelling
    of its key the server would read as `token` (`%74oken`)."""

    def hide(match: re.Match[str]) -> str:
        if unquote_plus(match[1]) != QUERY:
            return match[0]
        return f"{match[1]}={HIDDEN}"

    return _PARAMETER.sub(hide, text) if "=" in text else text


class RedactTokens(logging.Filter):
    """Redacts the record's message and each of its text arguments in place (not the formatted
    line: uvicorn's access formatter reads the arguments one by one)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str):
            record.msg = redact(record.msg)
        if isinstance(record.args, tuple):
            record.args = tuple(redact(a) if isinstance(a, str) else a for a in record.args)
        elif isinstance(record.args, dict):
            record.args = {k: redact(v) if isinstance(v, str) else v for k, v in record.args.items()}
        return True


def redact_tokens() -> None:
    """Install the filter on uvicorn's loggers. Call it after uvicorn.Config is made: the Config
    configures uvicorn's logging itself. A logger's filter sees the records logged on it; it is
    on each of those uvicorn logs requests on, since a child's records skip a parent's filters."""
    for name in LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(f, RedactTokens) for f in logger.filters):
            logger.addFilter(RedactTokens())


HEALTH = "/api/health"


class DropHealthChecks(logging.Filter):
    """Drops uvicorn's access line of each answered `GET /api/health` (no query): Docker's
    HEALTHCHECK, or an orchestrator's probe, asks every few seconds, and its lines would bury the
    requests that matter. A failing one (503 while the application loads or after it failed) stays."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        # uvicorn's access line: (client, method, path with query, HTTP version, status)
        if isinstance(args, tuple) and len(args) == 5:
            _, method, path, _, status = args
            if method == "GET" and path == HEALTH and isinstance(status, int) and 200 <= status < 300:
                return False
        return True


def drop_health_checks() -> None:
    """Install the filter on uvicorn's access logger (after uvicorn.Config, as redact_tokens)."""
    logger = logging.getLogger("uvicorn.access")
    if not any(isinstance(f, DropHealthChecks) for f in logger.filters):
        logger.addFilter(DropHealthChecks())
