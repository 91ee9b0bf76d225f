"""HTTP and websocket routers: thin, typed, and reaching long-lived objects through deps."""
