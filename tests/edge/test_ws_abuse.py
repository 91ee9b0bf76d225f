"""What a hostile or careless websocket client sends, answered with an `error` (backend/api/ws.py)."""

from __future__ import annotations

import logging

import pytest
from fastapi.testclient import TestClient

from tests.api.test_ws import until


def test_deep_nesting_is_an_error_not_a_recursion_error(client: TestClient, caplog: pytest.LogCaptureFixture) -> None:
    with client.websocket_connect("/ws/runs/current") as ws:
        ws.receive_json()
        for _ in range(3):
            ws.send_text("[" * 1000)  # 1,000 bytes: under the 4 KiB limit
            assert until(ws, "error")["detail"] == "not a message: nested too deeply"
        ws.send_text("[" * 4000)
        assert "nested too deeply" in until(ws, "error")["detail"]
        ws.send_json({"type": "set", "lr": 0.07})  # the connection stays, and works
        assert until(ws, "hparams")["lr"] == 0.07
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]  # no traceback


def test_a_set_with_nothing_to_change_is_an_error(client: TestClient) -> None:
    """README: a `set` that names no field gets an error saying so (one that names fields is
    confirmed with `hparams`, even when the values are the current ones)."""
    with client.websocket_connect("/ws/runs/current") as ws:
        ws.receive_json()
        ws.send_json({"type": "set"})
        detail = until(ws, "error")["detail"]
        assert detail.startswith("set: nothing to change") and "lr" in detail and "schedule" in detail
        ws.send_json({"type": "set", "lr": 0.1})  # the current value: confirmed all the same
        assert until(ws, "hparams")["lr"] == 0.1
