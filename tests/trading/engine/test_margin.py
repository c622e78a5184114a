"""Margin: naked requirements worked by hand, hedges against ``analytics.strategies``' max
loss (an iron condor blocks, net of its credit, exactly its maximum loss), the order check,
and properties (a hedged book never blocks more than its naked legs, nor more than its max
loss)."""

from __future__ import annotations

import datetime as dt
import math
from decimal import Decimal
from typing import Literal

import hypothesis.strategies as st
import pytest
from hypothesis import given, settings

from quantdesk.analytics.strategies import FutureLeg, Leg, OptionLeg, extremes
from quantdesk.analytics.strategies.templates import Market, iron_condor
from quantdesk.analytics.strategies.valuation import pnl_curve
from quantdesk.trading.engine.margin import (
    MarginLeg,
    MarginRates,
    check_order,
    margin_report,
    naked_requirement,
    worst_payout,
)

D = Decimal
EXPIRY = dt.date(2026, 12, 29)
SPOT = D(26000)
LOT = D(65)
RATES = MarginRates()  # futures 9% + 3% exposure; short options 15%, floor 5%; MIS 20%


def option(kind: str, strike: int, lots: int, premium: str) -> MarginLeg:
    return MarginLeg(
        key=f"NFO:NIFTY{strike}{'CE' if kind == 'call' else 'PE'}",
        kind="option",
        quantity=lots * LOT,
        price=D(premium),
        underlying="NIFTY",
        underlying_price=SPOT,
        strike=D(strike),
        option_type=kind,
        expiry=EXPIRY,
    )


def future(lots: int, price: str = "26100") -> MarginLeg:
    return MarginLeg("NFO:NIFTYFUT", "future", lots * LOT, D(price), underlying="NIFTY",
                     expiry=EXPIRY)  # fmt: skip


def analytics_legs(legs: list[MarginLeg]) -> list[Leg]:
    out: list[Leg] = []
    for leg in legs:
        q, p = float(leg.quantity), float(leg.price)
        if leg.kind == "future":
            out.append(FutureLeg(0.05, q, p))
        else:
            kind: Literal["call", "put"] = "call" if leg.option_type == "call" else "put"
            assert leg.strike is not None
            out.append(OptionLeg(kind, float(leg.strike), 0.05, 0.15, q, p))
    return out


def net_premium(legs: list[MarginLeg]) -> Decimal:
    """Paid (+) or received (-) for the options at their marks."""
    return sum((leg.units * leg.price for leg in legs if leg.kind == "option"), D(0))


def test_naked_requirements_by_hand() -> None:
    # Long 1 lot of futures @ 26,100: 12% of 65 x 26,100 = 16,96,500 x 0.12 = 2,03,580.
    assert naked_requirement(future(1), RATES) == D(203580)
    # Short 26,200 CE @ 80 with NIFTY at 26,000: premium 80 + max(15% x 26,000 - 200 OTM,
    # 5% x 26,000) = 80 + 3,700 = 3,780 a unit; x 65 = 2,45,700.
    assert naked_requirement(option("call", 26200, -1, "80"), RATES) == D(245700)
    # Short 21,000 PE @ 2 (deep OTM): 2 + max(3,900 - 5,000, 5% x 21,000 = 1,050) = 1,052
    # a unit: the floor on the strike; x 65 = 68,380.
    assert naked_requirement(option("put", 21000, -1, "2"), RATES) == D(68380)
    # Long options block nothing (the premium is paid).
    assert naked_requirement(option("call", 26200, 1, "80"), RATES) == 0
    # An intraday equity short: 20% of 100 x 2,500.
    short = MarginLeg("NSE:INFY", "equity", D(-100), D(2500), product="mis")
    assert naked_requirement(short, RATES) == D(50000)


def test_credit_call_spread_blocks_its_width() -> None:
    # Sell 26,000 CE @ 150, buy 26,200 CE @ 70: width 200 x 65 = 13,000 blocked; the credit
    # 80 x 65 = 5,200 comes into cash, so buying power falls by 7,800 = the max loss.
    legs = [option("call", 26000, -1, "150"), option("call", 26200, 1, "70")]
    report = margin_report(legs, RATES)
    (group,) = report.groups
    assert group.worst_payout == D(13000)
    assert report.required == D(13000)
    assert group.hedged
    assert group.naked == naked_requirement(legs[0], RATES)  # the long leg blocks nothing
    assert [leg.required for leg in report.legs] == [D(13000), D(0)]
    max_loss = extremes(pnl_curve(analytics_legs(legs))).max_loss
    assert float(report.required + net_premium(legs)) == pytest.approx(-max_loss)


def test_iron_condor_blocks_no_more_than_its_max_loss() -> None:
    # Built with the strategies template, priced by its model; blocked against the payoff.
    market = Market(spot=float(SPOT), iv=0.15)
    template = iron_condor(25800, 25900, 26100, 26200, expiry=0.05, market=market, lot_size=65)
    legs = [
        option(t.kind, int(t.strike), int(t.quantity), f"{t.entry_price:.2f}")
        for t in template
        if isinstance(t, OptionLeg)
    ]
    report = margin_report(legs, RATES)
    credit = -net_premium(legs)
    assert credit > 0
    # The put wing and the call wing are each 100 wide; only one can pay at expiry.
    assert report.required == D(6500)
    assert report.required < sum(naked_requirement(leg, RATES) for leg in legs)
    max_loss = extremes(pnl_curve(analytics_legs(legs))).max_loss
    assert float(report.required - credit) == pytest.approx(-max_loss)
    # Per position: the two short legs share the 6,500 in proportion to their naked margins.
    assert sum(leg.required for leg in report.legs) == report.required


def test_protective_put_on_a_future_and_separate_expiries() -> None:
    # Long future @ 26,100 and a long 25,900 PE: at worst 200 x 65 = 13,000 below the
    # future's price, far less than its 12% (2,03,580).
    legs = [future(1), option("put", 25900, 1, "120")]
    assert margin_report(legs, RATES).required == D(13000)
    # A call of another expiry is not a hedge (calendars are not offset).
    naked_short = option("call", 26000, -1, "150")
    far_long = MarginLeg(
        "NFO:NIFTY26000CE-JAN", "option", LOT, D(300), underlying="NIFTY",
        underlying_price=SPOT, strike=D(26000), option_type="call",
        expiry=EXPIRY + dt.timedelta(days=28),
    )  # fmt: skip
    report = margin_report([naked_short, far_long], RATES)
    assert report.required == naked_requirement(naked_short, RATES)
    # Unbounded: a short future alone has no worst payout.
    assert worst_payout([future(-1)]) is None


def test_order_check_numbers_and_failure() -> None:
    book = [option("call", 26000, -1, "150")]  # naked: (150 + 3,900) x 65 = 2,63,250
    assert margin_report(book, RATES).required == D(263250)
    hedge = option("call", 26200, 1, "70")
    check = check_order(book, hedge, available=D(5000), charges=D("27.12"))
    # Margin falls to the 13,000 width; the premium 4,550 is paid: needs -2,45,672.88.
    assert check.margin_after == D(13000)
    assert check.premium == D(4550)
    assert check.required == D("-245672.88")
    assert check.ok
    assert check.failure("INR") is None
    # Selling another naked call with 1,00,000 free: +2,63,250 margin less the 9,750 credit.
    more = option("call", 26000, -1, "150")
    refused = check_order(book, more, available=D(100000))
    assert refused.required == D(253500)
    assert not refused.ok
    assert refused.numbers()["shortfall"] == "153500"
    failure = refused.failure("INR")
    assert failure is not None
    assert failure.type == "insufficient-margin"
    assert "153500 short" in failure.detail


strikes = st.integers(min_value=250, max_value=270).map(lambda n: n * 100)
lots = st.integers(min_value=-3, max_value=3).filter(bool)
premiums = st.integers(min_value=1, max_value=4000).map(lambda n: f"{n / 10:.1f}")
option_legs = st.builds(option, st.sampled_from(["call", "put"]), strikes, lots, premiums)
books = st.lists(
    st.one_of(option_legs, st.builds(future, lots, st.sampled_from(["25950", "26100"]))),
    min_size=1,
    max_size=5,
    unique_by=lambda leg: leg.key,
)


@settings(max_examples=60, deadline=None)
@given(books)
def test_hedged_book_within_naked_legs_and_max_loss(legs: list[MarginLeg]) -> None:
    report = margin_report(legs, RATES)
    naked_sum = sum(naked_requirement(leg, RATES) for leg in legs)
    assert 0 <= report.required <= naked_sum
    assert sum(leg.required for leg in report.legs) == report.required
    # Never more (net of premiums) than the maximum loss at expiry, where that is bounded
    # (a book that cannot lose, its lowest P/L a profit, blocks nothing: it pays premiums).
    worst = extremes(pnl_curve(analytics_legs(legs))).max_loss
    if math.isfinite(worst):
        premium = float(net_premium(legs))
        net = float(report.required) + premium
        assert net <= max(-worst, premium) + 1e-6 * max(1.0, abs(worst))
