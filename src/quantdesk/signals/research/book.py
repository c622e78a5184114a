"""One instrument's paper book for backtests: the engine paper trading runs, its fills
booked on a (maybe shared) :class:`~.account.MarginAccount`.

:class:`PaperBook` is the very :class:`~quantdesk.trading.engine.matching.MatchingEngine`
paper trading runs (same order types, time in force, fill models, size tracking and
stale-quote rule), positions at average cost (``engine.positions.apply_fill``, as the paper
ledger books them), each fill's charges (the dated Indian/US tables of ``engine.charges``,
or paper trading's flat ``engine.fees.FeeSchedule``), and paper trading's admission checks,
reservations and margin (:mod:`.account`).  Fed the same quotes and orders as a paper
session, it fills identically (``tests/signals/test_parity.py``).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import InitVar, dataclass, field
from decimal import Decimal

from quantdesk.signals.research.account import Contract, MarginAccount, OrderRefused
from quantdesk.trading.engine.charges import ChargeSchedule
from quantdesk.trading.engine.fees import FeeSchedule
from quantdesk.trading.engine.fill_models import BestPriceFillModel, FillModel
from quantdesk.trading.engine.matching import MatchingEngine
from quantdesk.trading.engine.positions import Position
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

ZERO = Decimal(0)
# The charge tables start here (SEBI's uniform exchange charges, 2024-10-01): fills of older
# history are charged at the earliest rates the tables hold rather than not at all.
CHARGES_FLOOR = dt.date(2024, 10, 1)


@dataclass(frozen=True, slots=True)
class BookedFill:
    order_id: str
    side: str
    price: Decimal
    quantity: Decimal
    liquidity: str  # maker, taker; "expiry" for a settlement (trades only, never a fill)
    ts: dt.datetime
    charges: Decimal
    realised: Decimal
    position_after: Decimal


@dataclass(slots=True)
class PaperBook:
    """One instrument's book of the engine, its money kept in ``account`` (its own, funded
    with ``cash``, or one several books share)."""

    contract: Contract
    cash: InitVar[Decimal] = ZERO
    fill_model: FillModel = field(default_factory=BestPriceFillModel)
    charges: ChargeSchedule | None = None
    fees: FeeSchedule | None = None
    max_quote_age: dt.timedelta | None = dt.timedelta(0)
    size_tracking: bool = True
    account: MarginAccount = field(default_factory=MarginAccount)
    engine: MatchingEngine = field(init=False)
    fills: list[BookedFill] = field(default_factory=list)
    _sides: dict[str, Side] = field(default_factory=dict)
    _traded_value: dict[str, Decimal] = field(default_factory=dict)
    _sequence: int = 0

    def __post_init__(self, cash: Decimal) -> None:
        spec = InstrumentSpec(self.contract.key, self.contract.tick_size, self.contract.lot_size)
        self.engine = MatchingEngine(
            spec, size_tracking=self.size_tracking, max_quote_age=self.max_quote_age
        )
        self.account.cash += cash
        self.account.contracts[self.contract.key] = self.contract

    @property
    def position(self) -> Position:
        return self.account.position(self.contract.key)

    def _ref(self, order_id: str) -> str:
        """The order as the (maybe shared) account knows it."""
        return f"{self.contract.key} {order_id}"

    # --- orders and ticks --------------------------------------------------------------
    def order(
        self,
        side: Side,
        quantity: Decimal,
        now: dt.datetime,
        *,
        type: OrderType = OrderType.MARKET,
        limit_price: Decimal | None = None,
        stop_price: Decimal | None = None,
        time_in_force: TimeInForce = TimeInForce.GTC,
        order_id: str | None = None,
    ) -> str:
        """Place an order as paper trading would; raises :class:`OrderRefused` (recorded in
        the account's rejections) when paper trading would refuse it."""
        try:
            needed = self.account.admit(
                self.contract, side, quantity, type=type, limit_price=limit_price,
                stop_price=stop_price, charges=self._estimate, day=now.date(),
            )  # fmt: skip
        except OrderRefused as refused:
            self.account.reject(now, self.contract.key, side, quantity, refused)
            raise
        self._sequence += 1
        oid = order_id or f"bt-{self._sequence}"
        order = Order(
            id=oid,
            side=side,
            type=type,
            quantity=quantity,
            time_in_force=time_in_force,
            limit_price=limit_price,
            stop_price=stop_price,
            priority=self._sequence,
            fill_model=self.fill_model,
        )
        self._sides[oid] = side
        self.account.opened(self._ref(oid), self.contract, side, quantity, needed)
        self._book(self.engine.add(order, now))
        return oid

    def cancel_all(self) -> None:
        for order in self.engine.open_orders():
            self.engine.cancel(order.id)
            self.account.ended(self._ref(order.id))

    def quote(self, tick: QuoteTick) -> None:
        if tick.last is not None:  # the mark margin and equity read, as paper's last price
            self.account.marks[self.contract.key] = tick.last
        self._book(self.engine.on_quote(tick))

    def trade(self, tick: TradeTick) -> None:
        self.account.marks[self.contract.key] = tick.price
        self._book(self.engine.on_trade(tick))

    def pending(self) -> Decimal:
        """Signed units of the open orders."""
        total = ZERO
        for order in self.engine.open_orders():
            total += order.open_quantity if order.side is Side.BUY else -order.open_quantity
        return total

    # --- bookkeeping ---------------------------------------------------------------------
    def _estimate(self, side: Side, price: Decimal, quantity: Decimal, day: dt.date) -> Decimal:
        """An order's charges as if it filled at once at ``price`` (the admission check's)."""
        total = ZERO
        if self.charges is not None:
            total += self.charges.fill(
                side=side.value, price=price, quantity=quantity, day=max(day, CHARGES_FLOOR),
                multiplier=self.contract.multiplier,
            ).total  # fmt: skip
        if self.fees is not None:
            total += self.fees.fee(price * quantity * self.contract.multiplier)
        return total

    def _charge(self, side: Side, price: Decimal, quantity: Decimal, order_id: str,
                day: dt.date) -> Decimal:  # fmt: skip
        before = self._traded_value.get(order_id, ZERO)
        total = ZERO
        if self.charges is not None:
            total += self.charges.fill(
                side=side.value, price=price, quantity=quantity, day=max(day, CHARGES_FLOOR),
                multiplier=self.contract.multiplier, order_value_before=before,
            ).total  # fmt: skip
        if self.fees is not None:
            total += self.fees.fee(price * quantity * self.contract.multiplier)
        return total

    def _book(self, events: Sequence[OrderEvent]) -> None:
        refused: set[str] = set()
        for event in events:
            oid = event.order_id
            if oid in refused:
                continue
            if event.kind in (EventKind.CANCELED, EventKind.EXPIRED):
                self.account.ended(self._ref(oid))
                continue
            if event.kind is not EventKind.FILL or event.fill is None:
                continue
            fill = event.fill
            side = self._sides[oid]
            charges = self._charge(side, fill.price, fill.quantity, oid, fill.ts.date())
            try:
                realised = self.account.fill(self._ref(oid), self.contract, side,
                                             fill.quantity, fill.price, charges)  # fmt: skip
            except OrderRefused as exc:
                # As paper's matcher: the fill is not booked and the order is canceled.
                refused.add(oid)
                self.engine.cancel(oid)
                self.account.ended(self._ref(oid))
                self.account.reject(fill.ts, self.contract.key, side, fill.quantity, exc)
                continue
            value = fill.price * fill.quantity * self.contract.multiplier
            self._traded_value[oid] = self._traded_value.get(oid, ZERO) + value
            self.fills.append(
                BookedFill(
                    oid, side.value, fill.price, fill.quantity, fill.liquidity.value, fill.ts,
                    charges, realised, self.position.quantity,
                )
            )  # fmt: skip
