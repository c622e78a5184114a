"""Property tests of the pure engine: a hypothesis state machine places, modifies and
cancels orders (simple, trailing stops, brackets, OTOs and OCOs) and feeds random quotes and
trades, checking the invariants after each step: a child never fills without its parent's
fill, a group's exits never fill more than its entry filled (an OCO: its quantity), a
trailing stop never loosens."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace
from decimal import Decimal

import hypothesis.strategies as st
from hypothesis import settings
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from quantdesk.trading.engine.contingent import StopLoss, TakeProfit, bracket, oco, oto
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
    OrderClass,
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
        # group id -> (class, entry id or None, exit ids, OCO quantity)
        self.groups: dict[str, tuple[OrderClass, str | None, tuple[str, ...], D]] = {}
        self.stops: dict[str, D] = {}  # trailing stops: the latest stop

    def _now(self) -> dt.datetime:
        self.n += 1
        return T0 + dt.timedelta(seconds=self.n)

    def _absorb(self, events: list[OrderEvent]) -> None:
        for event in events:
            assert event.order_id not in self.closed, "an event for a closed order"
            if event.kind is EventKind.TRAILED:
                assert event.stop_price is not None
                order = self.placed[event.order_id]
                before = self.stops.get(event.order_id)
                if before is not None:  # a trailing stop never loosens
                    tighter = event.stop_price > before
                    assert tighter if order.side is Side.SELL else event.stop_price < before
                self.stops[event.order_id] = event.stop_price
                self.placed[event.order_id] = replace(order, stop_price=event.stop_price)
            elif event.kind is EventKind.RESIZED:
                assert event.quantity is not None
                assert event.quantity > self.filled.get(event.order_id, D(0))
                self.placed[event.order_id] = replace(
                    self.placed[event.order_id], quantity=event.quantity
                )
            elif event.kind is EventKind.ACTIVATED:
                assert event.quantity is not None
                assert event.quantity <= self.placed[event.order_id].quantity
            elif event.kind is EventKind.FILL:
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
                self._check_groups()
            elif event.kind is EventKind.CANCELED:
                self.closed.add(event.order_id)

    def _check_groups(self) -> None:
        """After every fill: exits together never beyond what their entry filled (a child
        never fills without its parent's fill), an OCO's never beyond its quantity."""
        for kind, entry, exits, quantity in self.groups.values():
            exited = sum((self.filled.get(i, D(0)) for i in exits), D(0))
            if entry is not None:
                assert exited <= self.filled.get(entry, D(0)), f"{kind} exits beyond entry"
            else:
                assert exited <= quantity, "OCO siblings filled beyond its quantity"

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
        trail_price = trail_percent = None
        if kind is OrderType.TRAILING_STOP:
            stop = None
            if offset % 2:
                trail_price = abs(offset) * TICK
            else:
                trail_percent = D(abs(offset) + 1) / 4
        order = Order(
            order_id, side, kind, quantity, tif, limit, stop, priority=len(self.placed),
            fill_model=model,  # type: ignore[arg-type]
            trail_price=trail_price, trail_percent=trail_percent,
        )  # fmt: skip
        self.placed[order_id] = order
        self._absorb(self.engine.add(order, self._now()))
        if tif is TimeInForce.FOK and kind in (OrderType.MARKET, OrderType.LIMIT):
            assert self.filled.get(order_id, D(0)) in (D(0), quantity)

    @rule(
        order_class=st.sampled_from([OrderClass.BRACKET, OrderClass.OTO, OrderClass.OCO]),
        side=st.sampled_from(list(Side)),
        market=st.booleans(),
        quantity=lots,
        price=prices,
        gaps=st.tuples(st.integers(1, 8), st.integers(1, 8), st.integers(0, 2)),
        take_profit_leg=st.booleans(),
    )
    def place_group(
        self, order_class: OrderClass, side: Side, market: bool, quantity: D, price: D,
        gaps: tuple[int, int, int], take_profit_leg: bool,
    ) -> None:  # fmt: skip
        """``side`` is the entry's (an OCO: the position's); exits on the other side."""
        n = len(self.placed)
        up, down, slack = (g * TICK for g in gaps)
        sign = 1 if side is Side.BUY else -1
        tp = TakeProfit(price + sign * up)
        sl = StopLoss(price - sign * down, None if not slack else price - sign * (down + slack))
        entry = Order(
            f"o{n}", side, OrderType.MARKET if market else OrderType.LIMIT, quantity,
            limit_price=None if market else price, priority=n,
        )  # fmt: skip
        if order_class is OrderClass.BRACKET:
            group = bracket(entry, tp, sl, take_profit_id=f"o{n}tp", stop_loss_id=f"o{n}sl")
        elif order_class is OrderClass.OTO:
            group = oto(entry, tp if take_profit_leg else sl, exit_id=f"o{n}x")
        else:
            exit_side = Side.SELL if side is Side.BUY else Side.BUY
            template = Order(f"o{n}", exit_side, OrderType.LIMIT, quantity, priority=n)
            group = oco(template, tp, sl, stop_loss_id=f"o{n}sl")
        for member in group.members:
            self.placed[member.id] = member
        entry_id = None if group.entry is None else group.entry.id
        exits = tuple(o.id for o in group.exits)
        self.groups[group.id] = (order_class, entry_id, exits, quantity)
        self._absorb(self.engine.add_group(group, self._now()))

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
        others = self.engine.cancel_group(order.id, self._now())  # a simple order: just it
        self.closed.add(order.id)
        self._absorb(others)
        assert self.engine.get(order.id) is None

    @precondition(lambda self: len(self.engine) > 0)
    @rule(data=st.data(), extra=lots)
    def modify(self, data: st.DataObject, extra: D) -> None:
        order = data.draw(st.sampled_from(self.engine.open_orders()))
        bigger = replace(order, quantity=order.quantity + extra, version=order.version + 1)
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
    def trailing_stops_never_loosen(self) -> None:
        for order in self.engine.open_orders():
            if order.type is OrderType.TRAILING_STOP and order.id in self.stops:
                assert order.stop_price == self.stops[order.id]

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
