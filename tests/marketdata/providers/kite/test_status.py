"""``GET /api/v1/providers/kite/status`` in the states a login cannot fix by itself:
no API key configured, and a stored token the configured keys cannot decrypt."""

from __future__ import annotations

import os

import httpx
from fastapi import FastAPI
from sqlalchemy import select

from quantdesk.app import create_app
from quantdesk.marketdata.providers.kite.auth import TOKEN_FIELD
from quantdesk.marketdata.providers.kite.models import KiteSessionRow
from quantdesk.security.pii import PiiCipher
from quantdesk.settings import Settings
from tests.conftest import UserFactory
from tests.marketdata.providers.kite.fake_kite import ACCESS_TOKEN
from tests.support.factories import Users

STATUS = "/api/v1/providers/kite/status"


async def test_unreadable_when_the_encryption_keys_changed(
    app: FastAPI, client: httpx.AsyncClient, make_user: UserFactory
) -> None:
    viewer = await make_user("viewer")
    assert (await client.get(STATUS, headers=viewer.headers)).json()["state"] == "valid"
    # The token as sealed under a key that is no longer configured (rotated out).
    retired = PiiCipher([("retired", os.urandom(32))], os.urandom(32))
    async with app.state.ctx.database.session(immediate=True) as db:
        row = await db.scalar(select(KiteSessionRow))
        assert row is not None
        row.access_token_encrypted = retired.encrypt(ACCESS_TOKEN, field=TOKEN_FIELD)
    answer = await client.get(STATUS, headers=viewer.headers)
    assert answer.status_code == 200, answer.text
    status = answer.json()
    assert (status["configured"], status["valid"], status["state"]) == (True, False, "unreadable")
    assert status["reason"] == "the stored token does not decrypt with the configured keys"
    assert status["expires_at"] is not None  # the row is there; only its token is lost
    assert ACCESS_TOKEN not in answer.text


async def test_unconfigured_without_an_api_key(settings: Settings) -> None:
    assert settings.kite_api_key is None
    application = create_app(settings)
    async with application.router.lifespan_context(application):
        transport = httpx.ASGITransport(app=application, client=("203.0.113.10", 50000))
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
            viewer = await Users(application, http).logged_in("viewer")
            answer = await http.get(STATUS, headers=viewer.headers)
    assert answer.status_code == 200, answer.text
    assert answer.json() == {
        "configured": False, "valid": False, "state": "unconfigured", "login_time": None,
        "expires_at": None, "reason": "QUANTDESK_KITE_API_KEY is not set", "ticker": None,
    }  # fmt: skip
