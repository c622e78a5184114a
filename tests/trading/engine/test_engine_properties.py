"""Property tests of the pure engine: a hypothesis state machine places, modifies and
cancels orders and feeds random quotes and trades, checking the invariants after each step."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import hypothesis.strategies as st
from hypothesis import settings
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from quantdesk.trading.engine.fill_models import (
    BestPriceFillModel,
    OneTickSlippageFillModel,
    RandomPartialFillModel,
)
from quantdesk.trading.engine.matching import MatchingEngine
from quantdesk.trading.engine.positions import Position, apply_fill
from quantdesk.trading.engine.types import (
    EventKind,
    InstrumentSpec,
    Order,
    OrderEvent,
    OrderType,
    QuoteTick,
    Side,
    TimeInForce,
    TradeTick,
)

D = Decimal
TICK = D("0.05")
LOT = D(25)
T0 = dt.datetime(2026, 12, 3, tzinfo=dt.UTC)
prices = st.integers(min_value=1900, max_value=2100).map(lambda n: n * TICK)
lots = st.integers(min_value=1, max_value=20).map(lambda n: n * LOT)
models = st.sampled_from(
    [BestPriceFillModel(), OneTickSlippageFillModel(), RandomPartialFillModel(seed=7)]
)


class EngineMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.engine = MatchingEngine(InstrumentSpec("SIM:X", TICK, LOT))
        self.placed: dict[str, Order] = {}
        self.filled: dict[str, D] = {}
        self.closed: set[str] = set()
        self.execution_ids: set[str] = set()
        self.position = Position()
        self.n = 0

    def _now(self) -> dt.datetime:
        self.n += 1
        return T0 + dt.timedelta(seconds=self.n)

    def _absorb(self, events: list[OrderEvent]) -> None:
        for event in events:
            assert event.order_id not in self.closed, "an event for a closed order"
            if event.kind is EventKind.FILL:
                fill = event.fill
                assert fill is not None
                assert fill.execution_id not in self.execution_ids
                self.execution_ids.add(fill.execution_id)
                assert fill.quantity > 0
                assert fill.quantity % LOT == 0
                assert fill.price % TICK == 0
                order = self.placed[event.order_id]
                if order.limit_price is not None and order.type is not OrderType.STOP:
                    if order.side is Side.BUY:
                        assert fill.price <= order.limit_price
                    else:
                        assert fill.price >= order.limit_price
                self.filled[event.order_id] = self.filled.get(event.order_id, D(0)) + fill.quantity
                signed = fill.quantity if order.side is Side.BUY else -fill.quantity
                self.position = apply_fill(self.position, signed, fill.price).position
                if self.filled[event.order_id] == order.quantity:
                    self.closed.add(event.order_id)
            elif event.kind is EventKind.CANCELED:
                self.closed.add(event.order_id)

    @rule(
        side=st.sampled_from(list(Side)),
        kind=st.sampled_from(list(OrderType)),
        quantity=lots,
        price=prices,
        offset=st.integers(min_value=-4, max_value=4),
        tif=st.sampled_from(list(TimeInForce)),
        model=models,
    )
    def place(
        self, side: Side, kind: OrderType, quantity: D, price: D, offset: int, tif: TimeInForce,
        model: object,
    ) -> None:  # fmt: skip
        order_id = f"o{len(self.placed)}"
        stop = price if kind in (OrderType.STOP, OrderType.STOP_LIMIT) else None
        limit = None
        if kind in (OrderType.LIMIT, OrderType.STOP_LIMIT):
            limit = price + offset * TICK * (1 if side is Side.BUY else -1)
            if kind is OrderType.STOP_LIMIT:
                limit = max(limit, price) if side is Side.BUY else min(limit, price)
        order = Order(
            order_id, side, kind, quantity, tif, limit, stop, priority=len(self.placed),
            fill_model=model,  # type: ignore[arg-type]
        )  # fmt: skip
        self.placed[order_id] = order
        self._absorb(self.engine.add(order, self._now()))
        if tif is TimeInForce.FOK and kind in (OrderType.MARKET, OrderType.LIMIT):
            assert self.filled.get(order_id, D(0)) in (D(0), quantity)

    @rule(mid=prices, spread=st.integers(1, 4), bid_size=lots, ask_size=lots)
    def quote(self, mid: D, spread: int, bid_size: D, ask_size: D) -> None:
        now = self._now()
        tick = QuoteTick(mid, bid_size, mid + spread * TICK, ask_size, now, f"q{self.n}")
        self._absorb(self.engine.on_quote(tick))

    @rule(price=prices, size=lots)
    def trade(self, price: D, size: D) -> None:
        now = self._now()
        self._absorb(self.engine.on_trade(TradeTick(price, size, now, f"t{self.n}")))

    @precondition(lambda self: len(self.engine) > 0)
    @rule(data=st.data())
    def cancel(self, data: st.DataObject) -> None:
        order = data.draw(st.sampled_from(self.engine.open_orders()))
        assert self.engine.cancel(order.id) is not None
        self.closed.add(order.id)

    @precondition(lambda self: len(self.engine) > 0)
    @rule(data=st.data(), extra=lots)
    def modify(self, data: st.DataObject, extra: D) -> None:
        order = data.draw(st.sampled_from(self.engine.open_orders()))
        bigger = Order(
            order.id, order.side, order.type, order.quantity + extra, order.time_in_force,
            order.limit_price, order.stop_price, order.filled_quantity, order.triggered,
            order.version + 1, order.priority, order.fill_model,
        )  # fmt: skip
        self.placed[order.id] = bigger
        self._absorb(self.engine.replace(bigger, self._now()))

    @invariant()
    def book_is_consistent(self) -> None:
        for order in self.engine.open_orders():
            assert order.id not in self.closed
            assert 0 <= order.filled_quantity < order.quantity
            assert order.filled_quantity == self.filled.get(order.id, D(0))
            assert (
                order.time_in_force not in (TimeInForce.IOC, TimeInForce.FOK)
                or (order.is_stop and not order.triggered)
                or self.engine.quote is None
            )
        for order_id, filled in self.filled.items():
            assert filled <= self.placed[order_id].quantity

    @invariant()
    def position_matches_fills(self) -> None:
        net = sum(
            (
                self.filled.get(o.id, D(0)) * (1 if o.side is Side.BUY else -1)
                for o in self.placed.values()
            ),
            D(0),
        )
        assert self.position.quantity == net
        if net == 0:
            assert self.position.cost == 0


EngineMachine.TestCase.settings = settings(max_examples=150, stateful_step_count=40, deadline=None)
TestEngineMachine = EngineMachine.TestCase
