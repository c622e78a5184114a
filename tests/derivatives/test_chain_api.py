"""Chain and futures analytics over the instrument master and live quotes.

The chain is priced with our own Black-Scholes at a known smile, so the endpoint must
recover those vols; OI is laid out so max pain and PCR can be worked by hand.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import httpx
import numpy as np
import pytest
from fastapi import FastAPI

from quantdesk.analytics.options import greeks
from quantdesk.derivatives.market_inputs import years_to_expiry
from quantdesk.derivatives.schemas import ChainOut, ChainSideOut, FuturesContractOut, FuturesOut
from quantdesk.marketdata.calendars import next_expiry
from quantdesk.marketdata.domain import Exchange, Instrument, InstrumentType, OptionType, Quote
from quantdesk.marketdata.instruments.service import InstrumentService
from quantdesk.marketdata.quotes.service import QuoteService
from quantdesk.marketdata.schemas import QuoteOut
from tests.conftest import UserFactory

SPOT = 600.0
STRIKES = [560.0, 570.0, 580.0, 590.0, 600.0, 610.0, 620.0, 630.0, 640.0]
CALL_OI = [50.0, 80.0, 100.0, 300.0, 800.0, 2_000.0, 900.0, 1_500.0, 400.0]
PUT_OI = [600.0, 900.0, 1_200.0, 2_500.0, 700.0, 200.0, 100.0, 60.0, 30.0]
R = 0.045


def smile(strike: float) -> float:
    return 0.18 + 0.4 * ((strike / SPOT) - 1.0) ** 2 - 0.1 * ((strike / SPOT) - 1.0)


def occ(expiry: dt.date, option: OptionType, strike: float) -> str:
    return f"SPY{expiry:%y%m%d}{'C' if option is OptionType.CALL else 'P'}{int(strike * 1000):08d}"


def instruments(expiry: dt.date, future_expiries: list[dt.date]) -> list[Instrument]:
    spy = Instrument(Exchange.NYSE, "SPY", "SPDR S&P 500", InstrumentType.ETF, "USD")
    options = [
        Instrument(
            Exchange.OPRA, occ(expiry, option, k), f"SPY {k} {option.value}",
            InstrumentType.OPTION, "USD", lot_size=Decimal(100), underlying="SPY",
            expiry=expiry, strike=Decimal(str(k)), option_type=option,
        )
        for k in STRIKES
        for option in OptionType
    ]  # fmt: skip
    return [spy, *options]


@pytest.fixture
async def market(app: FastAPI) -> dt.date:
    ctx = app.state.ctx
    now = dt.datetime.now(dt.UTC)
    expiry = next_expiry("SPY", now.date() + dt.timedelta(days=20), "monthly", "US_OPTIONS").date
    contracts = instruments(expiry, [])
    async with ctx.database.session(immediate=True) as db:
        await InstrumentService(db).upsert_many(contracts)
    t = years_to_expiry(Exchange.OPRA, expiry, now)
    quotes = [Quote("NYSE:SPY", Decimal("600.00"), now)]
    for i, k in enumerate(STRIKES):
        for option, oi in ((OptionType.CALL, CALL_OI[i]), (OptionType.PUT, PUT_OI[i])):
            price = float(greeks(option.value, SPOT, k, t, R, smile(k)).price)
            quotes.append(
                Quote(
                    f"OPRA:{occ(expiry, option, k)}", Decimal(f"{price:.6f}"), now,
                    oi=Decimal(int(oi)), prev_oi=Decimal(int(oi * 0.9)),
                    change=Decimal("0.5"), volume=Decimal(int(oi / 2)),
                )
            )  # fmt: skip
    await QuoteService(ctx.cache, ctx.bus).publish(quotes)
    return expiry


async def test_chain_recovers_smile_and_hand_worked_figures(
    client: httpx.AsyncClient, make_user: UserFactory, market: dt.date
) -> None:
    viewer = await make_user("viewer")
    response = await client.get(
        "/api/v1/analytics/chain/spy", params={"r": R}, headers=viewer.headers
    )
    assert response.status_code == 200, response.text
    data = response.json()
    # The documented schema is the payload's, to the character: the fast path prints every
    # field exactly as the strict model would (a float where a decimal string belongs fails).
    assert ChainOut.model_validate(data).model_dump(mode="json") == data
    assert data["expiry"] == market.isoformat()
    assert data["spot"] == "600.00"
    assert data["strikes"] == [f"{k:.2f}" for k in STRIKES]
    expected = [smile(k) for k in STRIKES]
    np.testing.assert_allclose(data["calls"]["iv"], expected, atol=1e-6)
    np.testing.assert_allclose(data["puts"]["iv"], expected, atol=1e-6)
    # Max pain by brute force: the settlement strike that minimises what writers pay.
    rows = list(zip(STRIKES, CALL_OI, PUT_OI, strict=True))
    payout = {s: sum(max(s - k, 0) * c + max(k - s, 0) * p for k, c, p in rows) for s in STRIKES}
    assert data["max_pain"] == f"{min(payout, key=payout.__getitem__):.2f}"
    assert data["pcr_oi"] == pytest.approx(sum(PUT_OI) / sum(CALL_OI))
    assert data["pcr_volume"] == pytest.approx(sum(PUT_OI) / sum(CALL_OI), rel=1e-3)
    assert data["atm_strike"] == "600.00"
    # Quantities are exact decimal strings, as /market/quotes sends them (issue 19): OI 50,
    # previous 45 (int(50 * 0.9)), volume 25.
    assert (data["calls"]["oi"][0], data["calls"]["oi_change"][0]) == ("50", "5")
    assert data["calls"]["volume"][0] == "25"
    assert data["puts"]["oi"] == [f"{oi:.0f}" for oi in PUT_OI]
    assert data["calls"]["buildup"] == ["long buildup"] * len(STRIKES)
    atm = STRIKES.index(600.0)
    assert 0.4 < data["calls"]["delta"][atm] < 0.6
    assert -0.6 < data["puts"]["delta"][atm] < -0.4
    # The smile is steeper on the put side: 25-delta risk reversal (call - put) is negative.
    assert data["skew_25d"]["risk_reversal"] < 0
    assert data["gex_total"] is not None


async def test_chain_errors(
    client: httpx.AsyncClient, make_user: UserFactory, market: dt.date
) -> None:
    viewer = await make_user("viewer")
    missing = await client.get("/api/v1/analytics/chain/QQQ", headers=viewer.headers)
    assert missing.status_code == 404
    wrong_expiry = await client.get(
        "/api/v1/analytics/chain/SPY", params={"expiry": "2030-01-18"}, headers=viewer.headers
    )
    assert wrong_expiry.status_code == 404
    # The problem lists the expiries there are (issue 19), as an extension member too.
    problem = wrong_expiry.json()
    assert problem["valid_expiries"] == [market.isoformat()]
    assert market.isoformat() in problem["detail"]
    anonymous = await client.get("/api/v1/analytics/chain/SPY")
    assert anonymous.status_code == 401


def nifty_future(expiry: dt.date) -> Instrument:
    return Instrument(
        Exchange.NFO, f"NIFTY{expiry:%y%b}FUT".upper(), f"NIFTY FUT {expiry}",
        InstrumentType.FUTURE, "INR", lot_size=Decimal(75), tick_size=Decimal("0.05"),
        underlying="NIFTY", expiry=expiry,
    )  # fmt: skip


async def test_futures_basis_carry_rollover(
    app: FastAPI, client: httpx.AsyncClient, make_user: UserFactory
) -> None:
    ctx = app.state.ctx
    now = dt.datetime.now(dt.UTC)
    near = next_expiry("NIFTY", now.date() + dt.timedelta(days=1), "monthly").date
    after = near + dt.timedelta(days=35)
    nxt = dt.date(after.year, after.month, 28)  # a plausible next-month expiry
    index = Instrument(Exchange.NSE, "NIFTY 50", "NIFTY 50", InstrumentType.INDEX, "INR")
    futures = [nifty_future(near), nifty_future(nxt)]
    async with ctx.database.session(immediate=True) as db:
        await InstrumentService(db).upsert_many([index, *futures])
    await QuoteService(ctx.cache, ctx.bus).publish(
        [
            Quote("NSE:NIFTY 50", Decimal("24000.00"), now),
            Quote(futures[0].key, Decimal("24060.00"), now, oi=Decimal(9_000_000),
                  prev_oi=Decimal(10_000_000), change=Decimal("-40")),
            Quote(futures[1].key, Decimal("24190.50"), now, oi=Decimal(3_000_000),
                  prev_oi=Decimal(2_000_000), change=Decimal("35")),
        ]
    )  # fmt: skip
    viewer = await make_user("viewer")
    response = await client.get("/api/v1/analytics/futures/NIFTY", headers=viewer.headers)
    assert response.status_code == 200, response.text
    data = response.json()
    assert FuturesOut.model_validate(data).model_dump(mode="json") == data
    assert data["spot"] == "24000.00"
    first, second = data["contracts"]
    assert (first["price"], second["price"]) == ("24060.00", "24190.50")
    assert (first["price_change"], second["price_change"]) == ("-40.00", "35.00")
    assert first["basis"] == "60.00"
    assert second["basis"] == "190.50"
    assert first["basis_pct"] == pytest.approx(0.25)
    t = years_to_expiry(Exchange.NFO, near, now)
    assert first["annualised_carry"] == pytest.approx(np.log(24060 / 24000) / t, rel=1e-3)
    # Near: price down, OI down -> long unwinding; next: price up, OI up -> long buildup.
    assert first["buildup"] == "long unwinding"
    assert second["buildup"] == "long buildup"
    assert data["rollover_pct"] == pytest.approx(25.0)
    assert (first["oi"], first["oi_change"]) == ("9000000", "-1000000")
    assert (second["oi"], second["oi_change"]) == ("3000000", "1000000")
    assert data["calendar_spread"] == "130.50"
    assert Decimal(first["fair_value"]) > Decimal("24000")


# --- money on the wire (issue 19): exact decimal strings at the tick's precision ----------
ITC_STRIKES = [Decimal("215"), Decimal("217.5"), Decimal("220"), Decimal("2.225E+2")]


def itc_option(expiry: dt.date, strike: Decimal, option: OptionType) -> Instrument:
    right = "CE" if option is OptionType.CALL else "PE"
    return Instrument(
        Exchange.NFO, f"ITC{expiry:%y%b}{strike:f}{right}".upper(), f"ITC {strike:f} {right}",
        InstrumentType.OPTION, "INR", lot_size=Decimal(1600), tick_size=Decimal("0.05"),
        underlying="ITC", expiry=expiry, strike=strike, option_type=option,
    )  # fmt: skip


async def test_chain_prices_and_strikes_are_exact_strings_at_the_tick(
    app: FastAPI, client: httpx.AsyncClient, make_user: UserFactory
) -> None:
    """Fractional strikes (217.5; 222.5 stored in exponent form), a two-sided market whose mid
    falls between ticks, and levels worked by hand: no float and no exponent on the wire."""
    ctx = app.state.ctx
    now = dt.datetime.now(dt.UTC)
    expiry = next_expiry("NIFTY", now.date() + dt.timedelta(days=10), "monthly").date
    spot = Instrument(Exchange.NSE, "ITC", "ITC LTD", InstrumentType.EQUITY, "INR",
                      tick_size=Decimal("0.05"))  # fmt: skip
    options = [itc_option(expiry, k, o) for k in ITC_STRIKES for o in OptionType]
    async with ctx.database.session(immediate=True) as db:
        await InstrumentService(db).upsert_many([spot, *options])
    quotes = [Quote("NSE:ITC", Decimal("218.40"), now)]
    for option in options:
        moneyness = Decimal("218.40") - (option.strike or Decimal(0))
        call = option.option_type is OptionType.CALL
        intrinsic = max(moneyness if call else -moneyness, Decimal(0))
        quotes.append(
            Quote(option.key, intrinsic + Decimal("2.50"), now, oi=Decimal(16000),
                  prev_oi=Decimal(12800), change=Decimal("0.5"), volume=Decimal(3200))
        )  # fmt: skip
    # The ATM (217.5) pair trades two-sided: mids 4.075 and 3.125 round half-even to the tick's
    # two places, 4.08 and 3.12; IVs are computed at those marks.
    atm_call, atm_put = (o.key for o in options if o.strike == Decimal("217.5"))
    quotes += [
        Quote(atm_call, Decimal("4.05"), now, bid=Decimal("4.05"), ask=Decimal("4.10"),
              oi=Decimal(16000), prev_oi=Decimal(12800), volume=Decimal(3200)),
        Quote(atm_put, Decimal("3.10"), now, bid=Decimal("3.10"), ask=Decimal("3.15"),
              oi=Decimal(16000), prev_oi=Decimal(12800), volume=Decimal(3200)),
    ]  # fmt: skip
    await QuoteService(ctx.cache, ctx.bus).publish(quotes)
    viewer = await make_user("viewer")
    response = await client.get(
        "/api/v1/analytics/chain/ITC", params={"r": 0}, headers=viewer.headers
    )
    assert response.status_code == 200, response.text
    data = response.json()
    assert ChainOut.model_validate(data).model_dump(mode="json") == data
    assert data["strikes"] == ["215.00", "217.50", "220.00", "222.50"]
    assert data["spot"] == "218.40"
    assert data["forward"] == "218.40"  # r = q = 0
    assert data["lot_size"] == "1600"
    assert data["atm_strike"] == "217.50"
    assert data["max_pain"] in data["strikes"]
    atm = data["strikes"].index("217.50")
    assert data["calls"]["mark"][atm] == "4.08"
    assert data["puts"]["mark"][atm] == "3.12"
    assert data["calls"]["last"][atm] == "4.05"
    assert data["calls"]["mark"][0] == "5.90"  # 3.40 intrinsic + 2.50, last price
    move = data["expected_move"]
    assert (move["straddle"], move["lower"], move["upper"]) == ("7.20", "211.20", "225.60")
    assert move["pct"] == pytest.approx(100 * 7.2 / 218.4)
    iv = float(data["calls"]["iv"][atm])
    price = greeks("call", 218.4, 217.5, data["t_years"], 0.0, iv).price
    assert float(price) == pytest.approx(4.08, abs=1e-6)


def test_quantities_are_declared_decimal_strings() -> None:
    """OI, its change and volume are quantities: the schema says decimal string, as for quotes
    (a float here made ``1e+06``-style numbers and disagreed with ``/market/quotes``)."""
    side = ChainSideOut.model_json_schema(mode="serialization")["properties"]
    contract = FuturesContractOut.model_json_schema(mode="serialization")["properties"]
    quote = QuoteOut.model_json_schema(mode="serialization")["properties"]

    def kinds(schema: dict[str, Any]) -> set[tuple[str | None, str | None]]:
        inner = schema.get("items", schema)
        return {(a.get("type"), a.get("format")) for a in inner.get("anyOf", [inner])}

    for name in ("oi", "oi_change", "volume"):
        assert kinds(side[name]) == {("string", "decimal"), ("null", None)}, name
    for name in ("oi", "oi_change"):
        assert kinds(contract[name]) == {("string", "decimal"), ("null", None)}, name
    assert kinds(quote["oi"]) == kinds(side["oi"])
