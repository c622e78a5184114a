"""Instrument imports: Kite's dump and the generic CSV; atomic and idempotent."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from quantdesk.marketdata.domain import Exchange, InstrumentType, OptionType
from quantdesk.marketdata.instruments.importers import (
    KITE_COLUMNS,
    ImportFormat,
    import_instruments,
    parse_instruments,
)
from quantdesk.marketdata.instruments.service import InstrumentFilter, InstrumentService
from quantdesk.platform.db import Database
from quantdesk.platform.exceptions import InvalidInput

KITE_HEADER = ",".join(KITE_COLUMNS)
KITE = f"""{KITE_HEADER}
738561,2885,RELIANCE,"RELIANCE INDUSTRIES",0,,,0.05,1,EQ,NSE,NSE
128083204,500325,RELIANCE,"RELIANCE INDUSTRIES",0,,,0.05,1,EQ,BSE,BSE
256265,1001,NIFTY 50,NIFTY 50,0,,,0,0,EQ,INDICES,NSE
9999,77,M&M,"MAHINDRA & MAHINDRA, LTD",0,,,0.05,1,EQ,NSE,NSE
13238786,51714,NIFTY25SEPFUT,"NIFTY",0,2025-09-30,0,0.1,75,FUT,NFO-FUT,NFO
12345602,48225,NIFTY25SEP24500CE,"NIFTY",0,2025-09-30,24500.0,0.05,75,CE,NFO-OPT,NFO
12345858,48226,NIFTY25SEP24500PE,"NIFTY",0,2025-09-30,24500.0,0.05,75,PE,NFO-OPT,NFO
109130759,426292,CRUDEOIL25OCTFUT,"CRUDEOIL",0,2025-10-20,0,1,100,FUT,MCX-FUT,MCX
209130759,826292,SENSEX25SEP80000CE,"SENSEX",0,2025-09-25,80000,0.05,20,CE,BFO-OPT,BFO
"""

GENERIC_HEADER = (
    "exchange,symbol,name,type,currency,lot_size,tick_size,multiplier,underlying,expiry,"
    "strike,option_type,isin,active"
)
GENERIC = f"""{GENERIC_HEADER}
NASDAQ,AAPL,Apple Inc,equity,USD,1,0.01,1,,,,,US0378331005,true
NYSE,SPY,SPDR S&P 500 ETF,etf,,,,,,,,,,
OPRA,SPY251219C00600000,SPY 2025-12-19 600 C,option,USD,1,0.01,100,SPY,2025-12-19,600,C,,yes
"""


def test_kite_rows_map_onto_the_master() -> None:
    parsed = parse_instruments(KITE)
    assert parsed.format is ImportFormat.KITE
    assert parsed.skipped == 2  # MCX and BFO are exchanges quantdesk does not list
    by_key = {i.key: i for i in parsed.instruments}
    assert list(by_key) == [
        "NSE:RELIANCE",
        "BSE:RELIANCE",
        "NSE:NIFTY 50",
        "NSE:M&M",
        "NFO:NIFTY25SEPFUT",
        "NFO:NIFTY25SEP24500CE",
        "NFO:NIFTY25SEP24500PE",
    ]
    reliance = by_key["NSE:RELIANCE"]
    assert (reliance.type, reliance.name, reliance.provider_token) == (
        InstrumentType.EQUITY,
        "RELIANCE INDUSTRIES",
        "738561",
    )
    assert reliance.currency == "INR"
    assert reliance.strike is None
    assert reliance.expiry is None
    index = by_key["NSE:NIFTY 50"]
    # Kite lists indices with tick 0 and lot 0; the master needs positive values.
    assert (index.type, index.tick_size, index.lot_size) == (
        InstrumentType.INDEX,
        Decimal("0.05"),
        Decimal(1),
    )
    assert by_key["NSE:M&M"].name == "MAHINDRA & MAHINDRA, LTD"
    future = by_key["NFO:NIFTY25SEPFUT"]
    assert (future.type, future.underlying, future.expiry, future.strike) == (
        InstrumentType.FUTURE,
        "NIFTY",
        dt.date(2025, 9, 30),
        None,
    )
    assert future.tick_size == Decimal("0.1")
    assert future.lot_size == Decimal(75)
    call = by_key["NFO:NIFTY25SEP24500CE"]
    assert (call.option_type, call.strike, str(call.strike)) == (
        OptionType.CALL,
        Decimal(24500),
        "24500",
    )
    assert by_key["NFO:NIFTY25SEP24500PE"].option_type is OptionType.PUT
    assert call.name == "NIFTY 2025-09-30 24500 CE"


def test_generic_rows_with_defaults() -> None:
    parsed = parse_instruments(GENERIC)
    assert parsed.format is ImportFormat.GENERIC
    assert parsed.skipped == 0
    aapl, spy, option = parsed.instruments
    assert aapl.isin == "US0378331005"
    assert aapl.active
    assert (spy.type, spy.currency, spy.tick_size, spy.lot_size) == (
        InstrumentType.ETF,
        "USD",
        Decimal("0.01"),
        Decimal(1),
    )
    assert (option.exchange, option.option_type, option.multiplier, option.underlying) == (
        Exchange.OPRA,
        OptionType.CALL,
        Decimal(100),
        "SPY",
    )


def test_minimal_generic_header() -> None:
    parsed = parse_instruments("exchange,symbol,type\nNSE,SBIN,equity\n")
    (sbin,) = parsed.instruments
    assert (sbin.name, sbin.currency, sbin.tick_size) == ("SBIN", "INR", Decimal("0.01"))


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty"),
        ("a,b,c\n1,2,3\n", "unrecognised header"),
        (KITE.replace("0.05,75,CE", "abc,75,CE", 1), "line 7: tick_size 'abc' is not a number"),
        (
            KITE.replace("2025-09-30,24500.0,0.05,75,PE", "2025-13-30,24500.0,0.05,75,PE"),
            "line 8: expiry",
        ),
        (KITE.replace(",75,CE,", ",75,XX,"), "line 7: instrument_type 'XX'"),
        (
            KITE.replace("0,2025-09-30,24500.0,0.05,75,CE", "0,,24500.0,0.05,75,CE"),
            "line 7: option contracts need an expiry",
        ),
        (
            KITE.replace(",0,0,EQ,INDICES,NSE", ",0,0,EQ,INDICES"),
            "line 4: expected 12 columns, found 11",
        ),
        (KITE + KITE.splitlines()[1] + "\n", "line 11: NSE:RELIANCE already appears on line 2"),
        (GENERIC.replace("etf", "bond"), "line 3: type 'bond'"),
        (GENERIC.replace("NYSE,SPY", "LSE,SPY"), "line 3: exchange 'LSE'"),
        (GENERIC.replace(",C,,yes", ",X,,yes"), "line 4: option_type 'X'"),
        (GENERIC.replace(",C,,yes", ",C,,maybe"), "line 4: active 'maybe'"),
        (GENERIC.replace("USD,1,0.01,1,,", "USD,1,0,1,,"), "line 2: tick_size must be positive"),
        (GENERIC.replace("600,C", ",C"), "line 4: an option needs a positive strike"),
    ],
)
def test_bad_files_name_the_line_and_reason(text: str, message: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        parse_instruments(text)
    assert message in caught.value.detail


def test_forcing_the_format_checks_its_columns() -> None:
    with pytest.raises(InvalidInput, match="missing column"):
        parse_instruments(GENERIC, ImportFormat.KITE)


async def _all_keys(database: Database) -> list[str]:
    async with database.session() as session:
        page = await InstrumentService(session).search(InstrumentFilter(active=None), limit=500)
    return [i.key for i in page.items]


async def test_import_is_idempotent(md_database: Database) -> None:
    async with md_database.session(immediate=True) as session:
        first = await import_instruments(session, KITE)
    assert (first.inserted, first.updated, first.unchanged, first.skipped) == (7, 0, 0, 2)
    async with md_database.session(immediate=True) as session:
        again = await import_instruments(session, KITE)
    assert (again.inserted, again.updated, again.unchanged) == (0, 0, 7)
    changed = KITE.replace("0.1,75,FUT", "0.05,50,FUT")
    async with md_database.session(immediate=True) as session:
        update = await import_instruments(session, changed)
    assert (update.inserted, update.updated, update.unchanged) == (0, 1, 6)
    assert len(await _all_keys(md_database)) == 7
    async with md_database.session() as session:
        future = await InstrumentService(session).get("NFO:NIFTY25SEPFUT")
    assert future.lot_size == Decimal(50)


async def test_a_bad_row_rejects_the_whole_file(md_database: Database) -> None:
    bad = KITE.replace("24500.0,0.05,75,PE", "-5,0.05,75,PE")
    with pytest.raises(InvalidInput, match="line 8: an option needs a positive strike"):
        async with md_database.session(immediate=True) as session:
            await import_instruments(session, bad)
    assert await _all_keys(md_database) == []
    # The same database still takes a good file afterwards.
    async with md_database.session(immediate=True) as session:
        await import_instruments(session, GENERIC)
    assert len(await _all_keys(md_database)) == 3
