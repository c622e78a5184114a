"""The outbox tail's open gaps: an event whose id the tail passed before its transaction
committed reaches its client on the next poll, not at the next reconcile."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import orjson
import pytest
from sqlalchemy import select, text

from quantdesk.platform.db import utcnow
from quantdesk.settings import Settings
from quantdesk.stream.service import MAX_OPEN_GAPS, OpenGaps, stream_service
from quantdesk.trading.models import TradingAccount, TradingEvent
from tests.conftest import base_settings
from tests.stream.conftest import FAST, Desk, Served, open_stream
from tests.trading.conftest import new_key


def test_the_ids_skipped_between_reads_are_gaps_until_filled_or_expired() -> None:
    gaps = OpenGaps(keep_s=2.0)
    gaps.skipped(10, [11, 14, 15, 18], now=100.0)
    assert gaps.open(now=100.0) == [12, 13, 16, 17]
    gaps.filled([13, 17, 99])
    assert gaps.open(now=101.0) == [12, 16]
    gaps.skipped(18, [20], now=101.5)
    assert gaps.open(now=102.0) == [12, 16, 19]
    assert gaps.open(now=102.1) == [19]  # the first two expired at 102.0
    assert gaps.open(now=103.6) == []


def test_the_open_gaps_are_bounded() -> None:
    gaps = OpenGaps(keep_s=2.0)
    gaps.skipped(0, [5, 3 * MAX_OPEN_GAPS], now=0.0)
    open_now = gaps.open(now=0.0)
    # The newest are kept: the oldest have waited longest and the reconcile covers them.
    assert open_now == list(range(2 * MAX_OPEN_GAPS, 3 * MAX_OPEN_GAPS))
    gaps.skipped(3 * MAX_OPEN_GAPS, [3 * MAX_OPEN_GAPS + 3], now=0.0)
    open_now = gaps.open(now=0.0)
    assert len(open_now) == MAX_OPEN_GAPS
    assert open_now[-2:] == [3 * MAX_OPEN_GAPS + 1, 3 * MAX_OPEN_GAPS + 2]
    assert open_now[0] == 2 * MAX_OPEN_GAPS + 2


@pytest.fixture
def settings(database_url: str, redis_url: str | None, tmp_path: Path) -> Settings:
    # A reconcile that never comes within the test: only the gap lookup can deliver.  The
    # reconnect test ends every connection of the database, the pool's too: pinged at every
    # checkout, the pool replaces them before a request uses one (otherwise a connection used
    # within QUANTDESK_DB_PING_AFTER_IDLE_S fails its request with a 503, as documented).
    # The tail holds its own connection, not checked out per poll: its reconnect is untouched.
    return base_settings(database_url, tmp_path / "var", redis_url).model_copy(
        update={**FAST, "stream_reconcile_s": 600.0, "db_ping_after_idle_s": 0.0}
    )


@pytest.mark.postgres_only  # SQLite's one writer commits in id order
async def test_an_event_committed_behind_the_tail_arrives_on_the_next_poll(
    served: Served, desk: Desk
) -> None:
    r = await desk.client.post("/api/v1/accounts", json={"name": "b"}, headers=desk.trader.headers)
    assert r.status_code == 201, r.text
    other = r.json()["id"]
    client = await open_stream(served.url, desk.client, desk.trader)
    for n, account_id in enumerate((desk.account_id, other)):
        ack = await client.op(op="subscribe", id=f"s{n}", channel="account", account_id=account_id)
        assert ack["type"] == "ack", ack
    # A transaction takes an outbox id for the desk's account and does not commit yet...
    async with desk.ctx.database.session() as db:
        account = await db.scalar(
            select(TradingAccount)
            .where(TradingAccount.id == uuid.UUID(desk.account_id))
            .with_for_update()
        )
        assert account is not None
        account.event_seq += 1
        late = TradingEvent(
            account_id=account.id,
            user_id=account.user_id,
            seq=account.event_seq,
            type="account",
            payload=orjson.dumps({"marker": "late"}).decode(),
            created_at=utcnow(),
        )
        db.add(late)
        await db.flush()
        # ...while another account's deposit, with a later id, commits and is relayed.
        headers = {**desk.trader.headers, "Idempotency-Key": new_key()}
        r = await desk.client.post(
            f"/api/v1/accounts/{other}/deposits", json={"amount": "5"}, headers=headers
        )
        assert r.status_code == 201, r.text
        await client.until(lambda f: f["type"] == "account" and f["account_id"] == other)
        await asyncio.sleep(0.1)  # the tail polls past the late id meanwhile
        await db.commit()
    arrived = await client.until(
        lambda f: f["type"] == "account" and f["account_id"] == desk.account_id, within_s=3.0
    )
    assert arrived["seq"] == late.seq
    assert arrived["account"] == {"marker": "late"}
    await client.close()


@pytest.mark.postgres_only  # a server-side end of the tail's own connection
async def test_the_tail_reconnects_when_its_connection_is_ended(served: Served, desk: Desk) -> None:
    client = await open_stream(served.url, desk.client, desk.trader)
    ack = await client.op(op="subscribe", id="s", channel="account", account_id=desk.account_id)
    assert ack["type"] == "ack", ack
    service = stream_service(desk.ctx)
    assert service is not None
    tail = service.tail
    async with asyncio.timeout(5):
        while tail.reader is None:  # noqa: ASYNC110 - the tail's first poll connects it
            await asyncio.sleep(0.02)
    async with desk.ctx.database.session() as db:
        ended = await db.scalar(
            text(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
        )
    assert ended >= 1
    headers = {**desk.trader.headers, "Idempotency-Key": new_key()}
    r = await desk.client.post(desk.url("/deposits"), json={"amount": "7"}, headers=headers)
    assert r.status_code == 201, r.text
    deposited = await client.until(lambda f: f["type"] == "account", within_s=5.0)
    assert deposited["account"]["cash"] == r.json()["cash"]
    await client.close()
