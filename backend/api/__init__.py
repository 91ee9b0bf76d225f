"""HTTP and websocket routers: thin, typed, and reaching long-lived objects through deps; with the
API's schemas (schemas.py, sweepschemas.py) and the overlays' points kept as JSON (points.py)."""
