"""The nine matching cases of docs/trading.md, driven on the pure engine.

Tick 0.05, starting quote bid 99.95x500 / ask 100.05x300, last 100.00, size tracking on,
no slippage.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from quantdesk.trading.engine.matching import MatchingEngine
from quantdesk.trading.engine.types import (
    EventKind,
    InstrumentSpec,
    Liquidity,
    Order,
    OrderEvent,
    OrderType,
    QuoteTick,
    Side,
    TimeInForce,
    TradeTick,
)

D = Decimal
T0 = dt.datetime(2026, 12, 3, 9, 30, tzinfo=dt.UTC)
SPEC = InstrumentSpec("SIM:ALPHA", tick_size=D("0.05"))


def quote(
    n: int, bid: str, bid_size: int, ask: str, ask_size: int, last: str = "100.00"
) -> QuoteTick:
    at = T0 + dt.timedelta(seconds=n)
    return QuoteTick(D(bid), D(bid_size), D(ask), D(ask_size), at, f"q{n}", D(last))


@pytest.fixture
def engine() -> MatchingEngine:
    engine = MatchingEngine(SPEC)
    engine.on_quote(quote(0, "99.95", 500, "100.05", 300))
    return engine


def order(
    side: Side,
    kind: OrderType,
    quantity: int,
    *,
    limit: str | None = None,
    stop: str | None = None,
    tif: TimeInForce = TimeInForce.GTC,
) -> Order:
    return Order(
        id="o1",
        side=side,
        type=kind,
        quantity=D(quantity),
        time_in_force=tif,
        limit_price=None if limit is None else D(limit),
        stop_price=None if stop is None else D(stop),
    )


def fills(events: list[OrderEvent]) -> list[tuple[D, D]]:
    return [(e.fill.quantity, e.fill.price) for e in events if e.fill is not None]


def test_1_market_buy_fills_at_the_ask_not_the_last(engine: MatchingEngine) -> None:
    events = engine.add(order(Side.BUY, OrderType.MARKET, 200), T0)
    assert fills(events) == [(D(200), D("100.05"))]
    assert events[0].fill is not None
    assert events[0].fill.liquidity is Liquidity.TAKER
    assert engine.open_orders() == []


def test_2_market_buy_beyond_displayed_size_fills_the_rest_one_tick_worse(
    engine: MatchingEngine,
) -> None:
    events = engine.add(order(Side.BUY, OrderType.MARKET, 500), T0)
    assert fills(events) == [(D(300), D("100.05")), (D(200), D("100.10"))]
    ids = {e.fill.execution_id for e in events if e.fill}
    assert len(ids) == 2


def test_3_marketable_limit_takes_the_better_quote(engine: MatchingEngine) -> None:
    events = engine.add(order(Side.BUY, OrderType.LIMIT, 200, limit="100.10"), T0)
    assert fills(events) == [(D(200), D("100.05"))]


def test_4_resting_limit_fills_at_its_limit_when_the_ask_drops(engine: MatchingEngine) -> None:
    assert engine.add(order(Side.BUY, OrderType.LIMIT, 1000, limit="100.00"), T0) == []
    events = engine.on_quote(quote(1, "99.90", 500, "99.95", 300))
    assert fills(events) == [(D(300), D("100.00"))]
    assert events[0].fill is not None
    assert events[0].fill.liquidity is Liquidity.MAKER
    (working,) = engine.open_orders()
    assert working.filled_quantity == D(300)
    assert working.remaining == D(700)


def test_5_resting_sell_limit_fills_on_a_trade_print(engine: MatchingEngine) -> None:
    assert engine.add(order(Side.SELL, OrderType.LIMIT, 100, limit="101.00"), T0) == []
    events = engine.on_trade(TradeTick(D("101.00"), D(40), T0, "t1"))
    assert fills(events) == [(D(40), D("101.00"))]
    (working,) = engine.open_orders()
    assert working.remaining == D(60)


def test_6_sell_stop_gapped_through_fills_at_the_market(engine: MatchingEngine) -> None:
    assert engine.add(order(Side.SELL, OrderType.STOP, 100, stop="98.00"), T0) == []
    events = engine.on_quote(quote(1, "97.00", 500, "97.10", 300, last="97.05"))
    assert [e.kind for e in events] == [EventKind.TRIGGERED, EventKind.FILL]
    assert fills(events) == [(D(100), D("97.00"))]


def test_7_stop_limit_triggered_by_a_trade_rests_and_fills_at_its_limit(
    engine: MatchingEngine,
) -> None:
    placed = order(Side.BUY, OrderType.STOP_LIMIT, 100, stop="101.00", limit="101.20")
    assert engine.add(placed, T0) == []
    assert engine.on_quote(quote(1, "100.80", 500, "101.50", 300, last="100.90")) == []
    events = engine.on_trade(TradeTick(D("101.05"), D(10), T0, "t1"))
    assert [e.kind for e in events] == [EventKind.TRIGGERED]  # the electing print: no fill
    # ... and the trigger survives a restart: storage restores the order as triggered.
    (triggered,) = engine.open_orders()
    assert triggered.triggered
    restarted = MatchingEngine(SPEC)
    restarted.restore(triggered)
    assert restarted.on_quote(quote(2, "100.80", 500, "101.50", 300, last="101.05")) == []
    events = restarted.on_quote(quote(3, "101.10", 500, "101.15", 300, last="101.10"))
    assert fills(events) == [(D(100), D("101.20"))]


def test_a_stop_without_any_last_price_elects_on_the_touch() -> None:
    engine = MatchingEngine(SPEC)
    engine.add(order(Side.SELL, OrderType.STOP, 100, stop="98.00"), T0)
    no_last = QuoteTick(D("97.00"), D(500), D("97.10"), D(300), T0, "q1")
    assert fills(engine.on_quote(no_last)) == [(D(100), D("97.00"))]


def test_8_ioc_fills_what_it_can_and_cancels_the_rest(engine: MatchingEngine) -> None:
    events = engine.add(
        order(Side.BUY, OrderType.LIMIT, 500, limit="100.05", tif=TimeInForce.IOC), T0
    )
    assert fills(events) == [(D(300), D("100.05"))]
    assert events[-1].kind is EventKind.CANCELED
    assert engine.open_orders() == []


def test_9_fok_fills_nothing_unless_it_fills_everything(engine: MatchingEngine) -> None:
    events = engine.add(
        order(Side.BUY, OrderType.LIMIT, 500, limit="100.05", tif=TimeInForce.FOK), T0
    )
    assert fills(events) == []
    assert [e.kind for e in events] == [EventKind.CANCELED]
    assert engine.open_orders() == []


def test_a_limit_that_arrived_without_a_fresh_quote_takes_the_better_ask_later() -> None:
    engine = MatchingEngine(SPEC, max_quote_age=dt.timedelta(seconds=30))
    engine.on_quote(quote(0, "99.95", 500, "100.05", 300))
    late = T0 + dt.timedelta(seconds=60)
    assert engine.add(order(Side.BUY, OrderType.LIMIT, 100, limit="101.00"), late) == []
    events = engine.on_quote(quote(61, "99.95", 500, "100.05", 300))
    assert fills(events) == [(D(100), D("100.05"))]  # the ask, as a taker: not 101.00


def test_a_restored_unmatched_order_is_matched_as_a_taker() -> None:
    engine = MatchingEngine(SPEC)
    engine.restore(order(Side.BUY, OrderType.LIMIT, 100, limit="101.00"), matched=False)
    assert fills(engine.on_quote(quote(1, "99.95", 500, "100.05", 300))) == [(D(100), D("100.05"))]
