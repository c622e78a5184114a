"""Access logs, secret redaction and Prometheus metrics."""

from __future__ import annotations

import json
import logging

import httpx
import pytest
from fastapi import FastAPI

from quantdesk.platform.logging import configure_logging, redact
from quantdesk.settings import Settings

SECRET_PASSWORD = "correct-horse-battery-staple-42"
SECRET_TOKEN = "eyJhbGciOiJFZERTQSJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.c2lnbmF0dXJlLXZhbHVl"
SECRET_KEY = "qd_live_abcdefghijklmnopqrstuvwxyz012345"


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """This module's apps log at INFO in JSON, as in production."""
    return settings.model_copy(update={"log_level": "INFO", "log_json": True})


@pytest.fixture
def echo_route(app: FastAPI) -> FastAPI:
    log = logging.getLogger("quantdesk.test")

    async def login(body: dict[str, str]) -> dict[str, str]:
        # A careless developer logging the whole body must still not leak the secret.
        log.warning("login attempt %s", body)
        return {"ok": "yes"}

    app.add_api_route("/t/login", login, methods=["POST"])
    return app


async def test_secrets_never_reach_the_logs(
    echo_route: FastAPI, client: httpx.AsyncClient, capsys: pytest.CaptureFixture[str]
) -> None:
    response = await client.post(
        f"/t/login?token={SECRET_TOKEN}&api_key={SECRET_KEY}",
        json={"email": "a@example.com", "password": SECRET_PASSWORD},
        headers={"Authorization": f"Bearer {SECRET_TOKEN}", "Cookie": f"session={SECRET_KEY}"},
    )
    assert response.status_code == 200
    echo_route.state.access_log.flush()
    captured = capsys.readouterr().err
    lines = [json.loads(line) for line in captured.splitlines() if line.startswith("{")]
    access = [line for line in lines if line.get("event") == "request"]
    assert access, captured
    assert access[0]["route"] == "/t/login"
    assert access[0]["status"] == 200
    assert access[0]["request_id"] == response.headers["x-request-id"]
    configure_logging("WARNING")
    for secret in (SECRET_PASSWORD, SECRET_TOKEN, SECRET_KEY):
        assert secret not in captured


def test_redact_masks_keys_and_embedded_secrets() -> None:
    event = redact(
        None,
        "info",
        {
            "event": "x",
            "password": "p",
            "headers": {"Authorization": "Bearer abc.def.ghi", "accept": "json"},
            "note": f"retry with Bearer {SECRET_TOKEN} and key {SECRET_KEY}",
            "url": "https://api.example.com/q?symbol=AAPL&apikey=SUPERSECRET",
        },
    )
    assert event["password"] == "[redacted]"
    assert event["headers"] == {"Authorization": "[redacted]", "accept": "json"}
    assert SECRET_TOKEN not in event["note"]
    assert SECRET_KEY not in event["note"]
    assert "SUPERSECRET" not in event["url"]
    assert "symbol=AAPL" in event["url"]


async def test_metrics_by_route_template(client: httpx.AsyncClient) -> None:
    await client.get("/health/live")
    await client.get("/health/live")
    await client.get("/nope/123")
    text = (await client.get("/metrics")).text
    assert (
        'quantdesk_http_requests_total{method="GET",route="/health/live",status="200"} 2.0' in text
    )
    assert 'route="<unmatched>",status="404"' in text
    assert "quantdesk_http_request_duration_seconds_bucket" in text
    assert "quantdesk_http_requests_in_flight" in text
    assert "quantdesk_db_pool_connections_in_use" in text
