"""The day's lifecycle, worked by hand: expiry at intrinsic value, futures' MTM and final
settlement, corporate actions on holdings, T+1 dates."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import hypothesis.strategies as st
import pytest
from hypothesis import given

from quantdesk.trading.engine.charges import DEFAULT_CHARGES, Market, Segment
from quantdesk.trading.engine.positions import Position, apply_fill
from quantdesk.trading.engine.settlement import (
    Bonus,
    Dividend,
    Split,
    apply_corporate_action,
    intrinsic_value,
    mark_to_market,
    settle_future,
    settle_option,
    settlement_day,
    unsettled_quantity,
)

D = Decimal
LOT = D(65)
NIFTY_SETTLES = D("26150.40")


def opened(quantity: int, price: str) -> Position:
    return apply_fill(Position(), D(quantity), D(price)).position


def test_long_call_exercised_at_intrinsic_value() -> None:
    # Long 65 NIFTY 26000 CE bought @ 120.50 (cost 7,832.50); NIFTY settles at 26,150.40:
    # intrinsic 150.40, cash 65 x 150.40 = 9,776.00, realised 9,776.00 - 7,832.50 = 1,943.50.
    result = settle_option(
        opened(65, "120.50"),
        option_type="call",
        strike=D(26000),
        underlying_settlement_price=NIFTY_SETTLES,
    )
    assert result.price == D("150.40")
    assert result.cash == D(9776)
    assert result.realised == D("1943.5")
    assert result.position == Position(D(0), D(0), D("1943.5"))
    assert result.exercised_value == D(9776)
    assert not result.assigned
    # STT on the exercise: 0.15% of 9,776 = 14.664 -> 14.66.
    options = DEFAULT_CHARGES.get(Market.NSE, Segment.OPTIONS)
    stt = options.exercise(intrinsic_value=result.exercised_value, day=dt.date(2026, 12, 29))
    assert stt.total == D("14.66")


def test_short_options_expire_worthless_or_are_assigned() -> None:
    # Short 65 26200 CE sold @ 80 (cost -5,200): out of the money, nothing paid, the
    # premium is realised.
    otm = settle_option(
        opened(-65, "80"),
        option_type="call",
        strike=D(26200),
        underlying_settlement_price=NIFTY_SETTLES,
    )
    assert (otm.cash, otm.realised, otm.assigned) == (D(0), D(5200), False)
    # Short 65 26300 PE sold @ 100 (cost -6,500): intrinsic 149.60, pays 9,724.00;
    # realised -9,724 + 6,500 = -3,224.
    itm = settle_option(
        opened(-65, "100"),
        option_type="put",
        strike=D(26300),
        underlying_settlement_price=NIFTY_SETTLES,
    )
    assert (itm.cash, itm.realised, itm.assigned) == (D(-9724), D(-3224), True)
    assert itm.exercised_value == 0  # STT on exercise is the buyer's
    assert intrinsic_value("put", D(100), D(120)) == 0
    with pytest.raises(ValueError, match="call or put"):
        intrinsic_value("straddle", D(1), D(1))


def test_future_daily_mtm_then_final_settlement() -> None:
    # Long 65 NIFTY futures @ 26,100 (cost 16,96,500).  Day 1 settles at 26,180: the
    # variation 65 x 80 = 5,200 is paid in, the cost becomes 17,01,700.
    day1 = mark_to_market(opened(65, "26100"), settlement_price=D(26180))
    assert day1.variation == D(5200)
    assert day1.position == Position(D(65), D(1701700), D(5200))
    # Expiry: the final settlement price 26,050.25 closes it: 16,93,266.25 - 17,01,700 =
    # -8,433.75 paid.  Over both days: 65 x (26,050.25 - 26,100) = -3,233.75.
    final = settle_future(day1.position, final_settlement_price=D("26050.25"))
    assert final.cash == final.realised == D("-8433.75")
    assert final.position.quantity == 0
    assert final.position.realised_pnl == D("-3233.75")
    # A short gains when the price falls.
    assert mark_to_market(opened(-65, "26100"), settlement_price=D(26000)).variation == 6500


def test_corporate_actions() -> None:
    # 1:1 bonus on 10 @ 1,500: 20 shares, same cost 15,000, average 750.
    bonus = apply_corporate_action(opened(10, "1500"), Bonus(D(1), D(1)))
    assert bonus.position.quantity == 20
    assert bonus.position.average_price == 750
    assert bonus.cash == 0
    # Split of face value 10 into 2 (1:5) on 7 @ 1,000: 35 @ 200.
    split = apply_corporate_action(opened(7, "1000"), Split(D(1), D(5)))
    assert (split.position.quantity, split.position.average_price) == (D(35), D(200))
    # 3:2 bonus on 5 @ 1,500 (cost 7,500): 12.5 entitled, 12 whole shares.  Dropped: the
    # cost stays on 12 (average 625).  Paid in lieu at 600: 0.5 x 600 = 300 cash, 300 of
    # cost out (7,500 x 0.5 / 12.5), nothing realised; 12 @ 600.
    dropped = apply_corporate_action(opened(5, "1500"), Bonus(D(3), D(2)))
    assert (dropped.position.quantity, dropped.fraction) == (D(12), D("0.5"))
    assert dropped.position.average_price == 625
    paid = apply_corporate_action(opened(5, "1500"), Bonus(D(3), D(2)), fraction_price=D(600))
    assert (paid.cash, paid.realised, paid.position.cost) == (D(300), D(0), D(7200))
    # Reverse split 10:1 on 25 shares: 2 whole, 0.5 dropped.
    reverse = apply_corporate_action(opened(25, "10"), Split(D(10), D(1)))
    assert (reverse.position.quantity, reverse.fraction) == (D(2), D("0.5"))
    # Dividend of 12.50 a share: 20 held receive 250; a short of 10 pays 125.
    assert apply_corporate_action(bonus.position, Dividend(D("12.50"))).cash == 250
    assert apply_corporate_action(opened(-10, "100"), Dividend(D("12.50"))).cash == -125
    with pytest.raises(ValueError, match="positive"):
        apply_corporate_action(opened(1, "1"), Split(D(0), D(1)))


HOLIDAYS = {dt.date(2026, 12, 25)}


def nse_day(day: dt.date) -> bool:
    return day.weekday() < 5 and day not in HOLIDAYS


def test_t_plus_one() -> None:
    assert settlement_day(dt.date(2026, 12, 3), nse_day) == dt.date(2026, 12, 4)
    assert settlement_day(dt.date(2026, 12, 4), nse_day) == dt.date(2026, 12, 7)  # Fri -> Mon
    assert settlement_day(dt.date(2026, 12, 24), nse_day) == dt.date(2026, 12, 28)  # holiday
    assert settlement_day(dt.date(2026, 12, 3), nse_day, days=0) == dt.date(2026, 12, 3)
    buys = [(dt.date(2026, 12, 3), D(10)), (dt.date(2026, 12, 4), D(5))]
    assert unsettled_quantity(buys, dt.date(2026, 12, 4), nse_day) == 5
    assert unsettled_quantity(buys, dt.date(2026, 12, 7), nse_day) == 0
    with pytest.raises(ValueError, match="no 1 trading days"):
        settlement_day(dt.date(2026, 12, 3), lambda day: False)


@given(
    st.integers(min_value=1, max_value=10_000),
    st.decimals(min_value=D("0.05"), max_value=D(5000), places=2),
    st.sampled_from([Split(D(1), D(2)), Split(D(1), D(10)), Bonus(D(1), D(1)), Bonus(D(1), D(2))]),
)
def test_splits_and_bonuses_keep_the_cost(
    quantity: int, price: Decimal, action: Split | Bonus
) -> None:
    before = opened(quantity, str(price))
    after = apply_corporate_action(before, action).position
    assert after.cost == before.cost
    assert after.quantity == int(quantity * action.ratio)
    assert after.quantity >= before.quantity
