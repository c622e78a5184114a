"""Exact Decimal and UTC datetime columns round-trip on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import AsyncIterator
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Column, Integer, MetaData, Table, insert, select, text

from quantdesk.platform.db import NOT_MIGRATED, Database, ExactDecimal, UTCDateTime
from quantdesk.platform.exceptions import ServiceUnavailable
from quantdesk.settings import Settings

probe_metadata = MetaData()
probe = Table(
    "decimal_probe",
    probe_metadata,
    Column("id", Integer, primary_key=True),
    Column("amount", ExactDecimal),
    Column("at", UTCDateTime),
)


@pytest.fixture
async def database(settings: Settings) -> AsyncIterator[Database]:
    db = Database(settings)
    async with db.engine.begin() as conn:
        await conn.run_sync(probe_metadata.create_all)
    yield db
    await db.dispose()


money = st.decimals(
    allow_nan=False,
    allow_infinity=False,
    min_value=Decimal("-1e18"),
    max_value=Decimal("1e18"),
    places=None,
).filter(lambda d: len(d.as_tuple().digits) <= 38)


async def test_decimals_round_trip_exactly(database: Database) -> None:
    # hypothesis drives a synchronous inner function; each example runs on the live loop
    # through one batch insert, so the database sees hundreds of distinct values.
    collected: list[Decimal] = []

    @settings(max_examples=300, suppress_health_check=list(HealthCheck), deadline=None)
    @given(money)
    def gather(value: Decimal) -> None:
        collected.append(value)

    gather()
    collected += [Decimal("0.10"), Decimal("-0.000000001"), Decimal("123456789012345678.123456789")]
    async with database.session() as session:
        await session.execute(
            insert(probe), [{"id": i, "amount": v} for i, v in enumerate(collected)]
        )
    async with database.session() as session:
        rows = (await session.execute(select(probe.c.id, probe.c.amount))).all()
    stored = {row.id: row.amount for row in rows}
    for i, value in enumerate(collected):
        assert isinstance(stored[i], Decimal)
        assert stored[i] == value, (value, stored[i])
        assert (
            stored[i].as_tuple() == value.as_tuple() or stored[i].normalize() == value.normalize()
        )


async def test_float_money_is_refused(database: Database) -> None:
    with pytest.raises(Exception, match="ExactDecimal needs Decimal"):
        async with database.session() as session:
            await session.execute(insert(probe), [{"id": 1, "amount": 0.1}])


async def test_datetimes_are_utc_aware(database: Database) -> None:
    ist = dt.timezone(dt.timedelta(hours=5, minutes=30))
    local = dt.datetime(2025, 9, 30, 15, 30, 0, 123456, tzinfo=ist)
    async with database.session() as session:
        await session.execute(insert(probe), [{"id": 1, "at": local}])
    async with database.session() as session:
        value = (await session.execute(select(probe.c.at))).scalar_one()
    assert value == local
    assert value.tzinfo == dt.UTC
    assert value.hour == 10

    with pytest.raises(Exception, match="timezone-aware"):
        async with database.session() as session:
            await session.execute(insert(probe), [{"id": 2, "at": dt.datetime(2025, 1, 1)}])


async def test_unit_of_work_rolls_back_on_error(database: Database) -> None:
    with pytest.raises(RuntimeError):
        async with database.session() as session:
            await session.execute(insert(probe), [{"id": 7, "amount": Decimal(1)}])
            raise RuntimeError("boom")
    async with database.session() as session:
        count = (await session.execute(text("SELECT count(*) FROM decimal_probe"))).scalar_one()
    assert count == 0


async def test_immediate_transactions_serialise_read_modify_write(database: Database) -> None:
    """Concurrent increments through locked transactions never lose an update."""
    async with database.session() as session:
        await session.execute(insert(probe), [{"id": 1, "amount": Decimal(0)}])

    async def increment() -> None:
        async with database.session(immediate=True) as session:
            query = select(probe.c.amount).where(probe.c.id == 1)
            if database.dialect == "postgresql":
                query = query.with_for_update()
            current = (await session.execute(query)).scalar_one()
            await asyncio.sleep(0)
            await session.execute(
                probe.update().where(probe.c.id == 1).values(amount=current + Decimal("0.01"))
            )

    await asyncio.gather(*(increment() for _ in range(25)))
    async with database.session() as session:
        total = (await session.execute(select(probe.c.amount))).scalar_one()
    assert total == Decimal("0.25")


async def test_unreachable_database_is_service_unavailable(settings: Settings) -> None:
    broken = settings.model_copy(
        update={"database_url": "postgresql+asyncpg://nobody@127.0.0.1:1/none"}
    )
    database = Database(broken)
    with pytest.raises(ServiceUnavailable) as caught:
        async with database.session() as session:
            await session.execute(text("SELECT 1"))
    assert caught.value.dependency == "database"
    await database.dispose()


async def test_a_server_that_accepts_and_never_answers_is_unavailable_after_the_timeout(
    settings: Settings,
) -> None:
    """Up but silent (a stalled host, a dropped handshake): the wait to open a connection is
    ``db_connect_timeout_s``, then a 503, not a hang."""
    accepted: list[asyncio.StreamWriter] = []

    async def hold(_reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted.append(writer)  # read nothing, answer nothing

    server = await asyncio.start_server(hold, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    silent = settings.model_copy(
        update={
            "database_url": f"postgresql+asyncpg://nobody@127.0.0.1:{port}/none",
            "db_connect_timeout_s": 0.2,
        }
    )
    database = Database(silent)
    started = asyncio.get_running_loop().time()
    try:
        with pytest.raises(ServiceUnavailable) as caught:
            async with database.session() as session:
                await session.execute(text("SELECT 1"))
        waited = asyncio.get_running_loop().time() - started
    finally:
        await database.dispose()
        server.close()
        for writer in accepted:
            writer.close()
    assert caught.value.dependency == "database"
    assert accepted  # it did connect: the timeout, not a refusal, ended the wait
    assert 0.2 <= waited < 1.9  # the setting bounds it (under the fixed 2 s it replaced)


@pytest.mark.parametrize(
    "statement", ["SELECT * FROM not_migrated_yet", "SELECT not_a_column FROM decimal_probe"]
)
async def test_a_missing_table_or_column_says_the_database_is_not_migrated(
    database: Database, statement: str
) -> None:
    """Not "unreachable": the database answered; its schema is older than this release."""
    with pytest.raises(ServiceUnavailable) as caught:
        async with database.session() as session:
            await session.execute(text(statement))
    assert caught.value.detail == NOT_MIGRATED
    assert "quantdesk migrate upgrade" in NOT_MIGRATED
