"""A backtest fills exactly as paper trading does: the same quotes, prints and orders fed to
a paper session through the API (the matcher, the database, the ledger) and to the
backtest's :class:`PaperBook` give the same fills, in the same order, at the same prices.

The script walks the matching cases of docs/trading.md: a market order at the touch and one
beyond the displayed size, a resting limit filled as a maker, a stop elected by a gap and
filled at the market, a resting sell filled by a trade print, an IOC after the offer's size
is used up."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from quantdesk.marketdata.domain import Quote, Trade
from quantdesk.signals.research.backtest import Contract, PaperBook
from quantdesk.trading.engine.positions import tidy
from quantdesk.trading.engine.types import OrderType, Side, TimeInForce
from quantdesk.trading.matcher import quote_tick, trade_tick
from tests.trading.conftest import TICK, Desk

KEY = "SIM:ALPHA"
OPENING = ("99.95", 500, "100.05", 300, "100.00")  # the desk fixture's first quote
SCRIPT: list[tuple[str, Any]] = [
    ("order", {"side": "buy", "quantity": 200, "type": "market"}),
    ("order", {"side": "buy", "quantity": 500, "type": "market"}),
    ("order", {"side": "buy", "quantity": 1000, "type": "limit", "limit_price": "100.00"}),
    ("quote", ("99.90", 500, "99.95", 300, "99.95")),
    ("order", {"side": "sell", "quantity": 100, "type": "stop", "stop_price": "98.00"}),
    ("quote", ("97.00", 500, "97.10", 300, "97.05")),
    ("order", {"side": "sell", "quantity": 300, "type": "limit", "limit_price": "101.00"}),
    ("trade", ("101.00", 120)),
    ("order", {"side": "buy", "quantity": 900, "type": "limit", "limit_price": "97.20",
               "time_in_force": "ioc"}),
]  # fmt: skip


def _quote(values: tuple[str, int, str, int, str], at: dt.datetime, n: int) -> Quote:
    bid, bid_size, ask, ask_size, last = values
    return Quote(KEY, Decimal(last), at, Decimal(bid), Decimal(ask), Decimal(bid_size),
                 Decimal(ask_size), source_id=f"q{n}")  # fmt: skip


def backtest_fills() -> list[tuple[str, str]]:
    at = dt.datetime(2026, 12, 3, 9, 30, tzinfo=dt.UTC)
    book = PaperBook(Contract(KEY, TICK), Decimal(10_000_000), max_quote_age=None)
    book.quote(quote_tick(_quote(OPENING, at, 0)))
    for n, (kind, item) in enumerate(SCRIPT, start=1):
        at += dt.timedelta(seconds=1)
        if kind == "quote":
            book.quote(quote_tick(_quote(item, at, n)))
        elif kind == "trade":
            book.trade(trade_tick(Trade(KEY, Decimal(item[0]), Decimal(item[1]), at, f"t{n}")))
        else:
            book.order(
                Side(item["side"]), Decimal(item["quantity"]), at, type=OrderType(item["type"]),
                limit_price=Decimal(item["limit_price"]) if "limit_price" in item else None,
                stop_price=Decimal(item["stop_price"]) if "stop_price" in item else None,
                time_in_force=TimeInForce(item.get("time_in_force", "gtc")),
            )  # fmt: skip
    return [(format(tidy(f.quantity), "f"), format(f.price, "f")) for f in book.fills]


async def test_a_backtest_fills_as_a_paper_session(desk: Desk) -> None:
    for kind, item in SCRIPT:
        if kind == "quote":
            await desk.quote(KEY, *item)
        elif kind == "trade":
            await desk.trade(KEY, *item)
        else:
            await desk.place(**{"time_in_force": "gtc", **item})
    paper = await desk.fills()
    expected = backtest_fills()
    assert paper == expected
    # ...and those are the fills worked out by hand.
    assert expected == [
        ("200", "100.05"),  # market at the ask
        ("100", "100.05"), ("400", "100.10"),  # beyond the 300 on offer: one tick worse
        ("300", "100.00"),  # the resting limit, as a maker, up to the new offer's size
        ("100", "97.00"),  # the gap elects the stop: filled at the bid
        ("300", "100.00"),  # the limit's rest (700) against the 300 offered at 97.10
        ("120", "101.00"),  # the resting sell, filled by the print
        # The limit took the 300 on offer: the IOC fills one tick worse, within its limit.
        ("900", "97.15"),
    ]  # fmt: skip
