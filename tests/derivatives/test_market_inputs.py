"""When contracts of the Kite segments settle, and what MCX options are valued off.

Expiry times: BFO at BSE's 15:30 IST close; currency derivatives (CDS, BCD) at 12:30 IST on
their last trading day (NSE contract specifications); MCX at the end of its expiry day's
session, 23:30 IST in the US summer and 23:55 IST otherwise (MCX circulars).
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import httpx
import numpy as np
import pytest
from fastapi import FastAPI

from quantdesk.analytics.options import greeks
from quantdesk.derivatives.market_inputs import expiry_close, years_to_expiry
from quantdesk.marketdata.calendars import get_calendar
from quantdesk.marketdata.domain import Exchange, Instrument, InstrumentType, OptionType, Quote
from quantdesk.marketdata.instruments.service import InstrumentService
from quantdesk.marketdata.quotes.service import QuoteService
from tests.conftest import UserFactory


def utc(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text).replace(tzinfo=dt.UTC)


@pytest.mark.parametrize(
    ("exchange", "expiry", "settles"),
    [
        (Exchange.BFO, dt.date(2025, 9, 11), "2025-09-11T10:00"),  # 15:30 IST
        (Exchange.NFO, dt.date(2025, 9, 30), "2025-09-30T10:00"),
        (Exchange.CDS, dt.date(2026, 12, 29), "2026-12-29T07:00"),  # 12:30 IST, not 17:00
        (Exchange.BCD, dt.date(2026, 12, 29), "2026-12-29T07:00"),
        (Exchange.MCX, dt.date(2025, 10, 16), "2025-10-16T18:00"),  # 23:30 IST (US summer)
        (Exchange.MCX, dt.date(2025, 12, 16), "2025-12-16T18:25"),  # 23:55 IST
        (Exchange.MCX, dt.date(2025, 3, 14), "2025-03-14T18:00"),  # evening-only Holi
        (Exchange.MCX, dt.date(2036, 1, 15), "2036-01-15T18:25"),  # past the calendar
    ],
)
def test_expiry_close_per_segment(exchange: Exchange, expiry: dt.date, settles: str) -> None:
    assert expiry_close(exchange, expiry) == utc(settles)


STRIKES = [5600, 5700, 5800, 5900, 6000]
VOL = 0.32
RATE = 0.065  # DEFAULT_RATES["INR"]
SIDE = {OptionType.CALL: "CE", OptionType.PUT: "PE"}


def crude(expiry: dt.date, future_expiry: dt.date) -> list[Instrument]:
    future = Instrument(
        Exchange.MCX, f"CRUDEOIL{future_expiry:%y%b}FUT".upper(), "CRUDEOIL FUT",
        InstrumentType.FUTURE, "INR", tick_size=Decimal(1), multiplier=Decimal(100),
        underlying="CRUDEOIL", expiry=future_expiry,
    )  # fmt: skip
    later = Instrument(
        Exchange.MCX, "CRUDEOILLATERFUT", "CRUDEOIL FUT (next)", InstrumentType.FUTURE, "INR",
        tick_size=Decimal(1), multiplier=Decimal(100), underlying="CRUDEOIL",
        expiry=future_expiry + dt.timedelta(days=30),
    )  # fmt: skip
    options = [
        Instrument(
            Exchange.MCX, f"CRUDEOIL{expiry:%y%b}{k}{SIDE[o]}".upper(),
            f"CRUDEOIL {k} {o.value}", InstrumentType.OPTION, "INR", tick_size=Decimal("0.1"),
            multiplier=Decimal(100), underlying="CRUDEOIL", expiry=expiry,
            strike=Decimal(k), option_type=o,
        )
        for k in STRIKES
        for o in OptionType
    ]  # fmt: skip
    return [future, later, *options]


async def test_an_mcx_chain_is_valued_off_the_near_future(
    app: FastAPI, client: httpx.AsyncClient, make_user: UserFactory
) -> None:
    ctx = app.state.ctx
    now = dt.datetime.now(dt.UTC)
    mcx = get_calendar("MCX")
    expiry = mcx.next_trading_day(now.date() + dt.timedelta(days=20))
    future_expiry = mcx.next_trading_day(expiry + dt.timedelta(days=2))
    contracts = crude(expiry, future_expiry)
    async with ctx.database.session(immediate=True) as db:
        await InstrumentService(db).upsert_many(contracts)
    t = years_to_expiry(Exchange.MCX, expiry, now)
    future_key = contracts[0].key
    quotes = [
        Quote(future_key, Decimal("5800"), now),
        Quote(contracts[1].key, Decimal("5850"), now),
    ]
    for option in contracts[2:]:
        assert option.strike is not None
        assert option.option_type is not None
        price = float(
            greeks(option.option_type.value, 5800.0, float(option.strike), t, RATE, VOL).price
        )
        quotes.append(Quote(option.key, Decimal(f"{price:.6f}"), now))
    await QuoteService(ctx.cache, ctx.bus).publish(quotes)
    viewer = await make_user("viewer")
    response = await client.get("/api/v1/analytics/chain/CRUDEOIL", headers=viewer.headers)
    assert response.status_code == 200, response.text
    data = response.json()
    # The near future, not the later one, and no cash instrument looked for (the spot is
    # printed at the chain's tick places, 0.1).
    assert (data["spot_key"], data["spot"]) == (future_key, "5800.0")
    assert data["expiry"] == expiry.isoformat()
    np.testing.assert_allclose(data["calls"]["iv"], [VOL] * len(STRIKES), atol=1e-5)
    np.testing.assert_allclose(data["puts"]["iv"], [VOL] * len(STRIKES), atol=1e-5)


async def test_an_mcx_chain_without_a_future_says_so(
    app: FastAPI, client: httpx.AsyncClient, make_user: UserFactory
) -> None:
    ctx = app.state.ctx
    now = dt.datetime.now(dt.UTC)
    expiry = get_calendar("MCX").next_trading_day(now.date() + dt.timedelta(days=20))
    options = crude(expiry, expiry)[2:]
    async with ctx.database.session(immediate=True) as db:
        await InstrumentService(db).upsert_many(options)
    viewer = await make_user("viewer")
    response = await client.get("/api/v1/analytics/chain/CRUDEOIL", headers=viewer.headers)
    assert response.status_code == 404
    assert response.json()["detail"] == "no listed MCX future on CRUDEOIL to value it from"
