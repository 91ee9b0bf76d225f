"""The edge around the application, outermost first: security headers, who may talk to the
server, then the limits. `python -m backend` wraps Boot in it, so it covers everything the
server answers, the page it serves before torch has loaded included."""

from __future__ import annotations

from starlette.types import ASGIApp

from backend.config import Settings
from backend.edge.access import AccessGuard
from backend.edge.headers import SecurityHeaders
from backend.edge.limits import BodyLimit, SampleBudget, WebSocketLimits


def guarded(app: ASGIApp, settings: Settings, token: str | None) -> ASGIApp:
    """`token`: the one in force (token.token_in_force), or None."""
    app = SampleBudget(app, settings.sample_budget)
    app = WebSocketLimits(app, settings.ws_per_client, settings.ws_messages_per_s)
    app = BodyLimit(app, settings.max_body_bytes)
    app = AccessGuard(
        app,
        token=token,
        bound_host=settings.host,
        allowed_hosts=settings.allowed_hosts,
        allowed_origins=settings.allowed_origins,
    )
    return SecurityHeaders(app)  # outermost: refusals carry the headers too
