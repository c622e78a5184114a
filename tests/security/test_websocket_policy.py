"""WebSocket routes authenticate with ``WebSocketUser``: no anonymous client is accepted."""

from __future__ import annotations

import warnings

import pytest
from fastapi import APIRouter, WebSocket
from starlette.websockets import WebSocketDisconnect

from quantdesk.app import create_app
from quantdesk.security.policy import WebSocketUser, routes_without_policy
from quantdesk.settings import Settings


def test_websocket_requires_a_valid_token(settings: Settings) -> None:
    app = create_app(settings)
    router = APIRouter()

    @router.websocket("/ws/probe")
    async def probe(websocket: WebSocket, principal: WebSocketUser) -> None:
        await websocket.accept()
        await websocket.send_json({"user": str(principal.user_id), "role": principal.role.value})
        await websocket.close()

    app.include_router(router)
    assert routes_without_policy(app) == []
    with warnings.catch_warnings():
        # Starlette 1.x nudges towards httpx2 for its test client; httpx still works.
        warnings.simplefilter("ignore")
        from starlette.testclient import TestClient
    with TestClient(app) as client:
        for url in ("/ws/probe", "/ws/probe?access_token=not-a-token"):
            with pytest.raises(WebSocketDisconnect) as closed, client.websocket_connect(url):
                pass
            assert closed.value.code == 1008
        password = "a sufficiently long passphrase"
        client.post("/api/v1/auth/register", json={"email": "ws@example.com", "password": password})
        tokens = client.post(
            "/api/v1/auth/login", json={"email": "ws@example.com", "password": password}
        ).json()
        with client.websocket_connect(f"/ws/probe?access_token={tokens['access_token']}") as ws:
            assert ws.receive_json()["role"] == "trader"
        client.post(
            "/api/v1/auth/logout", headers={"Authorization": f"Bearer {tokens['access_token']}"}
        )
        with (
            pytest.raises(WebSocketDisconnect) as revoked,
            client.websocket_connect(f"/ws/probe?access_token={tokens['access_token']}"),
        ):
            pass
        assert revoked.value.code == 1008
