"""The instrument master: idempotent upserts, validation, lookup, search, chains."""

from __future__ import annotations

import dataclasses
import datetime as dt
from decimal import Decimal

import pytest

from quantdesk.marketdata.domain import Exchange, InstrumentType, OptionType
from quantdesk.marketdata.instruments.service import (
    INSTRUMENT_CURSOR,
    InstrumentFilter,
    InstrumentService,
    UpsertCounts,
)
from quantdesk.platform.db import Database
from quantdesk.platform.exceptions import InvalidInput, NotFound
from tests.marketdata.samples import equity, nifty_future, nifty_option, nse_index

SEP30 = dt.date(2025, 9, 30)
OCT28 = dt.date(2025, 10, 28)


def master() -> list[object]:
    return [
        equity("RELIANCE", "Reliance Industries", isin="INE002A01018"),
        equity("RELIANCE", "Reliance Industries", Exchange.BSE),
        equity("TCS", "Tata Consultancy Services"),
        equity("INFY", "Infosys"),
        equity("AAPL", "Apple Inc", Exchange.NASDAQ),
        nse_index("NIFTY 50"),
        nifty_future(SEP30),
        *(nifty_option(SEP30, k, t) for k in (24500, 24000, 25000) for t in OptionType),
        nifty_option(OCT28, 24500, OptionType.CALL),
    ]


async def seed(database: Database) -> UpsertCounts:
    async with database.session(immediate=True) as session:
        return await InstrumentService(session).upsert_many(master())  # type: ignore[arg-type]


async def test_upsert_is_idempotent_and_updates_changes(md_database: Database) -> None:
    assert await seed(md_database) == UpsertCounts(inserted=14, updated=0, unchanged=0)
    assert await seed(md_database) == UpsertCounts(inserted=0, updated=0, unchanged=14)
    renamed = equity("TCS", "TCS Ltd")
    async with md_database.session(immediate=True) as session:
        counts = await InstrumentService(session).upsert_many([renamed])
    assert counts == UpsertCounts(inserted=0, updated=1, unchanged=0)
    async with md_database.session() as session:
        service = InstrumentService(session)
        assert (await service.get("NSE:TCS")).name == "TCS Ltd"
        page = await service.search(InstrumentFilter(active=None), limit=100)
    assert len(page.items) == 14  # updated in place, never duplicated


async def test_round_trip_keeps_every_field(md_database: Database) -> None:
    await seed(md_database)
    async with md_database.session() as session:
        service = InstrumentService(session)
        option = await service.get("nfo:nifty25sep24500ce")  # keys are case-insensitive
        reliance = await service.get("NSE:RELIANCE")
        index = await service.get("NSE:NIFTY 50")
    assert option == nifty_option(SEP30, 24500, OptionType.CALL)
    assert option.key == "NFO:NIFTY25SEP24500CE"
    assert option.strike == Decimal(24500)
    assert option.lot_size == Decimal(75)
    assert reliance.isin == "INE002A01018"
    assert reliance.tick_size == Decimal("0.05")
    assert index.type is InstrumentType.INDEX


async def test_unknown_and_malformed_keys(md_database: Database) -> None:
    await seed(md_database)
    async with md_database.session() as session:
        service = InstrumentService(session)
        with pytest.raises(NotFound, match="NSE:NOPE"):
            await service.get("NSE:NOPE")
        with pytest.raises(InvalidInput, match="EXCHANGE:SYMBOL"):
            await service.get("RELIANCE")
        with pytest.raises(InvalidInput, match="unknown exchange"):
            await service.get("LSE:VOD")


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"strike": None}, "positive strike"),
        ({"option_type": None}, "option type"),
        ({"expiry": None}, "option contracts need an expiry"),
        ({"underlying": None}, "option contracts need an underlying"),
        ({"tick_size": Decimal(0)}, "tick_size must be positive"),
        ({"lot_size": Decimal(-75)}, "lot_size must be positive"),
        ({"currency": "RUPEES"}, "ISO 4217"),
        ({"symbol": "BAD/SYMBOL"}, "EXCHANGE:SYMBOL"),
        ({"isin": "INE002"}, "isin"),
    ],
)
async def test_invalid_instruments_write_nothing(
    md_database: Database, change: dict[str, object], reason: str
) -> None:
    bad = dataclasses.replace(nifty_option(SEP30, 24500, OptionType.PUT), **change)  # type: ignore[arg-type]
    good = equity("SBIN", "State Bank of India")
    with pytest.raises(InvalidInput, match=reason):
        async with md_database.session(immediate=True) as session:
            await InstrumentService(session).upsert_many([good, bad])
    async with md_database.session() as session:
        with pytest.raises(NotFound):
            await InstrumentService(session).get("NSE:SBIN")


async def test_search_by_prefix_name_and_key(md_database: Database) -> None:
    await seed(md_database)
    async with md_database.session() as session:
        service = InstrumentService(session)

        async def keys(**criteria: object) -> list[str]:
            page = await service.search(InstrumentFilter(**criteria), limit=50)  # type: ignore[arg-type]
            return [i.key for i in page.items]

        assert await keys(q="rel") == ["BSE:RELIANCE", "NSE:RELIANCE"]
        assert await keys(q="consultancy") == ["NSE:TCS"]  # any part of the name
        assert await keys(q="NSE:REL") == ["NSE:RELIANCE"]
        assert await keys(q="nifty 5") == ["NSE:NIFTY 50"]
        assert await keys(q="100%") == []  # LIKE wildcards in input are literal
        assert await keys(exchange=Exchange.NASDAQ) == ["NASDAQ:AAPL"]
        assert await keys(type=InstrumentType.FUTURE) == ["NFO:NIFTY25SEPFUT"]
        assert len(await keys(underlying="nifty", expiry=SEP30)) == 7
        assert await keys(underlying="nifty", expiry=OCT28) == ["NFO:NIFTY25OCT24500CE"]


async def test_search_paginates_with_cursor(md_database: Database) -> None:
    await seed(md_database)
    seen: list[str] = []
    cursor: str | None = None
    async with md_database.session() as session:
        service = InstrumentService(session)
        for _ in range(10):
            page = await service.search(InstrumentFilter(), limit=4, cursor=cursor)
            seen += [i.key for i in page.items]
            cursor = page.next_cursor
            if cursor is None:
                break
    everything = sorted(master(), key=lambda i: (i.symbol, i.exchange.value))  # type: ignore[attr-defined]
    assert seen == [i.key for i in everything]  # type: ignore[attr-defined]
    assert len(seen) == 14
    assert len(set(seen)) == 14


def test_cursor_round_trip_and_tampering() -> None:
    assert INSTRUMENT_CURSOR.decode(INSTRUMENT_CURSOR.encode("NIFTY 50", "NSE")) == (
        "NIFTY 50",
        "NSE",
    )
    for bad in ("not-base64!", "e30", INSTRUMENT_CURSOR.encode("A", "B")[:-3]):
        with pytest.raises(InvalidInput, match="cursor"):
            INSTRUMENT_CURSOR.decode(bad)


async def test_chain_sorted_by_strike_then_call_first(md_database: Database) -> None:
    await seed(md_database)
    async with md_database.session() as session:
        service = InstrumentService(session)
        chain = await service.chain("NIFTY", SEP30)
        expiries = await service.expiries("NIFTY")
        later = await service.expiries("NIFTY", since=dt.date(2025, 10, 1))
        none = await service.chain("NIFTY", dt.date(2025, 12, 30))
    # Numeric order (24000 < 24500 < 25000), which text order of "24000" etc. also gives,
    # so check a strike that would sort wrongly as text too.
    assert [(i.strike, i.option_type) for i in chain] == [
        (Decimal(k), t) for k in (24000, 24500, 25000) for t in (OptionType.CALL, OptionType.PUT)
    ]
    assert expiries == [SEP30, OCT28]
    assert later == [OCT28]
    assert none == []


async def test_chain_orders_strikes_numerically(md_database: Database) -> None:
    options = [nifty_option(SEP30, k, OptionType.CALL) for k in (9500, 10000, 950)]
    async with md_database.session(immediate=True) as session:
        await InstrumentService(session).upsert_many(options)
    async with md_database.session() as session:
        chain = await InstrumentService(session).chain("NIFTY", SEP30, Exchange.NFO)
    assert [i.strike for i in chain] == [Decimal(950), Decimal(9500), Decimal(10000)]
