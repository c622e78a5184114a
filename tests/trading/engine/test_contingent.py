"""Bracket, OTO and OCO groups and trailing stops on the pure engine, hand-worked.

Tick 0.05; quotes as in the nine matching cases (bid 99.95x500 / ask 100.05x300, last
100.00) unless a test says otherwise.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import replace
from decimal import Decimal

import pytest

from quantdesk.trading.engine.checks import check_contingent, check_trailing
from quantdesk.trading.engine.contingent import (
    StopLoss,
    TakeProfit,
    bracket,
    check_legs,
    oco,
    oto,
)
from quantdesk.trading.engine.matching import MatchingEngine
from quantdesk.trading.engine.types import (
    EventKind,
    InstrumentSpec,
    Order,
    OrderClass,
    OrderEvent,
    OrderStatus,
    OrderType,
    QuoteTick,
    Side,
    TimeInForce,
    TradeTick,
    kite_status,
)

D = Decimal
T0 = dt.datetime(2026, 12, 3, 9, 30, tzinfo=dt.UTC)
SPEC = InstrumentSpec("SIM:ALPHA", tick_size=D("0.05"))


def quote(
    n: int, bid: str, bid_size: int, ask: str, ask_size: int, last: str | None = "100.00"
) -> QuoteTick:
    at = T0 + dt.timedelta(seconds=n)
    return QuoteTick(
        D(bid), D(bid_size), D(ask), D(ask_size), at, f"q{n}", None if last is None else D(last)
    )


def trade(n: int, price: str, size: int) -> TradeTick:
    return TradeTick(D(price), D(size), T0 + dt.timedelta(seconds=n), f"t{n}")


@pytest.fixture
def engine() -> MatchingEngine:
    engine = MatchingEngine(SPEC)
    engine.on_quote(quote(0, "99.95", 500, "100.05", 300))
    return engine


def fills(events: list[OrderEvent], order_id: str | None = None) -> list[tuple[D, D]]:
    return [
        (e.fill.quantity, e.fill.price)
        for e in events
        if e.fill is not None and (order_id is None or e.order_id == order_id)
    ]


def kinds(events: list[OrderEvent], order_id: str) -> list[EventKind]:
    return [e.kind for e in events if e.order_id == order_id]


def buy_bracket(kind: OrderType = OrderType.LIMIT, limit: str | None = "100.00") -> Order:
    return Order("e", Side.BUY, kind, D(100), limit_price=None if limit is None else D(limit))


def test_bracket_exits_are_held_until_the_entry_fills(engine: MatchingEngine) -> None:
    group = bracket(
        buy_bracket(),
        TakeProfit(D("101.00")),
        StopLoss(D("99.00")),
        take_profit_id="tp",
        stop_loss_id="sl",
    )
    assert [o.parent_id for o in group.exits] == ["e", "e"]
    assert engine.add_group(group, T0) == []  # the entry rests at 100.00; the exits are held
    held = engine.get("tp")
    assert held is not None
    assert held.remaining == 0
    assert held.quantity == D(100)
    # A print of 40 at 100.00 fills 40 of the entry: the exits work for those 40.
    events = engine.on_trade(trade(1, "100.00", 40))
    assert fills(events, "e") == [(D(40), D("100.00"))]
    activated = [(e.order_id, e.quantity) for e in events if e.kind is EventKind.ACTIVATED]
    assert activated == [("tp", D(40)), ("sl", D(40))]
    # ... growing as the entry fills more.
    events = engine.on_trade(trade(2, "100.00", 60))
    assert fills(events, "e") == [(D(60), D("100.00"))]
    assert [e.quantity for e in events if e.kind is EventKind.ACTIVATED] == [D(100), D(100)]
    # The take-profit fills 30 on a print at 101: the stop-loss is resized to 70 ...
    events = engine.on_trade(trade(3, "101.00", 30))
    assert fills(events) == [(D(30), D("101.00"))]
    assert [(e.order_id, e.kind, e.quantity) for e in events[1:]] == [
        ("sl", EventKind.RESIZED, D(70))
    ]
    # ... and when the stop-loss takes the rest, the take-profit is canceled.
    events = engine.on_quote(quote(4, "98.90", 500, "99.00", 300, last="98.95"))
    assert fills(events, "sl") == [(D(70), D("98.90"))]
    assert kinds(events, "tp") == [EventKind.CANCELED]
    assert engine.open_orders() == []
    assert engine.group_of("tp") is None  # a finished group is forgotten


def test_a_marketable_bracket_entry_activates_and_matches_its_exits_on_the_same_quote(
    engine: MatchingEngine,
) -> None:
    # Buy at market; the take-profit at 99.95 is marketable at once against the bid.
    group = bracket(
        buy_bracket(OrderType.MARKET, None),
        TakeProfit(D("99.95")),
        StopLoss(D("99.00")),
        take_profit_id="tp",
        stop_loss_id="sl",
    )
    events = engine.add_group(group, T0)
    assert fills(events, "e") == [(D(100), D("100.05"))]
    assert fills(events, "tp") == [(D(100), D("99.95"))]
    assert kinds(events, "sl") == [EventKind.ACTIVATED, EventKind.CANCELED]
    assert engine.open_orders() == []


def test_oco_exits_of_a_held_position_share_its_quantity(engine: MatchingEngine) -> None:
    template = Order("tp", Side.SELL, OrderType.LIMIT, D(100))
    group = oco(template, TakeProfit(D("101.00")), StopLoss(D("99.00")), stop_loss_id="sl")
    assert group.exits[1].parent_id == "tp"  # Alpaca: the take-profit is the parent
    assert engine.add_group(group, T0) == []
    # Partial take-profit: the stop-loss is reduced to what is left.
    events = engine.on_trade(trade(1, "101.00", 40))
    assert fills(events) == [(D(40), D("101.00"))]
    sl = engine.get("sl")
    assert sl is not None
    assert sl.quantity == D(60)
    # A gap through the stop: it sells the 60 at the bid, the take-profit is canceled.
    events = engine.on_quote(quote(2, "97.00", 500, "97.10", 300, last="97.05"))
    assert fills(events, "sl") == [(D(60), D("97.00"))]
    assert [e.reason for e in events if e.order_id == "tp"] == [
        "one-cancels-other: its sibling filled"
    ]


def test_oto_has_one_exit_and_canceling_the_parent_cancels_it(engine: MatchingEngine) -> None:
    group = oto(buy_bracket(), StopLoss(D("99.00"), D("98.90")), exit_id="sl")
    assert group.order_class is OrderClass.OTO
    assert group.exits[0].type is OrderType.STOP_LIMIT
    engine.add_group(group, T0)
    canceled = engine.cancel_group("e", T0)
    assert [(e.order_id, e.kind) for e in canceled] == [("sl", EventKind.CANCELED)]
    assert engine.open_orders() == []


def test_a_group_survives_a_restart_as_stored() -> None:
    # Entry 100 filled 60; the take-profit filled 20 (the stop-loss resized to 80).
    entry = replace_fill(buy_bracket(), 60)
    group = bracket(
        buy_bracket(),
        TakeProfit(D("101.00")),
        StopLoss(D("99.00")),
        take_profit_id="tp",
        stop_loss_id="sl",
    )
    tp, sl = group.exits
    stored = type(group)(
        group.order_class,
        entry,
        (replace_fill(tp, 20), Order("sl", sl.side, sl.type, D(80), stop_price=D("99.00"))),
    )
    engine = MatchingEngine(SPEC)
    engine.restore_group(stored)
    working = {o.id: o for o in engine.open_orders()}
    assert working["tp"].remaining == D(40)  # 60 filled by the entry less its own 20
    assert working["sl"].remaining == D(40)  # ... less the take-profit's 20
    events = engine.on_quote(quote(1, "98.90", 500, "100.10", 300, last="98.95"))
    assert fills(events) == [(D(40), D("98.90"))]
    assert engine.get("tp") is not None  # 40 more may come from the entry's other 40


def replace_fill(order: Order, filled: int) -> Order:
    return order.with_fill(D(filled))


def test_alpaca_leg_rules() -> None:
    tp, sl = TakeProfit(D("101")), StopLoss(D("99"))
    gtc = TimeInForce.GTC
    assert check_legs(OrderClass.BRACKET, Side.BUY, tp, sl, gtc) is None
    assert check_legs(OrderClass.BRACKET, Side.SELL, tp, sl, gtc) == (
        "take_profit.limit_price must be below stop_loss.stop_price"
    )
    assert check_legs(OrderClass.BRACKET, Side.BUY, tp, None, gtc) is not None
    assert check_legs(OrderClass.OTO, Side.BUY, tp, sl, gtc) is not None
    assert check_legs(OrderClass.BRACKET, Side.BUY, tp, sl, TimeInForce.IOC) is not None
    assert check_legs(OrderClass.BRACKET, Side.BUY, tp, sl, gtc, base_price=D(98)) == (
        "stop_loss.stop_price must be below the base price 98"
    )
    assert kite_status(OrderStatus.HELD, "limit", False) == "TRIGGER PENDING"
    failure = check_contingent("oco", "buy", tp, sl, "day", base_price=D(100))
    assert failure is None
    failure = check_contingent("bracket", "buy", None, sl, "gtc")
    assert failure is not None
    assert failure.type == "invalid-order-class"
    failure = check_trailing(D(1), D(1))
    assert failure is not None
    assert failure.type == "invalid-trailing-stop"
    assert check_trailing(None, D("0.5")) is None


def test_trailing_sell_stop_follows_the_high_and_fills_at_the_bid(
    engine: MatchingEngine,
) -> None:
    """Issue 12: SELL trailing 1% from 100; last rises to 105 then falls to 103.90 -> the
    stop moved to 103.95, elected at 103.90, filled at the bid."""
    order = Order("ts", Side.SELL, OrderType.TRAILING_STOP, D(100), trail_percent=D(1))
    events = engine.add(order, T0)
    assert [(e.kind, e.stop_price, e.hwm) for e in events] == [
        (EventKind.TRAILED, D("99.00"), D("100.00"))
    ]
    events = engine.on_quote(quote(1, "104.95", 500, "105.05", 300, last="105.00"))
    assert [(e.kind, e.stop_price, e.hwm) for e in events] == [
        (EventKind.TRAILED, D("103.95"), D("105.00"))
    ]
    # Falling never loosens it.
    assert engine.on_trade(trade(2, "104.00", 10)) == []
    events = engine.on_quote(quote(3, "103.85", 500, "103.95", 300, last="103.90"))
    assert [e.kind for e in events] == [EventKind.TRIGGERED, EventKind.FILL]
    assert fills(events) == [(D(100), D("103.85"))]


def test_trailing_buy_stop_follows_the_low_by_an_amount(engine: MatchingEngine) -> None:
    order = Order("ts", Side.BUY, OrderType.TRAILING_STOP, D(10), trail_price=D("0.50"))
    assert [e.stop_price for e in engine.add(order, T0)] == [D("100.50")]
    assert [e.stop_price for e in engine.on_trade(trade(1, "99.20", 5))] == [D("99.70")]
    assert engine.on_trade(trade(2, "99.60", 5)) == []  # up, but below the stop: nothing
    events = engine.on_trade(trade(3, "99.70", 5))
    assert [e.kind for e in events] == [EventKind.TRIGGERED, EventKind.FILL]
    assert fills(events) == [(D(10), D("100.05"))]  # at the ask


def test_trailing_stop_placed_before_any_price_starts_on_the_first() -> None:
    engine = MatchingEngine(SPEC)
    order = Order("ts", Side.SELL, OrderType.TRAILING_STOP, D(10), trail_percent=D("0.5"))
    assert engine.add(order, T0) == []
    events = engine.on_trade(trade(1, "200.00", 1))
    assert [(e.kind, e.stop_price) for e in events] == [(EventKind.TRAILED, D("199.00"))]


def test_modifying_a_group_member_keeps_it_in_its_group(engine: MatchingEngine) -> None:
    group = bracket(
        buy_bracket(),
        TakeProfit(D("101.00")),
        StopLoss(D("99.00")),
        take_profit_id="tp",
        stop_loss_id="sl",
    )
    engine.add_group(group, T0)
    tp = engine.get("tp")
    assert tp is not None
    # A new take-profit price: still held, still the entry's child.
    assert engine.replace(replace(tp, limit_price=D("101.50"), version=2), T0) == []
    moved = engine.get("tp")
    assert moved is not None
    assert (moved.limit_price, moved.remaining, engine.group_of("tp")) == (D("101.50"), D(0), "e")
    # A bigger entry: both exits grow with it.
    entry = engine.get("e")
    assert entry is not None
    events = engine.replace(replace(entry, quantity=D(150), version=2), T0)
    assert [(e.order_id, e.kind, e.quantity) for e in events] == [
        ("tp", EventKind.RESIZED, D(150)),
        ("sl", EventKind.RESIZED, D(150)),
    ]


def test_a_group_dropped_and_restored_is_sized_from_storage(engine: MatchingEngine) -> None:
    group = bracket(
        buy_bracket(),
        TakeProfit(D("101.00")),
        StopLoss(D("99.00")),
        take_profit_id="tp",
        stop_loss_id="sl",
    )
    engine.add_group(group, T0)
    engine.on_trade(trade(1, "100.00", 40))  # 40 of the entry: exits active for 40
    assert {o.id for o in engine.drop_group("sl")} == {"e", "tp", "sl"}
    assert (len(engine), engine.group_of("e")) == (0, None)
    # Storage says only 25 of the entry filled (the 40 never committed).
    assert group.entry is not None
    stored = type(group)(group.order_class, group.entry.with_fill(D(25)), group.exits)
    engine.restore_group(stored)
    tp = engine.get("tp")
    assert tp is not None
    assert tp.remaining == D(25)
