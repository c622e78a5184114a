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
291849,1140,GIFTNIFTY25SEPFUT,"GIFTNIFTY",0,2025-09-25,0,0.5,25,FUT,NSEIX-FUT,NSEIX
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
    assert parsed.skipped == 1  # NSEIX (GIFT City) is an exchange quantdesk does not list
    by_key = {i.key: i for i in parsed.instruments}
    assert list(by_key) == [
        "NSE:RELIANCE",
        "BSE:RELIANCE",
        "NSE:NIFTY 50",
        "NSE:M&M",
        "NFO:NIFTY25SEPFUT",
        "NFO:NIFTY25SEP24500CE",
        "NFO:NIFTY25SEP24500PE",
        "MCX:CRUDEOIL25OCTFUT",
        "BFO:SENSEX25SEP80000CE",
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
        (KITE + KITE.splitlines()[1] + "\n", "line 12: NSE:RELIANCE already appears on line 2"),
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
    assert (first.inserted, first.updated, first.unchanged, first.skipped) == (9, 0, 0, 1)
    async with md_database.session(immediate=True) as session:
        again = await import_instruments(session, KITE)
    assert (again.inserted, again.updated, again.unchanged) == (0, 0, 9)
    changed = KITE.replace("0.1,75,FUT", "0.05,50,FUT")
    async with md_database.session(immediate=True) as session:
        update = await import_instruments(session, changed)
    assert (update.inserted, update.updated, update.unchanged) == (0, 1, 8)
    assert len(await _all_keys(md_database)) == 9
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


# Kite's dump rows of BSE's F&O (SENSEX weekly options, the monthly future), MCX (crude oil
# futures and options on them, lot_size 1 as Kite counts MCX quantities in lots) and NSE's
# currency segment.  Tokens as Kite builds them: exchange_token * 256 + the segment code.
KITE_SEGMENTS = f"""{KITE_HEADER}
291973125,1140520,SENSEX26D1085000CE,"SENSEX",0,2026-12-10,85000,0.05,20,CE,BFO-OPT,BFO
291973381,1140521,SENSEX26D1085000PE,"SENSEX",0,2026-12-10,85000,0.05,20,PE,BFO-OPT,BFO
290716677,1135612,SENSEX26DECFUT,"SENSEX",0,2026-12-31,0,0.05,20,FUT,BFO-FUT,BFO
117358599,458432,CRUDEOIL26DECFUT,"CRUDEOIL",0,2026-12-18,0,1,1,FUT,MCX-FUT,MCX
117371911,458484,CRUDEOIL26DEC5800CE,"CRUDEOIL",0,2026-12-16,5800,0.1,1,CE,MCX-OPT,MCX
117372167,458485,CRUDEOIL26DEC5800PE,"CRUDEOIL",0,2026-12-16,5800,0.1,1,PE,MCX-OPT,MCX
412675,1612,USDINR26DECFUT,"USDINR",0,2026-12-29,0,0.0025,1,FUT,CDS-FUT,CDS
2236419,8736,USDINR26DEC89.5CE,"USDINR",0,2026-12-29,89.5,0.0025,1,CE,CDS-OPT,CDS
"""


def test_kite_bfo_mcx_and_cds_rows_import_with_their_exchange() -> None:
    parsed = parse_instruments(KITE_SEGMENTS)
    assert parsed.skipped == 0
    by_key = {i.key: i for i in parsed.instruments}
    facts = {
        key: (i.exchange, i.type, i.underlying, i.expiry, i.strike, i.option_type)
        for key, i in by_key.items()
    }
    assert facts == {
        "BFO:SENSEX26D1085000CE": (
            Exchange.BFO, InstrumentType.OPTION, "SENSEX", dt.date(2026, 12, 10),
            Decimal(85000), OptionType.CALL,
        ),
        "BFO:SENSEX26D1085000PE": (
            Exchange.BFO, InstrumentType.OPTION, "SENSEX", dt.date(2026, 12, 10),
            Decimal(85000), OptionType.PUT,
        ),
        "BFO:SENSEX26DECFUT": (
            Exchange.BFO, InstrumentType.FUTURE, "SENSEX", dt.date(2026, 12, 31), None, None,
        ),
        "MCX:CRUDEOIL26DECFUT": (
            Exchange.MCX, InstrumentType.FUTURE, "CRUDEOIL", dt.date(2026, 12, 18), None, None,
        ),
        "MCX:CRUDEOIL26DEC5800CE": (
            Exchange.MCX, InstrumentType.OPTION, "CRUDEOIL", dt.date(2026, 12, 16),
            Decimal(5800), OptionType.CALL,
        ),
        "MCX:CRUDEOIL26DEC5800PE": (
            Exchange.MCX, InstrumentType.OPTION, "CRUDEOIL", dt.date(2026, 12, 16),
            Decimal(5800), OptionType.PUT,
        ),
        "CDS:USDINR26DECFUT": (
            Exchange.CDS, InstrumentType.FUTURE, "USDINR", dt.date(2026, 12, 29), None, None,
        ),
        "CDS:USDINR26DEC89.5CE": (
            Exchange.CDS, InstrumentType.OPTION, "USDINR", dt.date(2026, 12, 29),
            Decimal("89.5"), OptionType.CALL,
        ),
    }  # fmt: skip
    sizes = {key: (i.lot_size, i.tick_size, i.multiplier) for key, i in by_key.items()}
    # SENSEX: 20 units a lot.  Crude oil: a lot of 100 barrels priced per barrel.  USDINR:
    # a lot of USD 1,000 priced per dollar, tick 0.25 paise.
    assert sizes["BFO:SENSEX26D1085000CE"] == (Decimal(20), Decimal("0.05"), Decimal(1))
    assert sizes["MCX:CRUDEOIL26DECFUT"] == (Decimal(1), Decimal(1), Decimal(100))
    assert sizes["MCX:CRUDEOIL26DEC5800PE"] == (Decimal(1), Decimal("0.1"), Decimal(100))
    assert sizes["CDS:USDINR26DECFUT"] == (Decimal(1), Decimal("0.0025"), Decimal(1000))
    assert sizes["CDS:USDINR26DEC89.5CE"] == (Decimal(1), Decimal("0.0025"), Decimal(1000))
    assert {i.currency for i in parsed.instruments} == {"INR"}
    assert by_key["CDS:USDINR26DECFUT"].provider_token == "412675"
    assert by_key["MCX:CRUDEOIL26DEC5800CE"].name == "CRUDEOIL 2026-12-16 5800 CE"
    # The fixture's MCX row above with lot_size 100 (units, not lots) keeps multiplier 1.
    crude = {i.key: i for i in parse_instruments(KITE).instruments}["MCX:CRUDEOIL25OCTFUT"]
    assert (crude.lot_size, crude.multiplier) == (Decimal(100), Decimal(1))


async def test_segment_rows_round_trip_through_the_master(md_database: Database) -> None:
    async with md_database.session(immediate=True) as session:
        report = await import_instruments(session, KITE_SEGMENTS)
    assert (report.inserted, report.skipped) == (8, 0)
    async with md_database.session() as session:
        service = InstrumentService(session)
        usdinr = await service.get("CDS:USDINR26DECFUT")
        assert (usdinr.tick_size, usdinr.multiplier) == (Decimal("0.0025"), Decimal(1000))
        # The near future an MCX option is valued off: the first to expire on/after a date.
        near = await service.near_future("CRUDEOIL", Exchange.MCX, dt.date(2026, 12, 16))
        assert near is not None
        assert near.key == "MCX:CRUDEOIL26DECFUT"
        assert await service.near_future("CRUDEOIL", Exchange.MCX, dt.date(2026, 12, 19)) is None
        assert await service.near_future("CRUDEOIL", Exchange.NFO, dt.date(2026, 12, 1)) is None
        chain = await service.chain("SENSEX", dt.date(2026, 12, 10), Exchange.BFO)
        assert [c.key for c in chain] == ["BFO:SENSEX26D1085000CE", "BFO:SENSEX26D1085000PE"]
