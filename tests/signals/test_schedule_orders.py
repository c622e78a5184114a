"""A saved strategy's schedule with limit and stop orders: the same order building as a
signal's (``Execution``), worked by hand on one leg."""

from __future__ import annotations

from decimal import Decimal

from quantdesk.signals.research.backtest import Execution, ScheduledLeg, backtest_schedule
from tests.signals.test_backtest import BARS, STOCK

CAPITAL = Decimal(10_000)


def test_a_schedules_entry_and_exit_as_limit_and_stop_orders_by_hand() -> None:
    # Long 10 from bar 0's close to bar 3's (the schedule exits at its last bar's open).
    leg = ScheduledLeg(STOCK, BARS, Decimal(10))
    market = backtest_schedule([leg], capital=CAPITAL)
    assert [(f.side, f.price) for f in market.fills] == [
        ("buy", Decimal(101)),
        ("sell", Decimal(103)),
    ]
    # Limits at the close: buy 100.5, reached by bar 1's low after its open of 101 (a
    # maker at 100.5); sell 103 at bar 3's close, bar 4 opens at 103: filled there.
    limits = backtest_schedule([leg], capital=CAPITAL, execution=Execution("limit"))
    assert [(f.side, f.price, f.liquidity) for f in limits.fills] == [
        ("buy", Decimal("100.5"), "maker"), ("sell", Decimal(103), "taker"),
    ]  # fmt: skip
    assert limits.equity[-1] == CAPITAL + 25
    # Stops 50 bp away: buy 100.5 x 1.005 -> 101.05, elected by bar 1's high 102 and filled
    # on it; sell 103 x 0.995 = 102.485 -> 102.45, elected by bar 4's low 102: P&L 0.
    stops = backtest_schedule([leg], capital=CAPITAL,
                              execution=Execution("stop", Decimal(50)))  # fmt: skip
    assert [(f.side, f.price) for f in stops.fills] == [
        ("buy", Decimal(102)),
        ("sell", Decimal(102)),
    ]
    assert stops.equity[-1] == CAPITAL
    assert stops.expired == 0
