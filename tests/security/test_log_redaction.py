"""Requests full of secrets leave none of them in the logs (JSON, DEBUG level)."""

from __future__ import annotations

import httpx
import pytest

from quantdesk.app import create_app
from quantdesk.settings import Settings


async def test_logs_hold_no_passwords_tokens_or_keys(
    settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    tuned = settings.model_copy(update={"log_level": "DEBUG", "log_json": True})
    application = create_app(tuned)
    password = "hunter2-but-much-longer-Zq9"
    email = "Secret.Person@example.com"
    secrets: list[str] = [password]
    async with application.router.lifespan_context(application):
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            await client.post("/api/v1/auth/register", json={"email": email, "password": password})
            await client.post(
                "/api/v1/auth/login", json={"email": email, "password": "wrong " + password}
            )
            secrets.append("wrong " + password)
            tokens = (
                await client.post("/api/v1/auth/login", json={"email": email, "password": password})
            ).json()
            secrets += [tokens["access_token"], tokens["refresh_token"]]
            headers = {"Authorization": f"Bearer {tokens['access_token']}"}
            key = (
                await client.post(
                    "/api/v1/api-keys", headers=headers, json={"name": "k", "scopes": ["read"]}
                )
            ).json()["key"]
            secrets.append(key)
            await client.get("/api/v1/users/me", headers={"Authorization": f"Bearer {key}"})
            await client.get(f"/api/v1/users/me?token={tokens['access_token']}", headers=headers)
            rotated = await client.post(
                "/api/v1/auth/refresh", json={"refresh_token": tokens["refresh_token"]}
            )
            secrets.append(rotated.json()["refresh_token"])
            await client.post(
                "/api/v1/auth/refresh", json={"refresh_token": tokens["refresh_token"]}
            )
            await client.post(
                "/api/v1/users/me/password",
                headers=headers,
                json={"current_password": password, "new_password": password + "-new"},
            )
    captured = capsys.readouterr()
    output = captured.out + captured.err
    assert '"event":"request"' in output
    assert "security_event" in output
    assert "refresh_token_reused" in output
    for secret in secrets:
        assert secret not in output
        assert secret[:24] not in output
    assert email not in output
    assert email.lower() not in output
