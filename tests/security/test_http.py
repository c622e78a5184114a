"""HTTP hardening: security headers on every kind of response, body limits, CSRF, CORS,
trusted hosts."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI

from quantdesk.app import create_app
from quantdesk.platform.ratelimit import RateLimitDecision
from quantdesk.security.http import DOCS_CSP, SecurityHeaders
from quantdesk.security.ratelimiting import SCOPE_STATE_KEY
from quantdesk.settings import Settings
from tests.conftest import TestUser, UserFactory

COMMON_HEADERS = {
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "no-referrer",
}


def _assert_hardened(response: httpx.Response) -> None:
    for name, value in COMMON_HEADERS.items():
        assert response.headers.get(name) == value, (response.request.url, name)
    assert "camera=()" in response.headers["permissions-policy"]
    assert "frame-ancestors 'none'" in response.headers["content-security-policy"]


async def test_headers_on_json_problem_and_docs(
    client: httpx.AsyncClient, make_user: UserFactory
) -> None:
    user = await make_user()
    responses = {
        "json": await client.get("/health/live"),
        "api json": await client.get("/api/v1/users/me", headers=user.headers),
        "401 problem": await client.get("/api/v1/users/me"),
        "404 problem": await client.get("/nowhere"),
        "405 problem": await client.delete("/health/live"),
        "422 problem": await client.post("/api/v1/auth/login", json={}),
        "docs html": await client.get("/docs"),
        "openapi": await client.get("/openapi.json"),
        "metrics": await client.get("/metrics"),
    }
    for name, response in responses.items():
        assert response.status_code < 500, name
        _assert_hardened(response)
    assert responses["json"].headers["content-security-policy"].startswith("default-src 'none'")
    assert "script-src 'self';" in responses["docs html"].headers["content-security-policy"]
    assert responses["api json"].headers["cache-control"] == "no-store"
    assert "strict-transport-security" not in responses["json"].headers


async def test_hsts_when_enabled(settings: Settings) -> None:
    application = create_app(settings.model_copy(update={"hsts": True}))
    async with application.router.lifespan_context(application):
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url="https://t") as client:
            response = await client.get("/health/live")
    assert response.headers["strict-transport-security"].startswith("max-age=63072000")


async def test_openapi_declares_bearer_auth(client: httpx.AsyncClient) -> None:
    spec = (await client.get("/openapi.json")).json()
    assert spec["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"
    assert spec["paths"]["/api/v1/users/me"]["get"]["security"] == [{"HTTPBearer": []}]
    assert "security" not in spec["paths"]["/api/v1/auth/login"]["post"]


# -- body limits ---------------------------------------------------------------------------


@pytest.fixture
async def small_limits(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    tuned = settings.model_copy(update={"max_json_body_bytes": 2048, "max_upload_body_bytes": 8192})
    application = create_app(tuned)
    async with application.router.lifespan_context(application):
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            yield client


def _assert_413(response: httpx.Response) -> None:
    assert response.status_code == 413, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["type"] == "urn:quantdesk:problem:payload-too-large"
    _assert_hardened(response)


async def test_declared_oversize_body_is_refused(small_limits: httpx.AsyncClient) -> None:
    body = b'{"email": "a@b.co", "password": "' + b"x" * 4000 + b'"}'
    response = await small_limits.post(
        "/api/v1/auth/login", content=body, headers={"content-type": "application/json"}
    )
    _assert_413(response)


async def test_lying_content_length_is_cut_off_while_reading(
    small_limits: httpx.AsyncClient,
) -> None:
    body = b'{"email": "a@b.co", "password": "' + b"x" * 4000 + b'"}'
    response = await small_limits.post(
        "/api/v1/auth/login",
        content=body,
        headers={"content-type": "application/json", "content-length": "40"},
    )
    _assert_413(response)


async def test_chunked_body_without_length_is_cut_off(small_limits: httpx.AsyncClient) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        yield b'{"email": "a@b.co", "password": "'
        for _ in range(10):
            yield b"x" * 500
        yield b'"}'

    response = await small_limits.post(
        "/api/v1/auth/login", content=chunks(), headers={"content-type": "application/json"}
    )
    _assert_413(response)


async def test_uploads_have_their_own_larger_limit(small_limits: httpx.AsyncClient) -> None:
    within = await small_limits.post(
        "/api/v1/auth/login", content=b"a" * 4000, headers={"content-type": "text/csv"}
    )
    assert within.status_code != 413
    beyond = await small_limits.post(
        "/api/v1/auth/login", content=b"a" * 9000, headers={"content-type": "text/csv"}
    )
    _assert_413(beyond)


async def test_invalid_content_length_is_400(small_limits: httpx.AsyncClient) -> None:
    response = await small_limits.post(
        "/api/v1/auth/login", content=b"{}", headers={"content-length": "abc"}
    )
    assert response.status_code == 400


# -- CSRF with cookie sign-in --------------------------------------------------------------


async def test_cookie_session_needs_csrf_token_and_origin(
    client: httpx.AsyncClient, make_user: UserFactory
) -> None:
    user = await make_user()
    login = await client.post(
        "/api/v1/auth/login",
        json={"email": user.email, "password": user.password, "cookie": True},
    )
    assert login.status_code == 200
    body = login.json()
    assert body["token_type"] == "cookie"
    assert "access_token" not in body
    cookies = login.headers.get_list("set-cookie")
    access = next(c for c in cookies if c.startswith("qd_access="))
    assert "HttpOnly" in access
    assert "SameSite=strict" in access
    assert any(c.startswith("qd_refresh=") and "Path=/api/v1/auth" in c for c in cookies)
    csrf = body["csrf_token"]
    assert client.cookies.get("qd_csrf") == csrf

    # Safe methods work with the cookie alone.
    assert (await client.get("/api/v1/users/me")).status_code == 200
    origin = {"Origin": "http://testserver"}
    missing_token = await client.post("/api/v1/auth/logout", headers=origin)
    assert missing_token.status_code == 403
    assert missing_token.json()["type"] == "urn:quantdesk:problem:csrf-failed"
    tampered = ("y" if csrf[0] == "x" else "x") + csrf[1:]
    wrong_token = await client.post(
        "/api/v1/auth/logout", headers={**origin, "X-CSRF-Token": tampered}
    )
    assert wrong_token.status_code == 403
    foreign = await client.post(
        "/api/v1/auth/logout",
        headers={"Origin": "https://evil.example", "X-CSRF-Token": csrf},
    )
    assert foreign.status_code == 403
    no_origin = await client.post("/api/v1/auth/logout", headers={"X-CSRF-Token": csrf})
    assert no_origin.status_code == 403
    # Refresh from the cookie, CSRF-checked too, rotates the cookies.
    refreshed = await client.post("/api/v1/auth/refresh", headers={**origin, "X-CSRF-Token": csrf})
    assert refreshed.status_code == 200, refreshed.text
    new_csrf = refreshed.json()["csrf_token"]
    ok = await client.post("/api/v1/auth/logout", headers={**origin, "X-CSRF-Token": new_csrf})
    assert ok.status_code == 204
    assert (await client.get("/api/v1/users/me")).status_code == 401


async def test_bearer_requests_without_session_cookies_are_exempt_from_csrf(
    client: httpx.AsyncClient, make_user: UserFactory
) -> None:
    user = await make_user()
    response = await client.post("/api/v1/auth/logout", headers=user.headers)
    assert response.status_code == 204


async def _cookie_login(client: httpx.AsyncClient, user: TestUser) -> str:
    login = await client.post(
        "/api/v1/auth/login",
        json={"email": user.email, "password": user.password, "cookie": True},
    )
    assert login.status_code == 200, login.text
    csrf = login.json()["csrf_token"]
    assert isinstance(csrf, str)
    return csrf


HOSTILE = {"Origin": "https://evil.example"}


@pytest.mark.parametrize(
    "authorization",
    ["Basic dXNlcjpwYXNzd29yZA==", "Token x", "Bearer ", "Bearer", "bearer  ", "Bearer x"],
)
async def test_an_authorization_header_does_not_switch_csrf_off_for_cookie_sessions(
    client: httpx.AsyncClient, make_user: UserFactory, authorization: str
) -> None:
    """Issue 20 item 6: any Authorization header used to exempt a cookie-authenticated POST."""
    user = await make_user()
    await _cookie_login(client, user)
    response = await client.post(
        "/api/v1/api-keys",
        headers={**HOSTILE, "Authorization": authorization},
        json={"name": "planted", "scopes": ["read"]},
    )
    assert response.status_code == 403, response.text
    assert response.json()["type"] == "urn:quantdesk:problem:csrf-failed"


async def test_a_valid_bearer_with_a_session_cookie_is_still_csrf_checked(
    client: httpx.AsyncClient, make_user: UserFactory
) -> None:
    user = await make_user()
    await _cookie_login(client, user)
    response = await client.post(
        "/api/v1/api-keys",
        headers={**HOSTILE, **user.headers},
        json={"name": "planted", "scopes": ["read"]},
    )
    assert response.status_code == 403, response.text


async def test_hostile_origin_is_refused_even_with_the_right_token(
    client: httpx.AsyncClient, make_user: UserFactory
) -> None:
    user = await make_user()
    csrf = await _cookie_login(client, user)
    response = await client.post(
        "/api/v1/api-keys",
        headers={**HOSTILE, "X-CSRF-Token": csrf},
        json={"name": "k", "scopes": ["read"]},
    )
    assert response.status_code == 403
    same_site = await client.post(
        "/api/v1/api-keys",
        headers={"Origin": "http://testserver", "X-CSRF-Token": csrf},
        json={"name": "k", "scopes": ["read"]},
    )
    assert same_site.status_code == 201, same_site.text


async def test_csrf_token_is_bound_to_its_session(
    app: FastAPI, client: httpx.AsyncClient, make_user: UserFactory
) -> None:
    """A user's CSRF token does not work with another user's (or another) session."""
    victim, attacker = await make_user(), await make_user()
    transport = httpx.ASGITransport(app=app, client=("203.0.113.11", 50000))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as other:
        attacker_csrf = await _cookie_login(other, attacker)
    victim_csrf = await _cookie_login(client, victim)
    # The attacker's token, planted as the victim's CSRF cookie and echoed in the header.
    client.cookies.set("qd_csrf", attacker_csrf)
    same_origin = {"Origin": "http://testserver"}
    refused = await client.post(
        "/api/v1/api-keys",
        headers={**same_origin, "X-CSRF-Token": attacker_csrf},
        json={"name": "planted", "scopes": ["read"]},
    )
    assert refused.status_code == 403, refused.text
    # A second sign-in of the same user is another session: its token does not carry over.
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as second:
        second_csrf = await _cookie_login(second, victim)
    client.cookies.set("qd_csrf", second_csrf)
    other_session = await client.post(
        "/api/v1/api-keys",
        headers={**same_origin, "X-CSRF-Token": second_csrf},
        json={"name": "planted", "scopes": ["read"]},
    )
    assert other_session.status_code == 403, other_session.text
    client.cookies.set("qd_csrf", victim_csrf)
    allowed = await client.post(
        "/api/v1/api-keys",
        headers={**same_origin, "X-CSRF-Token": victim_csrf},
        json={"name": "mine", "scopes": ["read"]},
    )
    assert allowed.status_code == 201, allowed.text


async def test_cookie_refresh_after_the_access_token_expired_is_bound_too(
    client: httpx.AsyncClient, make_user: UserFactory
) -> None:
    """The access cookie outlives its token so the refresh call still names its session."""
    user = await make_user()
    login = await client.post(
        "/api/v1/auth/login",
        json={"email": user.email, "password": user.password, "cookie": True},
    )
    access = next(c for c in login.headers.get_list("set-cookie") if c.startswith("qd_access="))
    refresh = next(c for c in login.headers.get_list("set-cookie") if c.startswith("qd_refresh="))

    def max_age(cookie: str) -> str:
        return next(p for p in cookie.split("; ") if p.lower().startswith("max-age="))

    assert max_age(access) == max_age(refresh)


async def test_forged_csrf_cookie_pair_is_refused(
    client: httpx.AsyncClient, make_user: UserFactory
) -> None:
    """An attacker who can plant cookies still cannot mint a token the server signed."""
    user = await make_user()
    await client.post(
        "/api/v1/auth/login",
        json={"email": user.email, "password": user.password, "cookie": True},
    )
    client.cookies.set("qd_csrf", "planted.0000")
    response = await client.post(
        "/api/v1/auth/logout",
        headers={"Origin": "http://testserver", "X-CSRF-Token": "planted.0000"},
    )
    assert response.status_code == 403


# -- CORS and trusted hosts ----------------------------------------------------------------


@pytest.fixture
async def strict_app(settings: Settings) -> AsyncIterator[FastAPI]:
    tuned = settings.model_copy(
        update={"cors_origins": ["https://app.example"], "trusted_hosts": ["api.example"]}
    )
    application = create_app(tuned)
    async with application.router.lifespan_context(application):
        yield application


async def test_cors_allow_list_and_trusted_hosts(strict_app: FastAPI) -> None:
    transport = httpx.ASGITransport(app=strict_app)
    async with httpx.AsyncClient(transport=transport, base_url="https://api.example") as client:
        preflight = {"Access-Control-Request-Method": "POST"}
        allowed = await client.options(
            "/api/v1/auth/login", headers={"Origin": "https://app.example", **preflight}
        )
        assert allowed.status_code == 200
        assert allowed.headers["access-control-allow-origin"] == "https://app.example"
        assert allowed.headers["access-control-allow-credentials"] == "true"
        refused = await client.options(
            "/api/v1/auth/login", headers={"Origin": "https://evil.example", **preflight}
        )
        assert "access-control-allow-origin" not in refused.headers
        simple = await client.get("/health/live", headers={"Origin": "https://app.example"})
        assert "ratelimit-limit" in simple.headers["access-control-expose-headers"].lower()
    async with httpx.AsyncClient(transport=transport, base_url="https://other.example") as client:
        bad_host = await client.get("/health/live")
        assert bad_host.status_code == 400
        _assert_hardened(bad_host)


def test_security_headers_keep_what_a_response_sets_itself() -> None:
    add = SecurityHeaders(hsts=False).add
    headers = [
        (b"content-type", b"application/json"),
        (b"content-security-policy", b"default-src 'self'"),
    ]
    add({"path": "/api/v1/x", "state": {}}, headers)
    names = [name for name, _ in headers]
    assert names.count(b"content-security-policy") == 1
    assert dict(headers)[b"content-security-policy"] == b"default-src 'self'"
    assert dict(headers)[b"cache-control"] == b"no-store"
    assert b"cross-origin-opener-policy" not in names


def test_security_headers_carry_the_rate_limit_decision() -> None:
    add = SecurityHeaders(hsts=True).add
    decision = RateLimitDecision("api", allowed=False, limit=20, remaining=0, reset_after_s=3)
    headers = [(b"content-type", b"text/html; charset=utf-8")]
    add({"path": "/docs", "state": {SCOPE_STATE_KEY: decision}}, headers)
    found = dict(headers)
    assert found[b"ratelimit-remaining"] == b"0"
    assert found[b"retry-after"] == b"3"
    assert found[b"content-security-policy"] == DOCS_CSP.encode()
    assert found[b"cross-origin-opener-policy"] == b"same-origin"
    assert found[b"strict-transport-security"].startswith(b"max-age=")
    assert b"cache-control" not in found
