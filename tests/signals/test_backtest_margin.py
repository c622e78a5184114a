"""Buying power, margin and expiry settlement in backtests, by hand: paper trading's rules
(trading.orders, trading.bookkeeping, trading.margins, trading.lifecycle) on the backtest's
account, at the default rates (futures 12%, short options 15% with a 5% floor, equity
shorts 20% of notional; market orders priced at the last price plus the 10% band)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from quantdesk.signals.research.account import MarginAccount
from quantdesk.signals.research.backtest import (
    Contract,
    PriceBars,
    ScheduledLeg,
    backtest_schedule,
    backtest_targets,
    settlement_price,
)
from quantdesk.trading.engine.charges import DEFAULT_CHARGES
from quantdesk.trading.engine.margin import MarginRates
from quantdesk.trading.engine.types import OrderType, Side

MONDAY = int(dt.datetime(2025, 1, 6, tzinfo=dt.UTC).timestamp())
DAYS = [MONDAY + 86_400 * k for k in range(5)]
STOCK = Contract("NSE:HAND", Decimal("0.05"))


def bars(o: list[str], h: list[str], lo: list[str], c: list[str]) -> PriceBars:
    return PriceBars.of_text(DAYS[: len(o)], o, h, lo, c, 86_400)


def units(*values: int | str) -> list[Decimal]:
    return [Decimal(v) for v in values]


# HAND as in test_backtest.py: closes 100.5, 101.5, 102, 103, 103.5.
HAND = bars(
    ["100", "101", "101.5", "102.5", "103"], ["101", "102", "103", "103.5", "104"],
    ["99", "100", "101", "102", "102"], ["100.5", "101.5", "102", "103", "103.5"],
)  # fmt: skip


def test_a_buy_beyond_the_buying_power_is_refused_until_it_fits() -> None:
    # Capital 1,100; long 10 from bar 0's close.  A market buy is priced at the last price
    # plus the 10% band (paper's reservation): at bar 0's close 101 x 1.1 x 10 = 1,111 >
    # 1,100, refused; at bar 1's close 99.5 x 1.1 x 10 = 1,094.5 fits and is reserved.
    prices = bars(
        ["100", "100.5", "99", "100", "101"], ["101", "101", "100", "101", "102"],
        ["99", "99", "98", "99", "100"], ["101", "99.5", "99.5", "100.5", "101.5"],
    )  # fmt: skip
    result = backtest_targets(prices, units(10, 10, 10, 0, 0), STOCK, capital=Decimal(1100))
    (refused,) = result.rejections
    assert (refused.code, refused.side, refused.quantity) == (
        "insufficient-buying-power", "buy", Decimal(10),
    )  # fmt: skip
    # Paper's wording (trading.orders._admit), at the bar's end.
    assert refused.detail == "this order needs 1111 INR; the buying power is 1100"
    assert refused.ts == dt.datetime(2025, 1, 7, tzinfo=dt.UTC)
    # Filled at bar 2's open (99), sold at bar 4's open (101): +20.
    assert [(f.side, f.price) for f in result.fills] == [("buy", Decimal(99)),
                                                         ("sell", Decimal(101))]  # fmt: skip
    # At each close, before that close's order: bar 0 and 1 cash 1,100 (bar 1's order then
    # reserves 1,094.5 overnight).  bar 2: 1,100 - 990 = 110 + 10 x 99.5.  bar 3: 110 +
    # 1,005.  bar 4: 110 + 1,010.
    assert result.equity == units(1100, 1100, 1105, 1115, 1120)
    assert result.cash == units(1100, 1100, 110, 110, 1120)
    assert min(result.cash) >= 0
    assert result.summary()["rejected_by_reason"] == {"insufficient-buying-power": 1}


def test_an_unaffordable_target_stays_unmet_and_is_refused_each_bar() -> None:
    result = backtest_targets(HAND, units(10, 10, 10, 10, 10), STOCK, capital=Decimal(500))
    assert result.fills == []
    assert result.equity == units(500, 500, 500, 500, 500)
    # One refusal per bar's close: 100.5, 101.5, 102, 103, 103.5 x 1.1 x 10.
    assert [r.detail.split(" INR")[0][17:] for r in result.rejections] == [
        "1105.5", "1116.5", "1122", "1133", "1138.5",
    ]  # fmt: skip


def test_a_short_future_blocks_its_margin_while_open() -> None:
    # Short 50 of an index future (lot 50): sold at bar 1's open 101, bought back at bar
    # 3's open 102.5.  Paper blocks 12% of the notional: 0.12 x 50 x 101 = 606.
    future = Contract("NFO:HAND25JANFUT", Decimal("0.05"), Decimal(50), kind="future",
                      underlying="HAND", expiry=dt.date(2025, 1, 30))  # fmt: skip
    result = backtest_targets(HAND, units(-50, -50, 0, 0, 0), future, capital=Decimal(10_000))
    assert [(f.side, f.quantity, f.price) for f in result.fills] == [
        ("sell", Decimal(50), Decimal(101)), ("buy", Decimal(50), Decimal("102.5")),
    ]  # fmt: skip
    assert result.margin == units(0, 606, 606, 0, 0)
    # Futures move no notional: cash 10,000 - 606 while short; the loss is realised on the
    # cover: (101 - 102.5) x 50 = -75, the margin comes back.
    assert result.cash == units(10_000, 9394, 9394, 9925, 9925)
    # equity = cash + margin + unrealised: bar 1 -50 x (101.5 - 101) = -25; bar 2 -50.
    assert result.equity == units(10_000, 9975, 9950, 9925, 9925)


def test_an_equity_short_blocks_its_intraday_margin_and_its_proceeds() -> None:
    # Short 10 HAND at bar 1's open 101: 20% of 1,010 = 202 margin, plus the 1,010 of
    # proceeds (not buying power until it is covered): 1,212 blocked, 10,000 - 202 free.
    result = backtest_targets(HAND, units(-10, -10, 0, 0, 0), STOCK, capital=Decimal(10_000))
    assert result.margin == units(0, 1212, 1212, 0, 0)
    assert result.cash[1] == Decimal(9798)
    # Covered at 102.5: -15.
    assert result.equity[-1] == Decimal(9985)
    assert result.cash[-1] == Decimal(9985)


def test_a_short_needs_its_margin_in_free_cash() -> None:
    # 20% of 10 x 100.5 x 1.1 (bar 0's close plus the band) = 221.1 > 200.
    result = backtest_targets(HAND, units(-10, 0, 0, 0, 0), STOCK, capital=Decimal(200))
    assert result.rejections[0].detail == "this order needs 221.1 INR; the buying power is 200"
    assert result.fills == []


# A call on HAND, strike 100, lot 50, expiring on Thursday 2025-01-09 (bar 3).
CALL = Contract("NFO:HAND25JAN100CE", Decimal("0.05"), Decimal(50), kind="option",
                underlying="HAND", strike=Decimal(100), option_type="call",
                expiry=dt.date(2025, 1, 9))  # fmt: skip
CALL_BARS = bars(["2", "2.4", "2.8", "3.1"], ["2.5", "3", "3.2", "3.6"],
                 ["1.5", "2.2", "2.5", "3"], ["2.2", "2.6", "3", "3.4"])  # fmt: skip


def test_a_leg_expiring_inside_the_window_settles_at_intrinsic_value() -> None:
    # Long 1 lot of the call from bar 1's open (2.40) and 10 HAND from bar 1's open (101)
    # to bar 4's open (103).  The call is not closed at its last bar: it settles after the
    # expiry day's close at HAND's close that day, 103: intrinsic 3 x 50 = 150.
    legs = [ScheduledLeg(CALL, CALL_BARS, Decimal(50)), ScheduledLeg(STOCK, HAND, Decimal(10))]
    result = backtest_schedule(legs, capital=Decimal(10_000), spots={"HAND": HAND})
    assert [(f.side, f.quantity, f.price) for f in result.fills] == [
        ("buy", Decimal(50), Decimal("2.4")), ("buy", Decimal(10), Decimal(101)),
        ("sell", Decimal(10), Decimal(103)),
    ]  # fmt: skip
    (settled,) = result.settlements
    assert (settled.key, settled.quantity, settled.price, settled.underlying_price) == (
        CALL.key, Decimal(50), Decimal(3), Decimal(103),
    )  # fmt: skip
    assert (settled.cash, settled.realised, settled.outcome) == (
        Decimal(150), Decimal(30), "exercised",
    )  # fmt: skip
    assert settled.ts == dt.datetime(2025, 1, 10, tzinfo=dt.UTC)  # after the expiry day
    # cash 10,000 - 120 - 1,010 = 8,870.  bar 1: + 50 x 2.6 + 10 x 101.5; bar 2: + 150 +
    # 1,020; bar 3, settled: 8,870 + 150 + 1,030; bar 4: sold, 9,020 + 1,030.
    assert result.equity == units(10_000, 10_015, 10_040, 10_050, 10_050)
    assert result.cash[-1] == Decimal(10_050)
    # The call's trade ends at the settlement: (3 - 2.40) x 50 = 30; HAND's makes 20.
    assert sorted((t["pnl"], t["closed"] is not None) for t in result.trades) == [
        (Decimal(20), True), (Decimal(30), True),
    ]  # fmt: skip
    assert result.summary()["settled"] == 1


def test_a_long_exercised_in_the_money_pays_stt_on_its_settlement_value() -> None:
    # NSE options: STT on exercise 0.125% (before 2026-04-01) of 150 = 0.1875 -> 0.19.
    charges = DEFAULT_CHARGES.for_instrument("NFO", "option", "nrml")
    legs = [ScheduledLeg(CALL, CALL_BARS, Decimal(50), charges)]
    result = backtest_schedule(legs, capital=Decimal(10_000), spots={"HAND": HAND})
    (settled,) = result.settlements
    assert (settled.cash, settled.charges) == (Decimal(150), Decimal("0.19"))
    (buy,) = result.fills
    (trade,) = result.trades
    assert trade["net_pnl"] == Decimal(30) - buy.charges - Decimal("0.19")
    assert result.equity[-1] == Decimal(10_030) - buy.charges - Decimal("0.19")


def test_an_expiry_after_the_window_closes_the_leg_at_its_last_open() -> None:
    # Without the expiry day's close of the underlying the leg is closed as before.
    legs = [ScheduledLeg(CALL, CALL_BARS, Decimal(50))]
    result = backtest_schedule(legs, capital=Decimal(10_000))
    assert result.settlements == []
    assert [(f.side, f.price) for f in result.fills] == [("buy", Decimal("2.4")),
                                                         ("sell", Decimal("3.1"))]  # fmt: skip
    assert settlement_price(legs[0], {}) is None


def test_a_short_put_spread_blocks_its_width_and_expires_worthless() -> None:
    # Sell the 100 put at 2.40, buy the 95 put at 0.80 (lot 50) on bar 1's open.  At bar 0's
    # close the spread's orders are priced at 2.2 and 0.5; they fill at the opens.  Hedged:
    # the worst payout is the width (100 - 95) x 50 = 250, not the naked short's margin.
    put = Contract("NFO:HAND25JAN100PE", Decimal("0.05"), Decimal(50), kind="option",
                   underlying="HAND", strike=Decimal(100), option_type="put",
                   expiry=dt.date(2025, 1, 9))  # fmt: skip
    wing = Contract("NFO:HAND25JAN95PE", Decimal("0.05"), Decimal(50), kind="option",
                    underlying="HAND", strike=Decimal(95), option_type="put",
                    expiry=dt.date(2025, 1, 9))  # fmt: skip
    put_bars = bars(["2", "2.4", "1.5", "0.5"], ["2.5", "2.6", "1.6", "0.6"],
                    ["1.5", "1.6", "1", "0.05"], ["2.2", "1.8", "1", "0.1"])  # fmt: skip
    wing_bars = bars(["0.6", "0.8", "0.4", "0.1"], ["0.7", "0.9", "0.5", "0.1"],
                     ["0.4", "0.5", "0.2", "0.05"], ["0.5", "0.6", "0.3", "0.05"])  # fmt: skip
    legs = [ScheduledLeg(wing, wing_bars, Decimal(50)), ScheduledLeg(put, put_bars, Decimal(-50))]
    result = backtest_schedule(legs, capital=Decimal(10_000), spots={"HAND": HAND})
    assert [(f.side, f.price) for f in result.fills] == [("buy", Decimal("0.8")),
                                                         ("sell", Decimal("2.4"))]  # fmt: skip
    # The long wing first (it blocks nothing), then the short: the group's requirement is
    # min(naked, worst payout 250) = 250.
    assert result.margin[1:3] == units(250, 250)
    # Premiums: -40 + 120; both expire worthless at HAND 103: net +80, the margin back.
    assert {s.key: s.outcome for s in result.settlements} == {wing.key: "expired",
                                                             put.key: "expired"}  # fmt: skip
    assert result.margin == units(0, 250, 250, 0)  # settled after the expiry day's close
    assert result.equity[-1] == Decimal(10_080)
    assert result.cash[-1] == Decimal(10_080)


def test_the_rates_are_the_ones_given() -> None:
    rates = MarginRates(futures_pct=Decimal(20), exposure_pct=Decimal(0),
                        short_option_pct=Decimal(15), short_option_floor_pct=Decimal(5),
                        intraday_pct=Decimal(50))  # fmt: skip
    result = backtest_targets(HAND, units(-10, -10, 0, 0, 0), STOCK, capital=Decimal(10_000),
                              margin_rates=rates)  # fmt: skip
    assert result.margin[1] == Decimal(505 + 1010)  # 50% of 1,010, plus the proceeds


def test_a_fill_beyond_the_reservation_that_cash_cannot_pay_is_canceled() -> None:
    # 1,000 of capital; a buy of 9 at bar 0's close 100.5 needs 9 x 110.55 = 994.95.  Bar 1
    # gaps up to 115 (beyond the 10% band): 9 x 115 = 1,035 > 1,000, the fill is refused
    # and the order canceled, as paper's matcher does.
    gap = bars(["100", "115", "115", "115", "115"], ["101"] + ["116"] * 4,
               ["99"] + ["114"] * 4, ["100.5", "115", "115", "115", "115"])  # fmt: skip
    result = backtest_targets(gap, units(9, 0, 0, 0, 0), STOCK, capital=Decimal(1000))
    assert result.fills == []
    (refused,) = result.rejections
    assert (refused.code, refused.detail) == (
        "insufficient-funds", "canceled: the fill would take cash below zero",
    )  # fmt: skip
    assert result.cash == units(1000, 1000, 1000, 1000, 1000)


def test_an_account_settles_a_short_call_assigned_in_the_money() -> None:
    # Short 50 of the 100 call at 2.40.  Its naked margin, the underlying at the strike (no
    # spot quoted): 2.40 + max(15% x 100 - 0 out of the money, 5% x 100) = 17.40 a unit,
    # 870; the order needs that less the 120 of premium it receives.
    account = MarginAccount(Decimal(10_000))
    account.marks[CALL.key] = Decimal("2.4")
    needed = account.admit(CALL, Side.SELL, Decimal(50), type=OrderType.MARKET,
                           limit_price=None, stop_price=None, charges=lambda *_: Decimal(0),
                           day=dt.date(2025, 1, 7))  # fmt: skip
    assert needed == Decimal(750)
    account.opened("o", CALL, Side.SELL, Decimal(50), needed)
    account.fill("o", CALL, Side.SELL, Decimal(50), Decimal("2.4"), Decimal(0))
    assert (account.cash, account.blocked()) == (Decimal(9250), Decimal(870))
    # Assigned at HAND 103: pays 3 x 50 = 150; the 870 comes back.
    settled = account.settle_expiry(CALL, Decimal(103), dt.datetime(2025, 1, 10, tzinfo=dt.UTC))
    assert settled is not None
    assert (settled.outcome, settled.cash, settled.realised) == ("assigned", Decimal(-150),
                                                                 Decimal(-30))  # fmt: skip
    assert (account.cash, account.blocked(), account.equity()) == (
        Decimal(9970), Decimal(0), Decimal(9970),
    )  # fmt: skip
