"""Charges: the issue's hand-worked round trips (worked in the comments), Zerodha's published
calculator output, the US fees by date, and properties (never negative, monotone)."""

from __future__ import annotations

import dataclasses
import datetime as dt
from decimal import Decimal

import hypothesis.strategies as st
import pytest
from hypothesis import given

from quantdesk.trading.engine.charges import (
    DEFAULT_CHARGES,
    Charges,
    ChargeSchedule,
    ChargesUnavailable,
    Dated,
    Market,
    Segment,
    classify,
    fill_charges,
)

D = Decimal
DAY = dt.date(2026, 12, 3)  # STT on F&O at the rates from 2026-04-01


def lines(charges: Charges) -> dict[str, str]:
    return {name: f"{value:.2f}" for name, value in charges.lines().items() if value}


def test_equity_delivery_round_trip() -> None:
    # CNC: buy 100 @ 1,250.00 (value 1,25,000), sell 100 @ 1,300.00 (value 1,30,000).
    schedule = DEFAULT_CHARGES.get(Market.NSE, Segment.EQUITY_DELIVERY)
    buy = schedule.fill(side="buy", price=D(1250), quantity=D(100), day=DAY)
    # STT 0.1% = 125.00; transaction 0.00297% = 3.7125 -> 3.71; IPFT and SEBI Rs 10/crore
    # = 0.125 -> 0.13 each (half up); stamp 0.015% = 18.75; brokerage 0;
    # GST 18% of (0 + 3.71 + 0.13 + 0.13 = 3.97) = 0.7146 -> 0.71.  Total 148.43.
    assert lines(buy) == {
        "stt": "125.00",
        "exchange": "3.71",
        "ipft": "0.13",
        "sebi": "0.13",
        "stamp_duty": "18.75",
        "gst": "0.71",
    }
    assert buy.total == D("148.43")
    sell = schedule.fill(side="sell", price=D(1300), quantity=D(100), day=DAY)
    # STT 130.00; transaction 3.861 -> 3.86; IPFT 0.13; SEBI 0.13; no stamp duty on a sell;
    # GST 18% of 4.12 = 0.7416 -> 0.74.  Total 134.86.
    assert sell.total == D("134.86")
    assert sell.stamp_duty == 0
    # The calculator's view (each line over the turnover of 2,55,000): STT 255 (to the
    # rupee); transaction 7.5735 -> 7.57; IPFT and SEBI 0.255 -> 0.26; stamp 18.75;
    # GST 18% of 8.09 = 1.4562 -> 1.46.  Total 283.30.
    trip = schedule.round_trip(buy_price=D(1250), sell_price=D(1300), quantity=D(100), day=DAY)
    assert lines(trip) == {
        "stt": "255.00",
        "exchange": "7.57",
        "ipft": "0.26",
        "sebi": "0.26",
        "stamp_duty": "18.75",
        "gst": "1.46",
    }
    assert trip.total == D("283.30")


def test_intraday_round_trip() -> None:
    # MIS, Zerodha calculator's default: buy 400 @ 1,000, sell 400 @ 1,100.
    schedule = DEFAULT_CHARGES.get(Market.NSE, Segment.EQUITY_INTRADAY)
    buy = schedule.fill(side="buy", price=D(1000), quantity=D(400), day=DAY)
    # Value 4,00,000: brokerage min(0.03% = 120, 20) = 20; no STT on the buy; transaction
    # 11.88; IPFT 0.40; SEBI 0.40; stamp 0.003% = 12.00; GST 18% of 32.68 = 5.8824 -> 5.88.
    assert buy.total == D("50.56")
    sell = schedule.fill(side="sell", price=D(1100), quantity=D(400), day=DAY)
    # Value 4,40,000: brokerage 20; STT 0.025% = 110.00; transaction 13.068 -> 13.07;
    # IPFT 0.44; SEBI 0.44; GST 18% of 33.95 = 6.111 -> 6.11.  Total 150.06.
    assert lines(sell) == {
        "brokerage": "20.00",
        "stt": "110.00",
        "exchange": "13.07",
        "ipft": "0.44",
        "sebi": "0.44",
        "gst": "6.11",
    }
    assert sell.total == D("150.06")
    # Calculator: brokerage 40, STT 110, transaction 24.948 -> 24.95, IPFT 0.84, SEBI 0.84,
    # stamp 12, GST 18% of 66.63 = 11.9934 -> 11.99: 200.62 (0.50 a share to break even).
    trip = schedule.round_trip(buy_price=D(1000), sell_price=D(1100), quantity=D(400), day=DAY)
    assert trip.total == D("200.62")


def test_zerodha_published_calculator_figures() -> None:
    """Zerodha's calculator page printed, for its default intraday trade (400 @ 1,000 /
    1,100, turnover 8,40,000) under the rates of its day: brokerage 40, STT total 110,
    exchange txn charge 28.98, GST 12.42, SEBI charges 0.99, stamp duty 12, total 204.39,
    points to breakeven 0.51.  Those rates were: NSE transaction 0.00345%, no IPFT, the
    SEBI line shown with its GST (Rs 11.80/crore), GST on brokerage + transaction only."""
    today = DEFAULT_CHARGES.get(Market.NSE, Segment.EQUITY_INTRADAY)
    era = dt.date(2021, 1, 1)
    then = dataclasses.replace(
        today,
        exchange=(Dated(era, D("0.0000345")),),
        ipft=(),
        sebi=(Dated(era, D("0.00000118")),),
        gst_base=frozenset({"brokerage", "exchange"}),
    )
    trip = then.round_trip(buy_price=D(1000), sell_price=D(1100), quantity=D(400), day=era)
    assert lines(trip) == {
        "brokerage": "40.00",
        "stt": "110.00",
        "exchange": "28.98",
        "sebi": "0.99",
        "stamp_duty": "12.00",
        "gst": "12.42",
    }
    assert trip.total == D("204.39")
    assert (trip.total / 400).quantize(D("0.01")) == D("0.51")


def test_nifty_options_round_trip_and_exercise() -> None:
    # NRML, one lot of 65 NIFTY 26000 CE: buy @ 120.50, sell @ 135.25 (charges on premium).
    schedule = DEFAULT_CHARGES.for_instrument("NFO", "option", "nrml")
    buy = schedule.fill(side="buy", price=D("120.50"), quantity=D(65), day=DAY)
    # Premium 7,832.50: brokerage flat 20; transaction 0.03503% = 2.7437 -> 2.74; IPFT Rs
    # 50/crore = 0.0392 -> 0.04; SEBI 0.0078 -> 0.01; stamp 0.003% = 0.2350 -> 0.23;
    # GST 18% of 22.79 = 4.1022 -> 4.10.  Total 27.12.
    assert lines(buy) == {
        "brokerage": "20.00",
        "exchange": "2.74",
        "ipft": "0.04",
        "sebi": "0.01",
        "stamp_duty": "0.23",
        "gst": "4.10",
    }
    assert buy.total == D("27.12")
    sell = schedule.fill(side="sell", price=D("135.25"), quantity=D(65), day=DAY)
    # Premium 8,791.25: brokerage 20; STT 0.15% (from 2026-04-01) = 13.1869 -> 13.19;
    # transaction 3.0796 -> 3.08; IPFT 0.04; SEBI 0.01; GST 18% of 23.13 = 4.1634 -> 4.16.
    assert sell.total == D("40.48")
    assert sell.stt == D("13.19")
    # The same sell before 2026-04-01 paid 0.1%: 8.79125 -> 8.79.
    earlier = schedule.fill(side="sell", price=D("135.25"), quantity=D(65), day=dt.date(2025, 6, 2))
    assert earlier.stt == D("8.79")
    # Held to expiry and exercised: NIFTY settles at 26,150.40, intrinsic 150.40 x 65 =
    # 9,776.00; STT on exercise 0.15% = 14.664 -> 14.66.
    assert schedule.exercise(intrinsic_value=D("9776.00"), day=DAY) == Charges(stt=D("14.66"))


def test_nifty_futures_round_trip() -> None:
    # NRML, one lot of 65 NIFTY futures: buy @ 26,100.00, sell @ 26,250.50.
    buy = fill_charges(
        exchange="NFO", kind="future", product="nrml", side="buy",
        price=D(26100), quantity=D(65), day=DAY,
    )  # fmt: skip
    # Value 16,96,500: brokerage min(508.95, 20) = 20; transaction 0.00173% = 29.3495 ->
    # 29.35; IPFT and SEBI 1.6965 -> 1.70; stamp 0.002% = 33.93; GST 18% of 52.75 = 9.495
    # -> 9.50 (half up).  Total 96.18.
    assert lines(buy) == {
        "brokerage": "20.00",
        "exchange": "29.35",
        "ipft": "1.70",
        "sebi": "1.70",
        "stamp_duty": "33.93",
        "gst": "9.50",
    }
    assert buy.total == D("96.18")
    sell = fill_charges(
        exchange="NFO", kind="future", product="nrml", side="sell",
        price=D("26250.50"), quantity=D(65), day=DAY,
    )  # fmt: skip
    # Value 17,06,282.50: brokerage 20; STT 0.05% = 853.14125 -> 853.14; transaction
    # 29.5187 -> 29.52; IPFT and SEBI 1.7063 -> 1.71; GST 18% of 52.94 = 9.5292 -> 9.53.
    assert sell.total == D("915.61")
    assert sell.stt == D("853.14")


def test_us_sell_fees_by_date() -> None:
    # Sell 500 AAPL @ 230.15 (value 115,075.00) on 2026-12-03: SEC $20.60/M = 2.370545 ->
    # 2.38 (up to the cent); TAF $0.000195 x 500 = 0.0975 -> 0.10.  No commission.
    sell = fill_charges(
        exchange="NASDAQ", kind="equity", product="cnc", side="sell",
        price=D("230.15"), quantity=D(500), day=DAY,
    )  # fmt: skip
    assert lines(sell) == {"sec_fee": "2.38", "taf": "0.10"}
    assert sell.total == D("2.48")
    # The buy pays nothing.
    us = DEFAULT_CHARGES.get(Market.US, Segment.US_EQUITY)
    assert us.fill(side="buy", price=D("230.15"), quantity=D(500), day=DAY).total == 0
    # In the SEC's zero window (2025-05-14 to 2026-04-03): TAF only, $0.000166 x 500 = 0.083
    # -> 0.09.  Before it, $27.80/M: 3.199085 -> 3.20.
    zero = us.fill(side="sell", price=D("230.15"), quantity=D(500), day=dt.date(2025, 6, 2))
    assert lines(zero) == {"taf": "0.09"}
    before = us.fill(side="sell", price=D("230.15"), quantity=D(500), day=dt.date(2025, 1, 2))
    assert before.sec_fee == D("3.20")
    # A big sell meets the TAF cap: 60,000 x $0.000195 = 11.70, capped at 9.79.
    big = us.fill(side="sell", price=D(10), quantity=D(60000), day=DAY)
    assert big.taf == D("9.79")
    assert big.sec_fee == D("12.36")


def test_brokerage_per_order_across_partial_fills() -> None:
    options = DEFAULT_CHARGES.get(Market.NSE, Segment.OPTIONS)
    first = options.fill(side="buy", price=D(100), quantity=D(65), day=DAY)
    later = options.fill(
        side="buy", price=D(100), quantity=D(65), day=DAY, order_value_before=D(6500)
    )
    assert (first.brokerage, later.brokerage) == (D(20), D(0))
    # Intraday: 0.03% until the order's brokerage reaches Rs 20, on the whole order.
    mis = DEFAULT_CHARGES.get(Market.NSE, Segment.EQUITY_INTRADAY)
    part1 = mis.fill(side="buy", price=D(100), quantity=D(500), day=DAY)  # 50,000: 15.00
    part2 = mis.fill(
        side="buy", price=D(100), quantity=D(500), day=DAY, order_value_before=D(50000)
    )  # the order's 1,00,000 would be 30.00, capped at 20: this fill pays 5.00
    assert (part1.brokerage, part2.brokerage) == (D(15), D(5))


def test_classification_and_unknowns() -> None:
    assert classify("NSE", "equity", "cnc") == (Market.NSE, Segment.EQUITY_DELIVERY)
    assert classify("SIM", "etf", "mis") == (Market.NSE, Segment.EQUITY_INTRADAY)
    assert classify("BSE", "option", "nrml") == (Market.BSE, Segment.OPTIONS)
    assert classify("OPRA", "option", "cnc") == (Market.US, Segment.US_OPTIONS)
    with pytest.raises(ChargesUnavailable):
        classify("NSE", "index", "cnc")
    with pytest.raises(ChargesUnavailable, match="before 2024-10-01"):
        nse_options = DEFAULT_CHARGES.get(Market.NSE, Segment.OPTIONS)
        nse_options.fill(side="buy", price=D(1), quantity=D(1), day=dt.date(2024, 1, 1))


sides = st.sampled_from(["buy", "sell"])
schedules = st.sampled_from(sorted(DEFAULT_CHARGES.schedules.values(), key=repr))
money = st.decimals(min_value=D("0.05"), max_value=D(50000), places=2)
quantities = st.integers(min_value=1, max_value=200_000).map(D)
days = st.dates(min_value=dt.date(2024, 10, 1), max_value=dt.date(2027, 12, 31))


@given(schedules, sides, money, quantities, quantities, days)
def test_never_negative_and_monotone_in_quantity(
    schedule: ChargeSchedule, side: str, price: Decimal, q1: Decimal, q2: Decimal, day: dt.date
) -> None:
    small, large = sorted((q1, q2))
    a = schedule.fill(side=side, price=price, quantity=small, day=day)
    b = schedule.fill(side=side, price=price, quantity=large, day=day)
    for (name, x), (_, y) in zip(a.lines().items(), b.lines().items(), strict=True):
        assert 0 <= x <= y, name
    assert 0 <= a.total <= b.total
