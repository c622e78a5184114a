"""Client addresses, unauthenticated traffic and the public endpoints (issue 20, item 7).

- ``X-Forwarded-For`` counts only when the connection comes from a configured proxy, so
  rotating it neither escapes per-address limits nor spoofs addresses in the security log;
- failed authentications are limited per client address before any token is verified;
- ``/health/ready`` answers from a short cache instead of pinging the database every call;
- ``/metrics`` needs a token when one is configured (and is closed in prod without one),
  ``/docs`` and ``/openapi.json`` can be switched off (off by default in prod);
- registration has its own per-address limit.
"""

from __future__ import annotations

import http.client
import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from pydantic import SecretStr
from sqlalchemy import event

from quantdesk.app import create_app
from quantdesk.security.models import SecurityEvent
from quantdesk.settings import Settings
from tests.support.servers import free_port

PROXY = "10.0.0.2"
CLIENT = "203.0.113.50"


@asynccontextmanager
async def serving(settings: Settings, peer: str = CLIENT) -> AsyncIterator[httpx.AsyncClient]:
    application = create_app(settings)
    async with application.router.lifespan_context(application):
        transport = httpx.ASGITransport(app=application, client=(peer, 40000))
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            client.app = application  # type: ignore[attr-defined]
            yield client


def _app(client: httpx.AsyncClient) -> FastAPI:
    application: FastAPI = client.app  # type: ignore[attr-defined]
    return application


async def _failed_logins(client: httpx.AsyncClient, count: int, forwarded: list[str]) -> list[int]:
    statuses = []
    for n in range(count):
        response = await client.post(
            "/api/v1/auth/login",
            json={"email": f"nobody{n}@example.com", "password": "wrong password, long enough"},
            headers={"X-Forwarded-For": forwarded[n % len(forwarded)]},
        )
        statuses.append(response.status_code)
    return statuses


async def test_forwarded_for_from_an_untrusted_peer_is_ignored(settings: Settings) -> None:
    tuned = settings.model_copy(update={"rate_limit_login_ip": "3/minute"})
    async with serving(tuned) as client:
        rotating = [f"198.51.100.{n}" for n in range(10)]
        statuses = await _failed_logins(client, 5, rotating)
    assert statuses[:3] == [401, 401, 401]
    assert statuses[3:] == [429, 429]


async def test_forwarded_for_from_a_trusted_proxy_names_the_client(settings: Settings) -> None:
    tuned = settings.model_copy(
        update={"rate_limit_login_ip": "3/minute", "trusted_proxies": [PROXY]}
    )
    async with serving(tuned, peer=PROXY) as client:
        # Each forwarded client has its own budget...
        spread = await _failed_logins(client, 4, [f"198.51.100.{n}" for n in range(4)])
        # ...and one client is limited however its requests arrive.
        same = await _failed_logins(client, 4, ["198.51.100.77"])
        ctx = _app(client).state.ctx
    assert spread == [401, 401, 401, 401]
    assert same == [401, 401, 401, 429]
    async with ctx.database.session() as db:
        rows = (await db.execute(SecurityEvent.__table__.select())).all()
    addresses = {row.ip for row in rows}
    assert "198.51.100.77" in addresses
    assert PROXY not in addresses


async def test_default_trusts_no_proxy_even_on_loopback(settings: Settings) -> None:
    assert Settings(_env_file=None).trusted_proxies == []
    tuned = settings.model_copy(update={"rate_limit_login_ip": "2/minute"})
    async with serving(tuned, peer="127.0.0.1") as client:
        statuses = await _failed_logins(client, 3, ["198.51.100.1", "198.51.100.2", "198.51.100.3"])
    assert statuses == [401, 401, 429]


async def test_invalid_tokens_are_limited_per_address(settings: Settings) -> None:
    tuned = settings.model_copy(update={"rate_limit_unauthenticated_ip": "5/minute"})
    async with serving(tuned) as client:
        statuses = []
        for n in range(8):
            response = await client.get(
                "/api/v1/users/me", headers={"Authorization": f"Bearer invalid-{n}"}
            )
            statuses.append(response.status_code)
        missing = await client.get("/api/v1/users/me")
        limited = response
    assert statuses[:5] == [401] * 5
    assert statuses[5:] == [429] * 3
    assert missing.status_code == 429
    assert limited.headers["content-type"] == "application/problem+json"
    assert int(limited.headers["retry-after"]) >= 1


async def test_ready_answers_from_a_short_cache(settings: Settings) -> None:
    async with serving(settings) as client:
        ctx = _app(client).state.ctx
        statements: list[str] = []

        def count(*args: Any) -> None:
            statements.append(str(args[2]))

        event.listen(ctx.database.engine.sync_engine, "before_cursor_execute", count)
        try:
            answers = [await client.get("/health/ready") for _ in range(30)]
        finally:
            event.remove(ctx.database.engine.sync_engine, "before_cursor_execute", count)
    assert {answer.status_code for answer in answers} == {200}
    assert sum("SELECT 1" in statement for statement in statements) <= 2


async def test_metrics_token_is_required_when_configured(settings: Settings) -> None:
    tuned = settings.model_copy(
        update={"metrics_token": SecretStr("scrape-token-0123456789abcdef")}
    )
    async with serving(tuned) as client:
        anonymous = await client.get("/metrics")
        wrong = await client.get("/metrics", headers={"Authorization": "Bearer nope"})
        right = await client.get(
            "/metrics", headers={"Authorization": "Bearer scrape-token-0123456789abcdef"}
        )
    assert anonymous.status_code == 401
    assert anonymous.headers["content-type"] == "application/problem+json"
    assert wrong.status_code == 401
    assert right.status_code == 200
    assert "quantdesk_http_requests" in right.text


async def test_docs_can_be_switched_off(settings: Settings) -> None:
    async with serving(settings.model_copy(update={"docs_enabled": False})) as client:
        for path in ("/docs", "/redoc", "/openapi.json"):
            assert (await client.get(path)).status_code == 404, path


def test_prod_defaults_close_docs_and_metrics() -> None:
    prod = Settings(profile="prod", _env_file=None)
    assert prod.docs_open is False
    assert prod.metrics_open is False
    dev = Settings(_env_file=None)
    assert dev.docs_open is True
    assert dev.metrics_open is True


async def test_metrics_are_not_served_in_prod_without_a_token(settings: Settings) -> None:
    # The test profile stands in for prod here: what closes /metrics is metrics_open.
    tuned = settings.model_copy(update={"metrics_public": False})
    async with serving(tuned) as client:
        assert (await client.get("/metrics")).status_code == 404


async def test_registration_is_limited_per_address(settings: Settings) -> None:
    tuned = settings.model_copy(update={"rate_limit_register_ip": "2/hour"})
    async with serving(tuned) as client:
        statuses = [
            (
                await client.post(
                    "/api/v1/auth/register",
                    json={"email": f"new{n}@example.com", "password": "a long enough password 9"},
                )
            ).status_code
            for n in range(3)
        ]
    assert statuses == [201, 201, 429]


@pytest.mark.parametrize("proxies", [["10.0.0.0/8"], ["10.0.0.2", "fd00::1"]])
def test_trusted_proxies_are_parsed_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, proxies: list[str]
) -> None:
    monkeypatch.setenv("QUANTDESK_TRUSTED_PROXIES", ",".join(proxies))
    assert Settings(_env_file=None).trusted_proxies == proxies


def test_quantdesk_serve_ignores_forwarded_for_and_applies_its_keep_alive(tmp_path: Path) -> None:
    """The defect as found: uvicorn believed X-Forwarded-For from 127.0.0.1 by default.  And
    the idle keep-alive is the setting's, not uvicorn's 5 s (a dashboard test's client once
    reused a connection as the server closed it)."""
    port = free_port()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("QUANTDESK_")},
        "QUANTDESK_PROFILE": "test",
        "QUANTDESK_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'q.db'}",
        "QUANTDESK_VAR_DIR": str(tmp_path / "var"),
        "QUANTDESK_PORT": str(port),
        "QUANTDESK_DEMO_DATA": "false",
        "QUANTDESK_LOG_LEVEL": "WARNING",
        "QUANTDESK_RATE_LIMIT_LOGIN_IP": "2/minute",
        "QUANTDESK_HTTP_KEEP_ALIVE_S": "1",
    }
    server = subprocess.Popen(
        [str(Path(sys.executable).parent / "quantdesk"), "serve"],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{base}/health/live", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert server.poll() is None, server.stderr.read() if server.stderr else ""
            assert time.monotonic() < deadline, "quantdesk serve did not come up"
            time.sleep(0.2)
        statuses = [
            httpx.post(
                f"{base}/api/v1/auth/login",
                json={"email": "nobody@example.com", "password": "wrong password, long enough"},
                headers={"X-Forwarded-For": f"198.51.100.{n}"},
                timeout=10,
            ).status_code
            for n in range(3)
        ]
        idle = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        try:
            idle.request("GET", "/health/live")
            answer = idle.getresponse()
            assert (answer.status, answer.read()) == (200, b'{"status":"ok"}')
            assert idle.sock is not None  # kept alive
            started = time.monotonic()
            assert idle.sock.recv(1) == b""  # until the server closes the idle connection
            idle_for = time.monotonic() - started
        finally:
            idle.close()
    finally:
        server.terminate()
        server.wait(timeout=30)
    assert statuses == [401, 401, 429]
    assert 0.5 < idle_for < 4.0  # 1 s asked for; uvicorn's own default would be 5 s
