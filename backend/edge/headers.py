"""Security headers on every HTTP answer: the page, /docs, the API and the token page alike."""

from __future__ import annotations

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

# Two inline <style> elements plotly.js (4.1) adds to the page, allowed by the hash of their text
# (a hash allows that exact text and nothing else; 'unsafe-inline' would allow any style):
# - an EMPTY one, "plotly.js-style-global", that it fills with `sheet.insertRule` (addStyleRule:
#   hover labels, the mode bar). A CSP checks an element's text, not rules added through the CSSOM.
# - MapLibre's stylesheet (for map traces, which we do not draw), added when plotly.js loads.
# A new plotly.js may change the second: Chromium then logs the violation, and the browser tests
# (tests/browser/test_browser.py), which fail on any console error, say so.
PLOTLY_STYLES = (
    "'sha256-47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU='",  # "" (the empty string)
    "'sha256-ji27qzEtxXZW+7dun6UwjHXJ18e6WAin1VvNtkzIE/o='",  # ".maplibregl-map{font:12px/20px ..."
)

CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",  # every script is a file the server serves: no inline script, no eval
        f"style-src 'self' {' '.join(PLOTLY_STYLES)}",
        # data: the page's favicon is `data:,` (no request); Swagger UI's icons are data: SVGs in
        # its stylesheet. blob: plotly's "download plot as png".
        "img-src 'self' data: blob:",
        "connect-src 'self'",  # fetch and the websocket (CSP3: 'self' covers ws: and wss: to this host)
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",  # the token page's form
        "frame-ancestors 'none'",  # no other site may frame the page (clickjacking)
    ]
)

SECURITY_HEADERS = {
    "content-security-policy": CONTENT_SECURITY_POLICY,
    "x-content-type-options": "nosniff",
    # the token travels in ?token= once; no Referer may carry an address to another site
    "referrer-policy": "no-referrer",
    "x-frame-options": "DENY",  # frame-ancestors for browsers that predate it
}


class SecurityHeaders:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message.setdefault("headers", [])
                headers = MutableHeaders(scope=message)
                for name, value in SECURITY_HEADERS.items():
                    if name not in headers:
                        headers.append(name, value)
            await send(message)

        await self.app(scope, receive, send_with_headers)
