"""TOTP enrolment, MFA login, replay protection, recovery codes, disabling."""

from __future__ import annotations

import httpx
import pyotp
from fastapi import FastAPI

from quantdesk.platform.context import AppContext
from quantdesk.platform.db import utcnow
from quantdesk.security.mfa import current_step, totp_at_step
from quantdesk.users.models import User
from tests.conftest import TestUser, UserFactory


async def _enable_mfa(client: httpx.AsyncClient, user: TestUser) -> tuple[str, list[str]]:
    enrol = await client.post("/api/v1/users/me/mfa/totp", headers=user.headers)
    assert enrol.status_code == 200, enrol.text
    body = enrol.json()
    secret = body["secret"]
    assert body["otpauth_uri"].startswith("otpauth://totp/quantdesk:")
    assert body["qr_svg"].startswith("<svg")
    assert body["qr_png"].startswith("data:image/png;base64,")
    assert pyotp.parse_uri(body["otpauth_uri"]).secret == secret
    wrong = await client.post(
        "/api/v1/users/me/mfa/totp/confirm", headers=user.headers, json={"code": "000000"}
    )
    assert wrong.status_code == 401
    confirm = await client.post(
        "/api/v1/users/me/mfa/totp/confirm",
        headers=user.headers,
        json={"code": pyotp.TOTP(secret).now()},
    )
    assert confirm.status_code == 200, confirm.text
    codes = confirm.json()["recovery_codes"]
    assert len(codes) == len(set(codes)) == 10
    return secret, codes


async def _challenge(client: httpx.AsyncClient, user: TestUser) -> str:
    response = await client.post(
        "/api/v1/auth/login", json={"email": user.email, "password": user.password}
    )
    assert response.status_code == 200
    body = response.json()
    assert body["mfa_required"] is True
    assert "access_token" not in body
    return str(body["challenge_token"])


async def test_mfa_login_and_code_replay(
    app: FastAPI, client: httpx.AsyncClient, make_user: UserFactory
) -> None:
    user = await make_user()
    secret, _ = await _enable_mfa(client, user)
    # The confirmation spent the current step; the next step's code is within the drift window.
    code = totp_at_step(secret, current_step() + 1)
    challenge = await _challenge(client, user)
    ok = await client.post(
        "/api/v1/auth/login/mfa", json={"challenge_token": challenge, "code": code}
    )
    assert ok.status_code == 200, ok.text
    assert ok.json()["access_token"]

    # Same code, fresh challenge: refused (a code is good once).
    replay = await client.post(
        "/api/v1/auth/login/mfa",
        json={"challenge_token": await _challenge(client, user), "code": code},
    )
    assert replay.status_code == 401
    # The challenge that already produced a session cannot produce another.
    reuse = await client.post(
        "/api/v1/auth/login/mfa",
        json={"challenge_token": challenge, "code": totp_at_step(secret, current_step() - 1)},
    )
    assert reuse.status_code == 401
    sessions = await client.get(
        "/api/v1/users/me/sessions",
        headers={"Authorization": f"Bearer {ok.json()['access_token']}"},
    )
    assert [s["mfa"] for s in sessions.json() if s["id"] == ok.json()["session_id"]] == [True]


async def test_challenge_is_not_an_access_token(
    client: httpx.AsyncClient, make_user: UserFactory
) -> None:
    user = await make_user()
    await _enable_mfa(client, user)
    challenge = await _challenge(client, user)
    me = await client.get("/api/v1/users/me", headers={"Authorization": f"Bearer {challenge}"})
    assert me.status_code == 401


async def test_recovery_codes_work_once(client: httpx.AsyncClient, make_user: UserFactory) -> None:
    user = await make_user()
    _, codes = await _enable_mfa(client, user)
    first = await client.post(
        "/api/v1/auth/login/mfa",
        json={"challenge_token": await _challenge(client, user), "code": codes[0].lower()},
    )
    assert first.status_code == 200
    again = await client.post(
        "/api/v1/auth/login/mfa",
        json={"challenge_token": await _challenge(client, user), "code": codes[0]},
    )
    assert again.status_code == 401
    second = await client.post(
        "/api/v1/auth/login/mfa",
        json={"challenge_token": await _challenge(client, user), "code": codes[1]},
    )
    assert second.status_code == 200


async def test_regenerate_and_disable_need_password_and_code(
    client: httpx.AsyncClient, make_user: UserFactory
) -> None:
    user = await make_user()
    secret, codes = await _enable_mfa(client, user)
    no_code = await client.post(
        "/api/v1/users/me/mfa/recovery-codes",
        headers=user.headers,
        json={"password": user.password},
    )
    assert no_code.status_code == 401
    fresh = await client.post(
        "/api/v1/users/me/mfa/recovery-codes",
        headers=user.headers,
        json={"password": user.password, "code": codes[0]},
    )
    assert fresh.status_code == 200
    new_codes = fresh.json()["recovery_codes"]
    assert not set(new_codes) & set(codes)
    # Old codes are gone with the regeneration.
    old = await client.post(
        "/api/v1/users/me/mfa/totp/disable",
        headers=user.headers,
        json={"password": user.password, "code": codes[1]},
    )
    assert old.status_code == 401
    wrong_password = await client.post(
        "/api/v1/users/me/mfa/totp/disable",
        headers=user.headers,
        json={"password": "wrong wrong wrong", "code": new_codes[0]},
    )
    assert wrong_password.status_code == 401
    disabled = await client.post(
        "/api/v1/users/me/mfa/totp/disable",
        headers=user.headers,
        json={"password": user.password, "code": totp_at_step(secret, current_step() + 1)},
    )
    assert disabled.status_code == 204
    login = await client.post(
        "/api/v1/auth/login", json={"email": user.email, "password": user.password}
    )
    assert "access_token" in login.json()


async def test_wrong_codes_count_towards_lockout(
    app: FastAPI, client: httpx.AsyncClient, make_user: UserFactory
) -> None:
    user = await make_user()
    await _enable_mfa(client, user)
    challenge = await _challenge(client, user)
    for _ in range(5):  # one challenge allows five attempts, then it is used up
        bad = await client.post(
            "/api/v1/auth/login/mfa", json={"challenge_token": challenge, "code": "123456"}
        )
        assert bad.status_code == 401
    spent = await client.post(
        "/api/v1/auth/login/mfa", json={"challenge_token": challenge, "code": "123456"}
    )
    assert spent.status_code == 401
    assert "used up" in spent.json()["detail"]
    ctx: AppContext = app.state.ctx
    async with ctx.database.session() as db:
        row = await db.get(User, user.id)
        assert row is not None
        assert row.locked_until is not None
        assert row.locked_until > utcnow()
        assert row.lockouts == 1
