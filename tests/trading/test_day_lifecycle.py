"""How an NSE day ends for a paper account (trading.lifecycle), on a real trading day of
the calendar (Thursday 3 December 2026: 09:15-15:30 IST, 03:45-10:00 UTC).

* The matcher's clock squares off intraday (MIS) positions 15 minutes before the close,
  canceling their other open MIS orders first; new MIS exposure is refused in the window.
* After the close, expired F&O positions settle at the underlying's close: a long call in
  the money is exercised (cash = intrinsic x quantity, STT on it), a short one is assigned,
  an out-of-the-money one expires worthless, a future settles at the final price.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import time_machine
from sqlalchemy import update

from quantdesk.marketdata.bars.repository import BarStore
from quantdesk.marketdata.domain import (
    Bar,
    Exchange,
    Instrument,
    InstrumentType,
    OptionType,
    Quote,
    Timeframe,
)
from quantdesk.marketdata.instruments.service import InstrumentService
from quantdesk.marketdata.models import InstrumentRow
from quantdesk.marketdata.quotes.service import QuoteService
from quantdesk.settings import Settings
from quantdesk.trading.bookkeeping import SQUARE_OFF_REASON
from quantdesk.trading.lifecycle import settle_expiries, square_off_intraday
from tests.conftest import Users, base_settings
from tests.trading.conftest import Desk

IST = dt.timezone(dt.timedelta(hours=5, minutes=30))
DAY = dt.date(2026, 12, 3)
SPOT = "NSE:NIFTY 50"


def ist(hour: int, minute: int) -> dt.datetime:
    return dt.datetime.combine(DAY, dt.time(hour, minute), tzinfo=IST).astimezone(dt.UTC)


@pytest.fixture
def settings(database_url: str, redis_url: str | None, tmp_path: Path) -> Settings:
    return base_settings(database_url, tmp_path / "var", redis_url).model_copy(
        update={"trading_charges": "exchange"}
    )


def _option(symbol: str, strike: int, kind: OptionType) -> Instrument:
    return Instrument(
        Exchange.NFO, symbol, symbol, InstrumentType.OPTION, "INR", lot_size=Decimal(75),
        tick_size=Decimal("0.05"), underlying="NIFTY", expiry=DAY, strike=Decimal(strike),
        option_type=kind,
    )  # fmt: skip


async def _market(desk: Desk) -> None:
    async with desk.ctx.database.session(immediate=True) as db:
        await InstrumentService(db).upsert_many(
            [
                Instrument(Exchange.NSE, "INFY", "Infosys", InstrumentType.EQUITY, "INR",
                           tick_size=Decimal("0.05")),
                Instrument(Exchange.NSE, "NIFTY 50", "NIFTY 50", InstrumentType.INDEX, "INR",
                           tick_size=Decimal("0.05")),
                _option("NIFTY26D0326000CE", 26000, OptionType.CALL),
                _option("NIFTY26D0326200CE", 26200, OptionType.CALL),
                _option("NIFTY26D0325800PE", 25800, OptionType.PUT),
                Instrument(Exchange.NFO, "NIFTY26DECFUT", "NIFTY Dec future",
                           InstrumentType.FUTURE, "INR", lot_size=Decimal(75),
                           tick_size=Decimal("0.10"), underlying="NIFTY", expiry=DAY),
            ]
        )  # fmt: skip


async def _quote(desk: Desk, key: str, bid: str, ask: str, last: str) -> None:
    quote = Quote(
        key, Decimal(last), dt.datetime.now(dt.UTC), bid=Decimal(bid), ask=Decimal(ask),
        bid_size=Decimal(100_000), ask_size=Decimal(100_000),
    )  # fmt: skip
    await QuoteService(desk.ctx.cache, desk.ctx.bus).publish([quote])
    await desk.settle()


def _booked(entry: dict[str, Any], book: str) -> Decimal:
    """What a ledger entry posted to one book."""
    return sum((Decimal(p["amount"]) for p in entry["postings"] if p["book"] == book), Decimal(0))


async def _orders(desk: Desk) -> list[dict[str, Any]]:
    return list((await desk.get("/orders?status=all&limit=100"))["items"])


async def _position(desk: Desk, key: str, product: str) -> dict[str, Any]:
    """The position, or a flat one when the list leaves it out."""
    for item in (await desk.get("/positions"))["items"]:
        if item["instrument"] == key and item["product"] == product:
            return dict(item)
    return {"instrument": key, "product": product, "quantity": "0"}


@time_machine.travel(ist(15, 0), tick=True)
async def test_the_clock_squares_off_mis_positions_at_15_15(desk: Desk) -> None:
    await _market(desk)
    await _quote(desk, "NSE:INFY", "1500.00", "1500.10", "1500.05")
    await desk.place(instrument="NSE:INFY", side="buy", quantity=40, type="market",
                     product="mis")  # fmt: skip
    resting = await desk.place(instrument="NSE:INFY", side="sell", quantity=10, type="limit",
                               limit_price="1520.00", product="mis")  # fmt: skip
    delivery = await desk.place(instrument="NSE:INFY", side="buy", quantity=5, type="market",
                                product="cnc")  # fmt: skip
    assert (await _position(desk, "NSE:INFY", "mis"))["quantity"] == "40"
    # Before the window nothing happens.
    assert await square_off_intraday(desk.ctx, ist(15, 14)) == []

    # Into the window: the matcher's own clock squares the position off.
    with time_machine.travel(ist(15, 15), tick=True):
        await _quote(desk, "NSE:INFY", "1500.00", "1500.10", "1500.05")  # the market goes on
        for _ in range(200):
            await desk.settle()
            position = await _position(desk, "NSE:INFY", "mis")
            if position["quantity"] == "0":
                break
            await asyncio.sleep(0.05)
        orders = {o["id"]: o for o in await _orders(desk)}
        squares = [o for o in orders.values() if o["reason"] == SQUARE_OFF_REASON]
        assert len(squares) == 1, orders
        (square,) = squares
        assert (square["side"], square["quantity"], square["type"], square["product"]) == (
            "sell", "40", "market", "mis",
        )  # fmt: skip
        assert square["status"] == "filled"
        assert await desk.fills(square["id"]) == [("40", "1500.00")]  # at the bid
        assert orders[resting["id"]]["status"] == "canceled"
        assert orders[resting["id"]]["reason"] == "canceled for the intraday square-off"
        assert orders[delivery["id"]]["status"] == "filled"
        assert (await _position(desk, "NSE:INFY", "cnc"))["quantity"] == "5"
        # Squared off once: the next tick finds nothing to do.
        assert await square_off_intraday(desk.ctx, ist(15, 16)) == []

        # New intraday exposure is refused until the close; reducing, or delivery, is not.
        refused = await desk.place(expect=422, instrument="NSE:INFY", side="buy", quantity=1,
                                   type="market", product="mis")  # fmt: skip
        assert refused["type"] == "urn:quantdesk:problem:square-off-window", refused
        assert "from 15:15 IST until the close" in refused["detail"]
        assert "place it as cnc instead" in refused["detail"]
        await desk.place(instrument="NSE:INFY", side="buy", quantity=1, type="market",
                         product="cnc")  # fmt: skip


async def test_the_square_off_can_be_turned_off(desk: Desk) -> None:
    desk.ctx.settings.trading_square_off_before_close_min = 0
    assert await square_off_intraday(desk.ctx, ist(15, 20)) == []


@time_machine.travel(ist(14, 0), tick=True)
async def test_expired_options_and_futures_settle_at_the_underlying_close(desk: Desk) -> None:
    await _market(desk)
    itm, otm, put, future = (
        "NFO:NIFTY26D0326000CE", "NFO:NIFTY26D0326200CE", "NFO:NIFTY26D0325800PE",
        "NFO:NIFTY26DECFUT",
    )  # fmt: skip
    await _quote(desk, itm, "110.00", "110.50", "110.25")
    await _quote(desk, otm, "20.00", "20.50", "20.25")
    await _quote(desk, put, "5.00", "5.50", "5.25")
    await _quote(desk, future, "26100.00", "26100.50", "26100.20")
    await desk.place(instrument=itm, side="buy", quantity=150, type="market", product="nrml")
    await desk.place(instrument=otm, side="buy", quantity=75, type="market", product="nrml")
    await desk.place(instrument=put, side="sell", quantity=75, type="market", product="nrml")
    await desk.place(instrument=future, side="sell", quantity=75, type="market", product="nrml")
    left_open = await desk.place(instrument=otm, side="sell", quantity=75, type="limit",
                                 limit_price="22.00", product="nrml")  # fmt: skip
    # The index closes at 26,150.40 on the expiry day.
    await _quote(desk, SPOT, "26150.40", "26150.40", "26150.40")
    # Nothing is due before the close.
    assert await settle_expiries(desk.ctx, ist(15, 29)) == 0

    assert await settle_expiries(desk.ctx, ist(16, 0)) == 4
    # Settled once: the next tick finds nothing to do.
    assert await settle_expiries(desk.ctx, ist(16, 1)) == 0
    for key in (itm, otm, put, future):
        position = await _position(desk, key, "nrml")
        assert position["quantity"] == "0", position
    after = await desk.get()
    assert [Decimal(after[k]) for k in ("margin_used", "reserved", "positions_value")] == [0] * 3
    assert (await desk.order(left_open["id"]))["status"] == "canceled"
    assert (await desk.order(left_open["id"]))["reason"] == "the contract expired"

    entries = (await desk.get("/ledger?limit=50"))["items"]
    expiry = {e["reference"].split(":2026")[0]: e for e in entries if e["kind"] == "expiry"}
    assert set(expiry) == {itm, otm, put, future}

    def cash(entry: dict[str, Any]) -> Decimal:
        return _booked(entry, "cash")

    def released(entry: dict[str, Any]) -> Decimal:
        return -_booked(entry, "margin")

    # Long 150 of the 26000 call, exercised: 150.40 x 150 = 22,560.
    assert cash(expiry[itm]) - released(expiry[itm]) == Decimal("22560.00")
    assert "exercised" in expiry[itm]["memo"]
    # Long 75 of the 26200 call: worthless.
    assert cash(expiry[otm]) - released(expiry[otm]) == 0
    assert "expired" in expiry[otm]["memo"]
    # Short 75 of the 25800 put, out of the money: expired worthless, kept the premium.
    assert cash(expiry[put]) - released(expiry[put]) == 0
    # Short 75 of the future sold at 26,100.00 (the bid): (26100.00 - 26150.40) x 75 = -3,780.
    assert cash(expiry[future]) - released(expiry[future]) == Decimal("-3780.00")
    # STT on the exercised call: 0.15% (from 1 April 2026) of its settlement value 22,560.
    stt = [e for e in entries if e["kind"] == "fee" and "exercise" in e["memo"]]
    assert [cash(e) for e in stt] == [Decimal("-33.84")], stt


@time_machine.travel(ist(14, 0), tick=True)
async def test_without_the_days_close_the_settlement_waits_for_the_daily_bar(desk: Desk) -> None:
    await _market(desk)
    itm = "NFO:NIFTY26D0326000CE"
    await _quote(desk, itm, "110.00", "110.50", "110.25")
    await desk.place(instrument=itm, side="buy", quantity=75, type="market", product="nrml")
    # The matcher was down over the expiry: the only quote of the index is the next day's.
    with time_machine.travel(ist(15, 0) + dt.timedelta(days=1), tick=True):
        await _quote(desk, SPOT, "26400.00", "26400.00", "26400.00")
        assert await settle_expiries(desk.ctx, dt.datetime.now(dt.UTC)) == 0
        assert (await _position(desk, itm, "nrml"))["quantity"] == "75"
        # A backfill brings the expiry day's daily bar: the close settles it.
        async with desk.ctx.database.session(immediate=True) as db:
            day = dt.datetime.combine(DAY, dt.time(), tzinfo=dt.UTC)
            price = Decimal("26120.55")
            await BarStore(db).bulk_load(SPOT, Timeframe.D1, [Bar(day, price, price, price, price)])
        assert await settle_expiries(desk.ctx, dt.datetime.now(dt.UTC)) == 1
    entries = (await desk.get("/ledger?limit=50"))["items"]
    (entry,) = [e for e in entries if e["kind"] == "expiry"]
    assert "@ 120.55 (underlying 26120.55)" in entry["memo"]


@time_machine.travel(ist(14, 0), tick=True)
async def test_a_short_call_in_the_money_is_assigned(desk: Desk) -> None:
    await _market(desk)
    itm = "NFO:NIFTY26D0326000CE"
    await _quote(desk, itm, "110.00", "110.50", "110.25")
    await desk.place(instrument=itm, side="sell", quantity=75, type="market", product="nrml")
    await _quote(desk, SPOT, "26150.40", "26150.40", "26150.40")
    assert await settle_expiries(desk.ctx, ist(15, 45)) == 1
    entries = (await desk.get("/ledger?limit=50"))["items"]
    (entry,) = [e for e in entries if e["kind"] == "expiry"]
    assert "assigned" in entry["memo"]
    # 150.40 x 75 paid to the holder, out of the margin the short had blocked.
    assert _booked(entry, "cash") + _booked(entry, "margin") == Decimal("-11280.00")
    # Sold at the 110.00 bid: realised (110.00 - 150.40) x 75 = -3,030 on the position.
    position = await _position(desk, itm, "nrml")
    assert Decimal(position["realised_pnl"]) == Decimal("-3030.00")
    # No STT on an assignment.
    assert not [e for e in entries if e["kind"] == "fee" and "exercise" in e["memo"]]


@time_machine.travel(ist(16, 0), tick=True)
async def test_an_expired_contract_is_refused(desk: Desk) -> None:
    await _market(desk)
    with time_machine.travel(dt.datetime.combine(DAY + dt.timedelta(days=1), dt.time(4, 0),
                                                 tzinfo=dt.UTC), tick=True):  # fmt: skip
        refused = await desk.place(expect=422, instrument="NFO:NIFTY26D0326000CE", side="buy",
                                   quantity=75, type="market", product="nrml")  # fmt: skip
    assert refused["type"] == "urn:quantdesk:problem:instrument-expired", refused


async def _holdings(desk: Desk) -> list[tuple[str, str, str, str | None]]:
    items = (await desk.get("/holdings"))["items"]
    return [
        (h["instrument"], h["settled_quantity"], h["t1_quantity"], h["t1_settles_on"])
        for h in items
    ]


async def _sign_in_again(desk: Desk) -> None:
    """A new access token at the travelled time (the first one has expired by then)."""
    desk.trader = await Users(desk.app, desk.client).sign_in(desk.trader)


FRIDAY = dt.datetime(2026, 12, 4, 5, 0, tzinfo=dt.UTC)  # 10:30 IST, T+1 of Thursday
MONDAY = dt.datetime(2026, 12, 7, 5, 0, tzinfo=dt.UTC)


@time_machine.travel(ist(14, 0), tick=True)
async def test_delivery_buys_are_t1_holdings_until_the_end_of_the_next_trading_day(
    desk: Desk,
) -> None:
    await _market(desk)
    await _quote(desk, "NSE:INFY", "1500.00", "1500.10", "1500.05")
    await desk.place(instrument="NSE:INFY", side="buy", quantity=10, type="market", product="cnc")
    await desk.place(instrument="NSE:INFY", side="buy", quantity=3, type="market", product="mis")
    assert await _holdings(desk) == [("NSE:INFY", "0", "10", "2026-12-04")]
    (holding,) = (await desk.get("/holdings"))["items"]
    assert (holding["quantity"], holding["average_price"]) == ("10", "1500.1")
    with time_machine.travel(FRIDAY, tick=True):
        assert await _holdings(desk) == [("NSE:INFY", "0", "10", "2026-12-04")]
    with time_machine.travel(MONDAY, tick=True):
        await _sign_in_again(desk)
        assert await _holdings(desk) == [("NSE:INFY", "10", "0", None)]


@time_machine.travel(ist(14, 0), tick=True)
async def test_without_btst_t1_shares_cannot_be_sold(desk: Desk) -> None:
    desk.ctx.settings.trading_btst = False
    await _market(desk)
    await _quote(desk, "NSE:INFY", "1500.00", "1500.10", "1500.05")
    await desk.place(instrument="NSE:INFY", side="buy", quantity=10, type="market", product="cnc")
    # The same day a delivery buy may be sold again (that is intraday).
    await desk.place(instrument="NSE:INFY", side="sell", quantity=2, type="market", product="cnc")
    with time_machine.travel(FRIDAY, tick=True):
        await _quote(desk, "NSE:INFY", "1501.00", "1501.10", "1501.05")
        refused = await desk.place(expect=422, instrument="NSE:INFY", side="sell", quantity=1,
                                   type="market", product="cnc")  # fmt: skip
        assert refused["type"] == "urn:quantdesk:problem:unsettled-holdings", refused
        assert "8 of the 8 NSE:INFY held" in refused["detail"]
        assert "settle on 2026-12-04 (T+1)" in refused["detail"]
        desk.ctx.settings.trading_btst = True
        await desk.place(instrument="NSE:INFY", side="sell", quantity=1, type="market",
                         product="cnc")  # fmt: skip
        desk.ctx.settings.trading_btst = False
    with time_machine.travel(MONDAY, tick=True):
        await _sign_in_again(desk)
        await _quote(desk, "NSE:INFY", "1502.00", "1502.10", "1502.05")
        await desk.place(instrument="NSE:INFY", side="sell", quantity=7, type="market",
                         product="cnc")  # fmt: skip
    assert await _holdings(desk) == []


async def _until(desk: Desk, done: Any, what: str) -> None:
    """Let the matcher's clock run until ``await done()`` is true (at most ~10 s)."""
    for _ in range(200):
        await desk.settle()
        if await done():
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"the matcher's clock did not {what}")


async def test_a_whole_nse_day_on_a_virtual_clock(desk: Desk) -> None:
    """Before the open an AMO waits; at 09:15 it is released and fills; the day trades
    intraday, delivery and F&O; at 15:15 the clock squares off MIS; at 15:30 DAY orders
    expire; after the close the day's contracts settle.  The ledger balances throughout
    (the fixture checks it at the end)."""
    call, future, infy = "NFO:NIFTY26D0326000CE", "NFO:NIFTY26DECFUT", "NSE:INFY"
    matcher = desk.ctx.extensions["trading_matcher"]
    with time_machine.travel(ist(9, 0), tick=True) as clock:
        await _market(desk)
        await desk.place(expect=422, instrument=infy, side="buy", quantity=10, type="market",
                         product="cnc")  # fmt: skip
        amo = await desk.place(instrument=infy, side="buy", quantity=10, type="limit",
                               limit_price="1500.10", product="cnc", after_market=True)  # fmt: skip
        assert amo["status"] == "new"

        clock.move_to(ist(9, 16))
        await _quote(desk, infy, "1500.00", "1500.10", "1500.05")

        async def amo_filled() -> bool:
            return bool((await desk.order(amo["id"]))["status"] == "filled")

        await _until(desk, amo_filled, "release the AMO at the open")

        await desk.place(instrument=infy, side="buy", quantity=30, type="market", product="mis")
        day_limit = await desk.place(instrument=infy, side="buy", quantity=5, type="limit",
                                     limit_price="1490.00", product="cnc")  # fmt: skip
        await _quote(desk, call, "110.00", "110.50", "110.25")
        await _quote(desk, future, "26100.00", "26100.50", "26100.20")
        await desk.place(instrument=call, side="buy", quantity=75, type="market", product="nrml")
        await desk.place(instrument=future, side="buy", quantity=75, type="market",
                         product="nrml")  # fmt: skip

        clock.move_to(ist(15, 15))
        await _quote(desk, infy, "1510.00", "1510.10", "1510.05")

        async def squared_off() -> bool:
            return bool((await _position(desk, infy, "mis"))["quantity"] == "0")

        await _until(desk, squared_off, "square off MIS at 15:15")
        mis = await _position(desk, infy, "mis")
        # Bought 30 at the 1500.10 ask, squared off at the 1510.00 bid.
        assert Decimal(mis["realised_pnl"]) == Decimal("297.00")

        clock.move_to(ist(15, 29))
        await _quote(desk, SPOT, "26150.40", "26150.40", "26150.40")
        await _quote(desk, future, "26140.00", "26140.50", "26140.20")

        clock.move_to(ist(15, 31))

        async def day_order_expired() -> bool:
            return bool((await desk.order(day_limit["id"]))["status"] == "expired")

        await _until(desk, day_order_expired, "expire DAY orders at the close")

        matcher._last_settle = 0.0  # the settlement runs once a minute: now

        async def contracts_settled() -> bool:
            flat = [(await _position(desk, key, "nrml"))["quantity"] for key in (call, future)]
            return flat == ["0", "0"]

        await _until(desk, contracts_settled, "settle the expired contracts")
        call_position = await _position(desk, call, "nrml")
        # Bought at 110.50, exercised at 150.40: (150.40 - 110.50) x 75 = 2,992.50.
        assert Decimal(call_position["realised_pnl"]) == Decimal("2992.50")
        future_position = await _position(desk, future, "nrml")
        # Bought at 26,100.50, settled at the index close 26,150.40: 49.90 x 75 = 3,742.50
        # (whether or not the day's mark-to-market at 26,140.00 came first).
        assert Decimal(future_position["realised_pnl"]) == Decimal("3742.50")
        assert await _holdings(desk) == [(infy, "0", "10", "2026-12-04")]
        account = await desk.get()
        assert [Decimal(account[k]) for k in ("margin_used", "reserved")] == [0, 0]


async def test_a_sim_option_settles_at_the_underlyings_quote_after_midnight(desk: Desk) -> None:
    """SIM never closes its quotes: the expiry settles at the underlying's latest quote."""
    expiry = dt.date.today() - dt.timedelta(days=1)
    key = "SIM:SIMIDX26XPIRED20000CE"
    async with desk.ctx.database.session(immediate=True) as db:
        await InstrumentService(db).upsert_many(
            [
                Instrument(Exchange.SIM, "SIMIDX", "SIM index", InstrumentType.INDEX, "INR"),
                Instrument(
                    Exchange.SIM, "SIMIDX26XPIRED20000CE", "expired call", InstrumentType.OPTION,
                    "INR", lot_size=Decimal(50), tick_size=Decimal("0.05"), underlying="SIMIDX",
                    expiry=dt.date(2099, 12, 31), strike=Decimal(20000),
                    option_type=OptionType.CALL,
                ),
            ]
        )  # fmt: skip
    await desk.quote(key, "99.95", 500, "100.05", 500, "100.00")
    await desk.place(instrument=key, side="buy", quantity=50, type="market", product="nrml")
    async with desk.ctx.database.session(immediate=True) as db:  # it expired yesterday
        await db.execute(
            update(InstrumentRow).where(InstrumentRow.symbol == "SIMIDX26XPIRED20000CE")
            .values(expiry=expiry)
        )  # fmt: skip
    await desk.quote("SIM:SIMIDX", "20150.00", 1, "20150.00", 1, "20150.00")
    assert await settle_expiries(desk.ctx, dt.datetime.now(dt.UTC)) == 1
    position = await _position(desk, key, "nrml")
    # Bought at 100.05, worth 150.00 at expiry: (150.00 - 100.05) x 50 = 2,497.50.
    assert (position["quantity"], position["realised_pnl"]) == ("0", "2497.5")
