"""Backtests on the matching engine: hand-made bars with a known rule, fills and P&L by
hand (with and without India's charges), the tear sheet."""

from __future__ import annotations

import datetime as dt
import xml.etree.ElementTree as ElementTree
from decimal import Decimal

import pytest

from quantdesk.signals.research.backtest import (
    Contract,
    PriceBars,
    ScheduledLeg,
    backtest_schedule,
    backtest_targets,
    bar_quotes,
    targets_from_probability,
)
from quantdesk.signals.research.tearsheet import tearsheet_svg
from quantdesk.trading.engine.charges import DEFAULT_CHARGES
from quantdesk.trading.engine.fill_models import OneTickSlippageFillModel


def units(*values: int | str) -> list[Decimal]:
    return [Decimal(v) for v in values]


MONDAY = int(dt.datetime(2025, 1, 6, tzinfo=dt.UTC).timestamp())
BARS = PriceBars.of_text(
    [MONDAY + 86_400 * k for k in range(5)],
    ["100", "101", "101.5", "102.5", "103"],
    ["101", "102", "103", "103.5", "104"],
    ["99", "100", "101", "102", "102"],
    ["100.5", "101.5", "102", "103", "103.5"],
    86_400,
)
STOCK = Contract("NSE:HAND", Decimal("0.05"))
# The rule: long 10 shares from the close of bar 0, flat from the close of bar 2.
TARGETS = [Decimal(10), Decimal(10), Decimal(0), Decimal(0), Decimal(0)]


def test_a_known_rule_fills_at_the_next_open_by_hand() -> None:
    result = backtest_targets(BARS, TARGETS, STOCK, capital=Decimal(10_000))
    assert [(f.side, f.quantity, f.price) for f in result.fills] == [
        ("buy", Decimal(10), Decimal(101)),  # read at bar 0's close, filled at bar 1's open
        ("sell", Decimal(10), Decimal("102.5")),  # read at bar 2's close, filled at bar 3's open
    ]
    assert [f.ts.date() for f in result.fills] == [dt.date(2025, 1, 7), dt.date(2025, 1, 9)]
    # cash 10000 - 1010 = 8990 while long; marked at each close
    assert result.equity == [
        Decimal(10_000),
        Decimal(10_005),
        Decimal(10_010),
        Decimal(10_015),
        Decimal(10_015),
    ]
    assert result.position == [Decimal(0), Decimal(10), Decimal(10), Decimal(0), Decimal(0)]
    (trade,) = result.trades
    assert (trade["side"], trade["pnl"], trade["net_pnl"]) == ("long", Decimal(15), Decimal(15))
    assert result.measures["total_return"] == pytest.approx(0.0015)


def test_india_delivery_charges_by_hand() -> None:
    # Buy 10 x 101 = 1010: STT 0.1% 1.01, NSE transaction 0.00297% 0.03, stamp 0.015%
    # 0.15, SEBI Rs 10/crore 0.00, GST 18% of 0.03 0.01 -> 1.20.  Sell 10 x 102.5 = 1025:
    # STT 1.025 -> 1.03 (half up), transaction 0.03, GST 0.01 -> 1.07.
    charges = DEFAULT_CHARGES.for_instrument("NSE", "equity", "cnc")
    result = backtest_targets(BARS, TARGETS, STOCK, capital=Decimal(10_000), charges=charges)
    assert [f.charges for f in result.fills] == [Decimal("1.20"), Decimal("1.07")]
    assert result.equity[-1] == Decimal("10012.73")
    assert result.trades[0]["net_pnl"] == Decimal("12.73")


def test_slippage_and_a_flip_to_short() -> None:
    # One tick of slippage (0.05) on each market order; long 10 then short 10 in one order.
    targets = [Decimal(10), Decimal(-10), Decimal(-10), Decimal(0), Decimal(0)]
    result = backtest_targets(BARS, targets, STOCK, capital=Decimal(10_000),
                              fill_model=OneTickSlippageFillModel())  # fmt: skip
    assert [(f.side, f.quantity, f.price) for f in result.fills] == [
        ("buy", Decimal(10), Decimal("101.05")),
        ("sell", Decimal(20), Decimal("101.45")),
        ("buy", Decimal(10), Decimal("103.05")),  # flat from bar 3's close: bar 4 opens at 103
    ]
    long, short = result.trades
    assert long["pnl"] == Decimal(4)  # (101.45 - 101.05) x 10
    assert short["side"] == "short"
    assert short["pnl"] == Decimal(-16)  # (101.45 - 103.05) x 10


def test_bar_quotes_follow_the_ohlc_path() -> None:
    up = bar_quotes(BARS, 0, STOCK.key, STOCK.tick_size)
    assert [q.last for q in up] == [
        Decimal(100),
        Decimal(99),
        Decimal(101),
        Decimal("100.5"),
    ]  # closed up: low first
    down = PriceBars.of_text([MONDAY], ["10"], ["11"], ["9"], ["9.5"], 60)
    assert [q.last for q in bar_quotes(down, 0, "K", Decimal("0.05"), 1)] == units(10, 11, 9, "9.5")
    spread = bar_quotes(down, 0, "K", Decimal("0.05"), 1)[0]
    assert (spread.bid, spread.ask) == (Decimal("9.95"), Decimal("10.05"))
    assert [q.ts.second for q in up][-1] == 59  # the close, one second before the bar ends


def test_targets_from_probability() -> None:
    got = targets_from_probability([0.7, 0.5, 0.2, float("nan")], Decimal(5), allow_short=True)
    assert got == [Decimal(5), Decimal(0), Decimal(-5), Decimal(0)]
    assert targets_from_probability([0.2], Decimal(5)) == [Decimal(0)]


def test_tearsheet_is_an_svg_with_markers() -> None:
    result = backtest_targets(BARS, TARGETS, STOCK, capital=Decimal(10_000))
    svg = tearsheet_svg(
        "NSE:HAND <rule>", result.ts, [float(e) for e in result.equity],
        entries=[(MONDAY, "buy"), (MONDAY + 2 * 86_400, "sell")], measures=result.measures,
    )  # fmt: skip
    root = ElementTree.fromstring(svg)  # noqa: S314 - our own output
    assert root.tag == "{http://www.w3.org/2000/svg}svg"
    assert len(root.findall("{http://www.w3.org/2000/svg}polygon")) == 2
    assert "NSE:HAND &lt;rule&gt;" in svg


def test_a_schedule_of_two_legs_on_their_own_books() -> None:
    # Long 10 of HAND from bar 1's open (101) to bar 4's open (103): +20.  Short 4 of a
    # second instrument from its bar 1 open (50) to its bar 4 open (48): +8.
    other = PriceBars.of_text(BARS.ts, ["49", "50", "49", "49", "48"], ["51"] * 5,
                              ["47"] * 5, ["49.5", "49", "49", "48.5", "48"], 86_400)  # fmt: skip
    legs = [ScheduledLeg(STOCK, BARS, Decimal(10)),
            ScheduledLeg(Contract("NSE:OTHER", Decimal("0.05")), other, Decimal(-4))]  # fmt: skip
    result = backtest_schedule(legs, capital=Decimal(10_000))
    assert [(f.side, f.quantity, f.price) for f in result.fills] == [
        ("buy", Decimal(10), Decimal(101)), ("sell", Decimal(4), Decimal(50)),
        ("sell", Decimal(10), Decimal(103)), ("buy", Decimal(4), Decimal(48)),
    ]  # fmt: skip
    assert result.equity[-1] == Decimal(10_028)
    # bar 1 closes: HAND 10 x (101.5 - 101) = 5, OTHER -4 x (49 - 50) = 4
    assert result.equity[1] == Decimal(10_009)
    assert sorted(t["pnl"] for t in result.trades) == [Decimal(8), Decimal(20)]
