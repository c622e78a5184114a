"""Second-factor guessing is limited everywhere a code is checked (issue 20 item 5).

Wrong codes at re-authentication (password change, MFA disable, recovery codes, account
erasure) count towards the account's lockout like failed sign-ins, and each is audited; one
MFA login challenge checks at most five codes even when the guesses arrive all at once
(the ``--db=postgres`` pass runs this on PostgreSQL + Redis, where a get-then-set counter
let 30 concurrent guesses check 10-12 codes).
"""

from __future__ import annotations

import asyncio
import itertools

import httpx
from fastapi import FastAPI
from sqlalchemy import func, select

from quantdesk.platform.context import AppContext
from quantdesk.security.mfa import current_step, totp_at_step
from quantdesk.security.models import SecurityEvent
from tests.conftest import TestUser, UserFactory
from tests.users.test_mfa import _challenge, _enable_mfa

CONCURRENT_GUESSES = 30


async def _events(app: FastAPI, user: TestUser, event_type: str) -> int:
    ctx: AppContext = app.state.ctx
    async with ctx.database.session() as db:
        count = await db.scalar(
            select(func.count())
            .select_from(SecurityEvent)
            .where(SecurityEvent.user_id == user.id, SecurityEvent.event_type == event_type)
        )
    return int(count or 0)


def _wrong_codes(secret: str, count: int) -> list[str]:
    """Six-digit codes that no step near now accepts."""
    here = current_step()
    valid = {totp_at_step(secret, step) for step in range(here - 3, here + 4)}
    candidates = (f"{n:06d}" for n in itertools.count(100_000, 7_919))
    return list(itertools.islice((c for c in candidates if c not in valid), count))


async def test_wrong_codes_at_reauthentication_lock_the_account(
    app: FastAPI, client: httpx.AsyncClient, make_user: UserFactory
) -> None:
    user = await make_user()
    secret, _ = await _enable_mfa(client, user)
    wrong = _wrong_codes(secret, 5)
    new_password = "another long passphrase for this account"
    attempts = [
        (
            "POST",
            "/api/v1/users/me/password",
            {"current_password": user.password, "new_password": new_password, "code": wrong[0]},
        ),
        (
            "POST",
            "/api/v1/users/me/mfa/totp/disable",
            {"password": user.password, "code": wrong[1]},
        ),
        (
            "POST",
            "/api/v1/users/me/mfa/recovery-codes",
            {"password": user.password, "code": "AAAA-BBBB-CCCC-DDDD"},
        ),
        ("DELETE", "/api/v1/users/me", {"password": user.password, "code": wrong[2]}),
        (
            "POST",
            "/api/v1/users/me/mfa/totp/disable",
            {"password": user.password, "code": wrong[3]},
        ),
    ]
    for method, url, body in attempts:
        refused = await client.request(method, url, headers=user.headers, json=body)
        assert refused.status_code == 401, (url, refused.text)

    # Five failures lock the account: now even the right code is refused, before it is
    # checked, and signing in is refused too.
    right = totp_at_step(secret, current_step() + 1)
    locked = await client.post(
        "/api/v1/users/me/mfa/recovery-codes",
        headers=user.headers,
        json={"password": user.password, "code": right},
    )
    assert locked.status_code == 429, locked.text
    assert locked.json()["type"] == "urn:quantdesk:problem:account-locked"
    assert int(locked.headers["retry-after"]) > 60
    login = await client.post(
        "/api/v1/auth/login", json={"email": user.email, "password": user.password}
    )
    assert login.status_code == 429

    assert await _events(app, user, "mfa_failed") == 5
    assert await _events(app, user, "locked_out") == 1


async def test_concurrent_guesses_with_one_challenge_check_at_most_five_codes(
    app: FastAPI, client: httpx.AsyncClient, make_user: UserFactory
) -> None:
    user = await make_user()
    secret, _ = await _enable_mfa(client, user)
    challenge = await _challenge(client, user)
    guesses = _wrong_codes(secret, CONCURRENT_GUESSES)

    responses = await asyncio.gather(
        *(
            client.post("/api/v1/auth/login/mfa", json={"challenge_token": challenge, "code": code})
            for code in guesses
        )
    )

    statuses = sorted({response.status_code for response in responses})
    assert set(statuses) <= {401, 429}, statuses
    checked = [r for r in responses if r.json()["detail"] == "the code is not valid"]
    assert 1 <= len(checked) <= 5
    assert await _events(app, user, "mfa_failed") == len(checked)
