"""Multi-leg orders (all or none at a net price) and auto-slicing above the freeze limit,
hand-worked, and a small state machine: mleg legs fill all or none, in ratio."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import hypothesis.strategies as st
import pytest
from hypothesis import settings
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from quantdesk.trading.engine.mleg import (
    Leg,
    MultiLegBook,
    MultiLegOrder,
    check_multileg,
)
from quantdesk.trading.engine.slicing import (
    NSE_INDEX_FREEZE_LIMITS,
    iceberg_sizes,
    slice_order,
    slice_sizes,
)
from quantdesk.trading.engine.types import (
    EventKind,
    InstrumentSpec,
    Order,
    OrderEvent,
    OrderType,
    QuoteTick,
    Side,
    TimeInForce,
)

D = Decimal
T0 = dt.datetime(2026, 12, 3, 9, 30, tzinfo=dt.UTC)
TICK = D("0.05")
CE24000, CE24100, CE24200 = "NFO:NIFTY26D24000CE", "NFO:NIFTY26D24100CE", "NFO:NIFTY26D24200CE"
SPECS = {k: InstrumentSpec(k, TICK, D(75)) for k in (CE24000, CE24100, CE24200)}
BUY, SELL = Side.BUY, Side.SELL


def quote(n: int, bid: str, ask: str, bid_size: int = 750, ask_size: int = 750) -> QuoteTick:
    at = T0 + dt.timedelta(seconds=n)
    return QuoteTick(D(bid), D(bid_size), D(ask), D(ask_size), at, f"q{n}")


def spread_book(leg2_bid: str = "80.10", leg2_size: int = 750) -> MultiLegBook:
    book = MultiLegBook()
    book.on_quote(CE24000, quote(0, "120.00", "120.50"))
    book.on_quote(CE24100, quote(1, leg2_bid, "80.60", bid_size=leg2_size))
    book.on_quote(CE24200, quote(2, "49.50", "50.00"))
    return book


def bull_call(limit: str | None, tif: TimeInForce = TimeInForce.DAY) -> MultiLegOrder:
    return MultiLegOrder(
        "m1",
        (Leg(CE24000, BUY), Leg(CE24100, SELL)),
        D(75),
        OrderType.MARKET if limit is None else OrderType.LIMIT,
        None if limit is None else D(limit),
        tif,
    )


def leg_fills(events: list[OrderEvent]) -> list[tuple[str | None, D, D]]:
    return [(e.fill.instrument, e.fill.quantity, e.fill.price) for e in events if e.fill]


def test_a_debit_spread_fills_both_legs_at_their_quotes_within_the_net_limit() -> None:
    # Net debit 120.50 - 80.10 = 40.40 per combination, within 41.00.
    events = spread_book().add(bull_call("41.00"), T0)
    assert leg_fills(events) == [(CE24000, D(75), D("120.50")), (CE24100, D(75), D("80.10"))]
    assert [e.fill.leg for e in events if e.fill] == [0, 1]
    assert len({e.fill.execution_id for e in events if e.fill}) == 2


def test_a_limit_spread_rests_until_the_combination_of_quotes_reaches_it() -> None:
    book = spread_book()
    assert book.add(bull_call("40.00"), T0) == []  # 40.40 > 40.00: rests
    assert book.on_quote(CE24000, quote(3, "119.90", "120.45")) == []  # 40.35: not yet
    events = book.on_quote(CE24100, quote(4, "80.45", "80.90"))  # 120.45 - 80.45 = 40.00
    assert leg_fills(events) == [(CE24000, D(75), D("120.45")), (CE24100, D(75), D("80.45"))]
    assert len(book) == 0


def test_a_credit_is_a_negative_net_limit() -> None:
    credit = MultiLegOrder(
        "m2", (Leg(CE24100, SELL), Leg(CE24200, BUY)), D(150), OrderType.LIMIT, D("-30.00"),
        TimeInForce.IOC,
    )  # fmt: skip
    # Net -80.10 + 50.00 = -30.10: a credit of 30.10, at least the 30.00 asked.
    events = spread_book().add(credit, T0)
    assert leg_fills(events) == [(CE24100, D(150), D("80.10")), (CE24200, D(150), D("50.00"))]
    greedy = MultiLegOrder("m3", credit.legs, D(150), OrderType.LIMIT, D("-30.50"), TimeInForce.IOC)
    (canceled,) = spread_book().add(greedy, T0)
    assert canceled.kind is EventKind.CANCELED
    assert canceled.reason == (
        "all or none: the net -30.10 of the quotes (leg 1 (NFO:NIFTY26D24100CE) bid 80.10, "
        "leg 2 (NFO:NIFTY26D24200CE) ask 50.00) is worse than the limit -30.50"
    )


def test_all_or_none_names_the_leg_without_the_size() -> None:
    (canceled,) = spread_book(leg2_size=50).add(bull_call(None, TimeInForce.IOC), T0)
    assert canceled.reason == (
        "all or none: leg 2 (NFO:NIFTY26D24100CE): 50 on offer at 80.10, 75 needed (all or none)"
    )


def test_a_butterfly_fills_in_ratio() -> None:
    fly = MultiLegOrder("m4", (Leg(CE24000, BUY), Leg(CE24100, SELL, 2), Leg(CE24200, BUY)), D(75))
    events = spread_book().add(fly, T0)
    assert leg_fills(events) == [
        (CE24000, D(75), D("120.50")),
        (CE24100, D(150), D("80.10")),
        (CE24200, D(75), D("50.00")),
    ]  # net 120.50 - 160.20 + 50.00 = 10.30 debit


def test_multileg_checks_name_the_leg() -> None:
    odd = MultiLegOrder("m5", (Leg(CE24000, BUY), Leg(CE24100, SELL)), D(50))
    failure = check_multileg(odd, SPECS)
    assert failure is not None
    assert failure.type == "quantity-not-lot-multiple"
    assert failure.detail.startswith("leg 1 (NFO:NIFTY26D24000CE): 50")
    one = MultiLegOrder("m6", (Leg(CE24000, BUY),), D(75))
    assert check_multileg(one, SPECS) is not None
    twice = MultiLegOrder("m7", (Leg(CE24000, BUY), Leg(CE24000, SELL)), D(75))
    failure = check_multileg(twice, SPECS)
    assert failure is not None
    assert failure.detail.startswith("leg 2 (NFO:NIFTY26D24000CE)")
    unknown = MultiLegOrder("m8", (Leg(CE24000, BUY), Leg("NFO:X", SELL)), D(75))
    failure = check_multileg(unknown, SPECS)
    assert failure is not None
    assert failure.detail == "leg 2 (NFO:X): unknown instrument"
    assert check_multileg(bull_call("41"), SPECS) is None


def test_slicing_above_the_freeze_limit_in_whole_lots() -> None:
    nifty = NSE_INDEX_FREEZE_LIMITS.limit("nifty")
    assert nifty == D(1800)
    assert "NSE" in NSE_INDEX_FREEZE_LIMITS.source
    assert slice_sizes(D(1800), D(1800), D(75)) == [D(1800)]
    assert slice_sizes(D(3600), D(1800), D(75)) == [D(1800), D(1800)]
    assert slice_sizes(D(4500), D(1800), D(75)) == [D(1500)] * 3
    assert slice_sizes(D(3675), D(1800), D(75)) == [D(1275), D(1200), D(1200)]  # 49 lots
    parent = Order("p", Side.BUY, OrderType.LIMIT, D(4500), limit_price=D("120.50"))
    children = slice_order(parent, nifty, D(75))
    assert [(c.id, c.quantity, c.parent_id, c.limit_price) for c in children] == [
        (f"p.{n}", D(1500), "p", D("120.50")) for n in (1, 2, 3)
    ]
    assert slice_order(parent, None) == [parent]
    table = NSE_INDEX_FREEZE_LIMITS.merged({"simidx": D(900)}, "demo")
    assert table.limit("SIMIDX") == D(900)
    assert iceberg_sizes(D(750), 4, D(75)) == [D(225), D(225), D(150), D(150)]
    with pytest.raises(ValueError, match="above the freeze limit"):
        iceberg_sizes(D(7500), 2, D(75), freeze=D(1800))


INSTRUMENTS = (CE24000, CE24100, CE24200)
marks = st.integers(min_value=200, max_value=260).map(lambda n: n * TICK)


class MultiLegMachine(RuleBasedStateMachine):
    """Random spreads and quotes: every fill batch is all the legs, each quantity x ratio,
    at its quote's touch, and the net never worse than the limit."""

    def __init__(self) -> None:
        super().__init__()
        self.book = MultiLegBook()
        self.placed: dict[str, MultiLegOrder] = {}
        self.done: set[str] = set()
        self.n = 0

    def _absorb(self, events: list[OrderEvent]) -> None:
        by_order: dict[str, list[OrderEvent]] = {}
        for event in events:
            assert event.order_id not in self.done
            by_order.setdefault(event.order_id, []).append(event)
        for order_id, batch in by_order.items():
            self.done.add(order_id)
            order = self.placed[order_id]
            if batch[0].kind is EventKind.CANCELED:
                assert len(batch) == 1
                continue
            assert [e.fill.leg for e in batch if e.fill] == list(range(len(order.legs)))
            net = D(0)
            for leg, event in zip(order.legs, batch, strict=True):
                assert event.fill is not None
                assert event.fill.instrument == leg.instrument
                assert event.fill.quantity == order.quantity * leg.ratio
                touch = self.book.quotes[leg.instrument]
                assert event.fill.price == (touch.ask if leg.side is BUY else touch.bid)
                net += leg.ratio * event.fill.price * (1 if leg.side is BUY else -1)
            if order.limit_price is not None:
                assert net <= order.limit_price

    @rule(
        data=st.data(),
        legs=st.integers(2, 3),
        quantity=st.integers(1, 4).map(lambda n: D(n)),
        limit=st.one_of(st.none(), st.integers(-40, 40).map(lambda n: n * TICK)),
        tif=st.sampled_from([TimeInForce.DAY, TimeInForce.IOC]),
    )
    def place(
        self, data: st.DataObject, legs: int, quantity: D, limit: D | None, tif: TimeInForce
    ) -> None:
        chosen = data.draw(st.permutations(INSTRUMENTS))[:legs]
        sides = data.draw(st.lists(st.sampled_from([BUY, SELL]), min_size=legs, max_size=legs))
        ratios = data.draw(st.lists(st.integers(1, 2), min_size=legs, max_size=legs))
        order = MultiLegOrder(
            f"m{len(self.placed)}",
            tuple(Leg(i, s, r) for i, s, r in zip(chosen, sides, ratios, strict=True)),
            quantity,
            OrderType.MARKET if limit is None else OrderType.LIMIT,
            limit,
            tif,
            priority=len(self.placed),
        )
        self.placed[order.id] = order
        self._absorb(self.book.add(order, T0 + dt.timedelta(seconds=self.n)))

    @rule(
        instrument=st.sampled_from(INSTRUMENTS),
        mid=marks,
        sizes=st.tuples(*[st.integers(0, 8)] * 2),
    )
    def quote(self, instrument: str, mid: D, sizes: tuple[int, int]) -> None:
        self.n += 1
        tick = QuoteTick(
            mid - TICK, D(sizes[0]), mid + TICK, D(sizes[1]),
            T0 + dt.timedelta(seconds=self.n), f"q{self.n}",
        )  # fmt: skip
        self._absorb(self.book.on_quote(instrument, tick))

    @precondition(lambda self: len(self.book) > 0)
    @rule(data=st.data())
    def cancel(self, data: st.DataObject) -> None:
        order = data.draw(st.sampled_from(self.book.open_orders()))
        assert self.book.cancel(order.id) is not None
        self.done.add(order.id)

    @invariant()
    def open_orders_have_no_fills(self) -> None:
        for order in self.book.open_orders():
            assert order.id not in self.done


MultiLegMachine.TestCase.settings = settings(max_examples=60, stateful_step_count=25, deadline=None)
TestMultiLegMachine = MultiLegMachine.TestCase
