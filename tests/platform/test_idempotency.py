"""``Idempotency-Key`` through a test-only money-moving router (no production route uses it
yet): replay, mismatch, expiry, failures, per-user keys, and real concurrent requests on
SQLite and, in the PostgreSQL pass, on overlapping transactions."""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from dataclasses import dataclass
from decimal import Decimal

import httpx
import orjson
import pytest
from fastapi import APIRouter, FastAPI
from pydantic import BaseModel
from sqlalchemy import Column, MetaData, String, Table, Uuid, func, insert, select, update
from starlette.responses import Response

from quantdesk.platform.context import AppContext, DbSession
from quantdesk.platform.db import utcnow
from quantdesk.platform.exceptions import InsufficientFunds, ServiceUnavailable
from quantdesk.platform.idempotency import (
    HEADER,
    REPLAYED_HEADER,
    TTL,
    IdempotencyRequired,
    Idempotent,
    parse_key,
)
from quantdesk.platform.models import IdempotencyRecord
from quantdesk.security.policy import RequireTrader
from tests.support.concurrency import Call, burst, repeat
from tests.support.factories import TestUser, Users

# The money-moving objects of the test router; a table of the test's own, not of the app.
TEST_TABLES = MetaData()
transfers = Table(
    "test_transfers",
    TEST_TABLES,
    Column("id", Uuid, primary_key=True),
    Column("user_id", Uuid, nullable=False),
    Column("amount", String(32), nullable=False),
)
URL = "/api/v1/test/transfers"


class TransferIn(BaseModel):
    amount: Decimal
    memo: str = ""


class TransferOut(BaseModel):
    id: uuid.UUID
    amount: Decimal
    memo: str


@dataclass
class Calls:
    """How often the endpoint really ran (a replay does not run it)."""

    count: int = 0


@pytest.fixture
async def calls(app: FastAPI) -> Calls:
    ctx: AppContext = app.state.ctx
    # A writer like any other: the app's background tasks may hold SQLite's write lock, and a
    # deferred DDL transaction that meets it fails at once instead of waiting its turn.
    async with ctx.database.session(immediate=True) as session:
        await session.run_sync(lambda sync: TEST_TABLES.create_all(sync.connection()))
    counter = Calls()
    router = APIRouter(prefix="/api/v1/test")

    async def transfer(db: DbSession, user_id: uuid.UUID, body: TransferIn) -> TransferOut:
        counter.count += 1
        transfer_id = uuid.uuid4()
        await db.execute(
            insert(transfers).values(id=transfer_id, user_id=user_id, amount=str(body.amount))
        )
        # Widen the race: the concurrent tests must overlap while this one is in flight.
        await asyncio.sleep(0.02)
        if body.amount > 100:
            raise InsufficientFunds("the cash balance is 100.00")  # after writing: rolled back
        if body.memo == "outage":
            raise ServiceUnavailable("the ledger is down", dependency="ledger")
        return TransferOut(id=transfer_id, amount=body.amount, memo=body.memo)

    @router.post("/transfers", status_code=201, response_model=TransferOut)
    async def create_transfer(
        body: TransferIn, principal: RequireTrader, db: DbSession, idempotency: Idempotent
    ) -> Response:
        return await idempotency(principal.user_id, lambda: transfer(db, principal.user_id, body))

    @router.post("/strict-transfers", status_code=201, response_model=TransferOut)
    async def create_strict_transfer(
        body: TransferIn, principal: RequireTrader, db: DbSession, idempotency: IdempotencyRequired
    ) -> Response:
        return await idempotency(principal.user_id, lambda: transfer(db, principal.user_id, body))

    app.include_router(router)
    return counter


async def _transfers(app: FastAPI, user_id: uuid.UUID | None = None) -> int:
    ctx: AppContext = app.state.ctx
    query = select(func.count()).select_from(transfers)
    if user_id is not None:
        query = query.where(transfers.c.user_id == user_id)
    async with ctx.database.session() as db:
        return int((await db.execute(query)).scalar_one())


def _post(user: TestUser, body: object, key: str | None = None, url: str = URL) -> Call:
    headers = dict(user.headers)
    if key is not None:
        headers[HEADER] = key
    return Call("POST", url, json=body, headers=headers)


async def _send(client: httpx.AsyncClient, call: Call) -> httpx.Response:
    return await client.request(call.method, call.url, json=call.json, headers=dict(call.headers))


async def test_same_key_and_body_replays_the_first_answer(
    app: FastAPI, client: httpx.AsyncClient, users: Users, calls: Calls
) -> None:
    user = await users.logged_in()
    first = await _send(client, _post(user, {"amount": "25.50", "memo": "rent"}, "order-1"))
    assert first.status_code == 201, first.text
    assert first.json()["amount"] == "25.50"
    assert REPLAYED_HEADER not in first.headers
    # Key order and whitespace do not make it another request.
    again = await client.post(
        URL,
        content=b'{ "memo": "rent",\n  "amount": "25.50" }',
        headers={**user.headers, HEADER: "order-1", "content-type": "application/json"},
    )
    assert again.status_code == 201
    assert again.content == first.content  # byte for byte
    assert again.headers[REPLAYED_HEADER] == "true"
    assert again.headers["content-type"] == "application/json"
    assert calls.count == 1
    assert await _transfers(app) == 1


async def test_same_key_with_another_body_is_422_and_runs_nothing(
    app: FastAPI, client: httpx.AsyncClient, users: Users, calls: Calls
) -> None:
    user = await users.logged_in()
    assert (await _send(client, _post(user, {"amount": "10"}, "k"))).status_code == 201
    for other in (
        _post(user, {"amount": "11"}, "k"),
        _post(user, {"amount": "10", "memo": "rent"}, "k"),
        _post(user, {"amount": "10"}, "k", url=URL.replace("transfers", "strict-transfers")),
    ):
        response = await _send(client, other)
        assert response.status_code == 422, response.text
        assert response.headers["content-type"] == "application/problem+json"
        assert response.json()["field"] == HEADER
        assert "different request" in response.json()["detail"]
    assert calls.count == 1
    assert await _transfers(app) == 1


async def test_keys_are_per_user(
    app: FastAPI, client: httpx.AsyncClient, users: Users, calls: Calls
) -> None:
    alice, bob = await users.logged_in(), await users.logged_in()
    body = {"amount": "5"}
    mine = await _send(client, _post(alice, body, "shared-key"))
    theirs = await _send(client, _post(bob, body, "shared-key"))
    assert mine.status_code == theirs.status_code == 201
    assert mine.json()["id"] != theirs.json()["id"]
    assert REPLAYED_HEADER not in theirs.headers
    assert await _transfers(app, alice.id) == await _transfers(app, bob.id) == 1


async def test_without_a_key_every_request_runs(
    app: FastAPI, client: httpx.AsyncClient, users: Users, calls: Calls
) -> None:
    user = await users.logged_in()
    for _ in range(2):
        assert (await _send(client, _post(user, {"amount": "1"}))).status_code == 201
    assert await _transfers(app) == 2


# Bytes on the wire: "é" is what a client sending UTF-8 puts there.
@pytest.mark.parametrize("key", [b"", b" leading-space", "é".encode(), b"x" * 256, b"tab\there"])
async def test_a_malformed_key_is_400(
    client: httpx.AsyncClient, users: Users, calls: Calls, key: bytes
) -> None:
    user = await users.logged_in()
    headers = {name.encode(): value.encode() for name, value in user.headers.items()}
    headers[HEADER.encode()] = key
    response = await client.post(URL, json={"amount": "1"}, headers=headers)
    assert response.status_code == 400, response.text
    assert response.json()["field"] == HEADER
    assert calls.count == 0


async def test_a_required_key_that_is_missing_is_400(
    client: httpx.AsyncClient, users: Users, calls: Calls
) -> None:
    user = await users.logged_in()
    strict = URL.replace("transfers", "strict-transfers")
    missing = await _send(client, _post(user, {"amount": "1"}, url=strict))
    assert missing.status_code == 400
    assert HEADER in missing.json()["detail"]
    assert (await _send(client, _post(user, {"amount": "1"}, "k", url=strict))).status_code == 201


def test_structured_field_and_bare_keys_are_the_same_key() -> None:
    assert parse_key('"8e03978e-40d5-43e8-bc93-6894a57f9324"') == (
        "8e03978e-40d5-43e8-bc93-6894a57f9324"
    )
    assert parse_key("order 1") == "order 1"


async def test_the_answer_expires_after_24_hours(
    app: FastAPI, client: httpx.AsyncClient, users: Users, calls: Calls
) -> None:
    user = await users.logged_in()
    first = await _send(client, _post(user, {"amount": "7"}, "daily"))
    ctx: AppContext = app.state.ctx

    async def age_record(by: dt.timedelta) -> None:
        # Moved in the database rather than waited for, as the API-key expiry test does.
        async with ctx.database.session(immediate=True) as db:
            await db.execute(
                update(IdempotencyRecord)
                .where(IdempotencyRecord.user_id == user.id)
                .values(created_at=utcnow() - by)
            )

    await age_record(TTL - dt.timedelta(minutes=1))
    replay = await _send(client, _post(user, {"amount": "7"}, "daily"))
    assert replay.headers[REPLAYED_HEADER] == "true"
    assert replay.content == first.content

    await age_record(TTL + dt.timedelta(seconds=1))
    fresh = await _send(client, _post(user, {"amount": "7"}, "daily"))
    assert fresh.status_code == 201
    assert REPLAYED_HEADER not in fresh.headers
    assert fresh.json()["id"] != first.json()["id"]
    assert calls.count == 2
    # Past its 24 hours the key may even carry another request.
    await age_record(TTL + dt.timedelta(seconds=1))
    assert (await _send(client, _post(user, {"amount": "8"}, "daily"))).status_code == 201
    assert await _transfers(app) == 3


async def test_a_refusal_from_the_endpoint_is_stored_and_replayed(
    app: FastAPI, client: httpx.AsyncClient, users: Users, calls: Calls
) -> None:
    """Stripe's rule: once the endpoint ran, its answer -- a 4xx too -- is the key's answer;
    what the endpoint wrote before refusing is rolled back."""
    user = await users.logged_in()
    refused = await _send(client, _post(user, {"amount": "500"}, "big"))
    assert refused.status_code == 422
    assert refused.headers["content-type"] == "application/problem+json"
    assert refused.json()["type"].endswith("insufficient-funds")
    again = await _send(client, _post(user, {"amount": "500"}, "big"))
    assert again.status_code == 422
    assert again.content == refused.content
    assert again.headers[REPLAYED_HEADER] == "true"
    assert calls.count == 1
    assert await _transfers(app) == 0


async def test_a_server_side_failure_is_not_stored(
    app: FastAPI, client: httpx.AsyncClient, users: Users, calls: Calls
) -> None:
    """A 5xx rolled the unit of work back: nothing happened, so the retry runs again."""
    user = await users.logged_in()
    for _ in range(2):
        failed = await _send(client, _post(user, {"amount": "1", "memo": "outage"}, "flaky"))
        assert failed.status_code == 503
        assert REPLAYED_HEADER not in failed.headers
    assert calls.count == 2
    ctx: AppContext = app.state.ctx
    async with ctx.database.session() as db:
        stored = await db.execute(select(func.count()).select_from(IdempotencyRecord))
        assert stored.scalar_one() == 0
    assert await _transfers(app) == 0


async def test_concurrent_requests_with_one_key_create_one_object(
    app: FastAPI, client: httpx.AsyncClient, users: Users, calls: Calls
) -> None:
    user = await users.logged_in()
    race = await repeat(client, _post(user, {"amount": "42.00"}, "double-click"), 8)
    assert race.statuses == [201] * 8, race.statuses
    assert {orjson.dumps(o.body) for o in race.outcomes} == {orjson.dumps(race.outcomes[0].body)}
    replayed = [o for o in race.outcomes if o.headers.get(REPLAYED_HEADER) == "true"]
    assert len(replayed) == 7
    assert calls.count == 1
    assert await _transfers(app, user.id) == 1


async def test_concurrent_requests_with_different_keys_each_create_one(
    app: FastAPI, client: httpx.AsyncClient, users: Users, calls: Calls
) -> None:
    user = await users.logged_in()
    race = await burst(client, [_post(user, {"amount": "1"}, f"key-{n}") for n in range(6)])
    assert race.statuses == [201] * 6
    assert len({o.body["id"] for o in race.outcomes}) == 6
    assert await _transfers(app, user.id) == 6


async def test_concurrent_refusals_with_one_key_run_once(
    app: FastAPI, client: httpx.AsyncClient, users: Users, calls: Calls
) -> None:
    user = await users.logged_in()
    race = await repeat(client, _post(user, {"amount": "1000"}, "too-much"), 5)
    assert race.statuses == [422] * 5
    assert calls.count == 1
    assert await _transfers(app) == 0
