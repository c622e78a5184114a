"""The backtest's account: paper trading's buying power, margin and expiry settlement, pure.

Paper trading keeps an account's money in ledger books (``trading.ledger``: free cash,
reserved, margin, positions) and moves it by the rules of ``trading.bookkeeping``,
``trading.margins``, ``trading.orders`` and ``trading.lifecycle``.  Those modules run in a
database transaction; the backtest has none, so this module applies the *same rules* to
plain Decimals, computing every figure with the pure engine functions paper trading uses:

* **Admission** (``OrderService._admit``).  An equity order needs the opening part of its
  quantity (``positions.split_open_close`` against the position and the same side's open
  orders): a buy its value, a short its intraday margin (``engine.margin``'s naked
  requirement of an equity short: ``intraday_pct`` of its notional), plus its charges; an
  F&O order needs ``engine.margin.check_order`` against the book of F&O positions (the
  hedge-aware change in margin plus premium plus charges), refused with that check's
  ``insufficient-margin`` detail.  Prices as paper's ``_reserve_price``: the limit price,
  else the stop (or the last price) plus the price band.  More than the free cash: the
  order is refused, ``insufficient-buying-power``, with paper's wording.
* **Reservation.**  What an order needs moves from free cash to ``reserved`` while it is
  open; each fill releases its share, a cancel the rest (``bookkeeping.reserve/release``).
* **Fills** (``bookkeeping.book_fill`` and ``margins.rebalance``).  Equities and options pay
  or receive their value; futures move only realised P&L.  A closing fill frees its share of
  the position's margin; an equity short blocks its intraday margin *and its proceeds*
  (they are not buying power until it is covered).  After an F&O fill every F&O position
  blocks its share of ``engine.margin.margin_report`` at the marks (the filled instrument
  at its fill price, an option's underlying at its spot's last price or else its strike).
  A fill that would take free cash below zero at any of those steps is not booked and its
  order is canceled (paper's matcher: "the fill would take cash below zero").
* **Expiry** (``lifecycle.settle_expiries`` / ``bookkeeping.settle_expiry``).  An open
  option settles at its intrinsic value against the underlying's settlement price, a future
  at that price (``engine.settlement.settle_option``/``settle_future``); its margin comes
  back in the same step, a long exercised in the money pays STT on its settlement value
  (``ChargeSchedule.exercise``), the contract's open orders are canceled and the F&O margin
  is set again for what is left.  One whose payout exceeds cash and margin stays open, as
  in paper trading (a margin call), and is reported.

Equity is free cash + reserved + blocked margin + the positions marked: equities and
options at ``quantity x mark x multiplier``, futures at their unrealised P&L (their notional
never changed hands).  Not here: futures' daily mark-to-market into cash and the refusal of
delivery (cnc) shorts; see docs/backtests.md.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal

from quantdesk.trading.engine.margin import (
    MarginLeg,
    MarginRates,
    check_order,
    margin_report,
    naked_requirement,
    order_cash,
)
from quantdesk.trading.engine.positions import (
    Position,
    apply_fill,
    money,
    split_open_close,
    tidy,
)
from quantdesk.trading.engine.settlement import ExpirySettlement, settle_future, settle_option
from quantdesk.trading.engine.types import OrderType, Side

ZERO = Decimal(0)
HUNDRED = Decimal(100)
# Paper trading's rates at the default settings (``trading.margins.margin_rates``): futures
# 12% of notional (``trading_margin_futures_pct``, no separate exposure margin), short
# options 15% with a floor of 5% (``trading_margin_short_options_pct``), equity shorts 20%
# (``trading_margin_intraday_pct``).  A job passes the running settings' rates instead.
PAPER_MARGIN_RATES = MarginRates(
    futures_pct=Decimal(12),
    exposure_pct=ZERO,
    short_option_pct=Decimal(15),
    short_option_floor_pct=Decimal(5),
    intraday_pct=Decimal(20),
)
PAPER_PRICE_BAND_PCT = Decimal(10)  # ``trading_price_band_pct``: market orders reserve +10%
FILL_REFUSED = "canceled: the fill would take cash below zero"

# The charges of a fill, or an order's estimate of them: (side, price, quantity, day).
Charging = Callable[[Side, Decimal, Decimal, dt.date], Decimal]
# STT on an option exercised at expiry: (settlement value, day) (ChargeSchedule.exercise).
ExerciseCharging = Callable[[Decimal, dt.date], Decimal]


@dataclass(frozen=True, slots=True)
class Contract:
    """What the replay needs to know of an instrument (from the instrument master)."""

    key: str
    tick_size: Decimal
    lot_size: Decimal = Decimal(1)
    multiplier: Decimal = Decimal(1)
    kind: str = "equity"  # equity, etf, future, option
    underlying: str | None = None  # the underlying's symbol (NIFTY), for F&O
    strike: Decimal | None = None
    option_type: str | None = None  # call, put
    expiry: dt.date | None = None
    currency: str = "INR"

    @property
    def is_derivative(self) -> bool:
        return self.kind in ("future", "option")


class OrderRefused(Exception):
    """An order paper trading would refuse: ``code`` is its problem type's slug."""

    def __init__(self, code: str, title: str, detail: str) -> None:
        super().__init__(detail)
        self.code, self.title, self.detail = code, title, detail


@dataclass(frozen=True, slots=True)
class Rejection:
    """An order refused at placement, or canceled because its fill could not be paid."""

    ts: dt.datetime
    key: str
    side: str
    quantity: Decimal
    code: str
    detail: str


@dataclass(frozen=True, slots=True)
class Settlement:
    """An expired position closed at its settlement value."""

    ts: dt.datetime
    key: str
    quantity: Decimal  # the signed quantity settled
    price: Decimal  # per unit: an option's intrinsic value, a future's final price
    underlying_price: Decimal
    cash: Decimal  # received (+) or paid (-), margin released not included
    realised: Decimal
    charges: Decimal  # STT on an exercised long
    outcome: str  # exercised, assigned, expired (worthless), settled (a future)


@dataclass(slots=True)
class _Open:
    key: str
    side: Side
    remaining: Decimal


@dataclass(slots=True)
class MarginAccount:
    """One backtest's money, in paper trading's books (see the module docstring)."""

    cash: Decimal = ZERO  # free cash: the buying power
    rates: MarginRates = PAPER_MARGIN_RATES
    price_band_pct: Decimal = PAPER_PRICE_BAND_PCT
    contracts: dict[str, Contract] = field(default_factory=dict)
    positions: dict[str, Position] = field(default_factory=dict)
    margin: dict[str, Decimal] = field(default_factory=dict)  # blocked, by instrument
    reserved: dict[str, Decimal] = field(default_factory=dict)  # by order id
    marks: dict[str, Decimal] = field(default_factory=dict)  # last price, by instrument
    spots: dict[str, Decimal] = field(default_factory=dict)  # last price, by underlying
    rejections: list[Rejection] = field(default_factory=list)
    settlements: list[Settlement] = field(default_factory=list)
    _open: dict[str, _Open] = field(default_factory=dict)

    # --- reading ----------------------------------------------------------------------
    def position(self, key: str) -> Position:
        return self.positions.get(key) or Position()

    def blocked(self) -> Decimal:
        return sum(self.margin.values(), ZERO)

    def equity(self) -> Decimal:
        total = self.cash + sum(self.reserved.values(), ZERO) + self.blocked()
        for key, held in self.positions.items():
            if not held.quantity:
                continue
            contract = self.contracts[key]
            value = held.quantity * self._mark(contract, held) * contract.multiplier
            total += value - held.cost if contract.kind == "future" else value
        return total

    def _mark(self, contract: Contract, held: Position) -> Decimal:
        mark = self.marks.get(contract.key)
        if mark is None:  # never quoted: at its average price, as margins.derivative_book
            return held.average_price or ZERO
        return mark

    def _leg(self, contract: Contract, quantity: Decimal, price: Decimal) -> MarginLeg:
        """As ``margins.margin_leg``: an option's underlying at its spot's last price, else
        at its strike."""
        spot = self.spots.get(contract.underlying or "") if contract.kind == "option" else None
        # An index or an etf trades as an equity here (margin has no model of an index).
        kind = contract.kind if contract.is_derivative else "equity"
        return MarginLeg(
            key=contract.key, kind=kind, quantity=quantity, price=price,
            multiplier=contract.multiplier, underlying=contract.underlying,
            underlying_price=(spot if spot is not None else contract.strike)
            if contract.kind == "option" else None,
            strike=contract.strike, option_type=contract.option_type, expiry=contract.expiry,
        )  # fmt: skip

    def _derivative_book(self, prices: dict[str, Decimal]) -> list[MarginLeg]:
        legs = []
        for key, held in self.positions.items():
            contract = self.contracts[key]
            if held.quantity and contract.is_derivative:
                price = prices.get(key, self._mark(contract, held))
                legs.append(self._leg(contract, held.quantity, price))
        return legs

    # --- orders -----------------------------------------------------------------------
    def admit(
        self,
        contract: Contract,
        side: Side,
        quantity: Decimal,
        *,
        type: OrderType,
        limit_price: Decimal | None,
        stop_price: Decimal | None,
        charges: Charging,
        day: dt.date,
    ) -> Decimal:
        """What the order needs from free cash (paper's ``_admit``); raises
        :class:`OrderRefused` when paper trading would refuse it."""
        last = self.marks.get(contract.key)
        if limit_price is not None:
            price = limit_price
        else:
            base = stop_price if stop_price is not None else last
            if base is None:
                raise OrderRefused(
                    "no-market-price", "No market price",
                    f"{contract.key} has no quote yet, so a market order cannot be priced; "
                    "place a limit order or try again when it trades",
                )  # fmt: skip
            price = base * (1 + self.price_band_pct / HUNDRED)
        signed = quantity if side is Side.BUY else -quantity
        if contract.is_derivative:
            # Paper prices a sell's margin at its limit or the last price, a buy's at the
            # reservation price (orders._admit).
            if side is Side.SELL:
                price = limit_price or last or price
            order = self._leg(contract, signed, price)
            check = check_order(
                self._derivative_book({}), order, available=tidy(self.cash),
                charges=charges(side, price, quantity, day), rates=self.rates,
            )  # fmt: skip
            failure = check.failure(contract.currency)
            if failure is not None:
                raise OrderRefused(failure.type, failure.title, failure.detail)
            # A hedge releases margin only once it has filled, after paying its premium.
            needed = max(check.required, check.premium + check.charges, ZERO)
        else:
            claimed = sum(
                (o.remaining for o in self._open.values() if o.key == contract.key
                 and o.side is side), ZERO,
            )  # fmt: skip
            held = self.position(contract.key).quantity
            _, opening = split_open_close(held + claimed if side is Side.BUY else held - claimed,
                                          signed)  # fmt: skip
            needed = ZERO
            if opening:
                leg = self._leg(contract, opening if side is Side.BUY else -opening, price)
                # A buy pays its value; a short blocks its intraday margin (proceeds aside).
                needed = money(
                    order_cash(leg) + naked_requirement(leg, self.rates)
                    + charges(side, price, opening, day)
                )  # fmt: skip
        if needed > self.cash:
            raise OrderRefused(
                "insufficient-buying-power", "Insufficient buying power",
                f"this order needs {needed:f} {contract.currency}; the buying power is "
                f"{tidy(self.cash):f}",
            )  # fmt: skip
        return needed

    def opened(self, order_id: str, contract: Contract, side: Side, quantity: Decimal,
               needed: Decimal) -> None:  # fmt: skip
        """An admitted order is working: reserve what it needs."""
        self.contracts.setdefault(contract.key, contract)
        self._open[order_id] = _Open(contract.key, side, quantity)
        if needed > 0:
            self.cash -= needed
            self.reserved[order_id] = needed

    def ended(self, order_id: str) -> None:
        """The order is done (filled, canceled, expired): give back what it still holds."""
        self._open.pop(order_id, None)
        self.cash += self.reserved.pop(order_id, ZERO)

    def reject(self, ts: dt.datetime, key: str, side: Side, quantity: Decimal,
               refused: OrderRefused) -> None:  # fmt: skip
        self.rejections.append(Rejection(ts, key, side.value, quantity, refused.code,
                                         refused.detail))  # fmt: skip

    # --- fills ------------------------------------------------------------------------
    def fill(
        self, order_id: str, contract: Contract, side: Side, quantity: Decimal,
        price: Decimal, charges: Decimal,
    ) -> Decimal:  # fmt: skip
        """Book a fill as ``bookkeeping.book_fill`` (then ``margins.rebalance`` for F&O);
        returns the realised P&L.  Raises :class:`OrderRefused` (and changes nothing) when
        free cash would go below zero on the way."""
        working = self._open[order_id]
        share = self.reserved.get(order_id, ZERO)
        if quantity < working.remaining:
            share = money(share * quantity / working.remaining)
        cash = self.cash + share
        held = self.position(contract.key)
        signed = quantity if side is Side.BUY else -quantity
        effect = apply_fill(held, signed, price, contract.multiplier)
        future = contract.kind == "future"
        blocked = self.margin.get(contract.key, ZERO)
        if effect.closing:
            cash += effect.realised if future else effect.closing_value
            freed = (blocked if effect.closing == abs(held.quantity)
                     else money(blocked * effect.closing / abs(held.quantity)))  # fmt: skip
            cash += freed
            blocked -= freed
        if effect.opening:
            if not future:
                cash -= effect.opening_value
            if signed < 0 and not contract.is_derivative:
                # An equity short's margin and its proceeds stay blocked until it is covered.
                leg = self._leg(contract, -effect.opening, price)
                extra = naked_requirement(leg, self.rates) - effect.opening_value
                cash -= extra
                blocked += extra
        if cash < 0:
            raise OrderRefused("insufficient-funds", "Insufficient funds", FILL_REFUSED)
        cash -= charges
        if cash < 0:
            raise OrderRefused("insufficient-funds", "Insufficient funds", FILL_REFUSED)
        positions = {**self.positions, contract.key: effect.position}
        margin = {**self.margin, contract.key: blocked}
        if contract.is_derivative:
            cash, margin = self._rebalanced(positions, margin, cash, {contract.key: price})
            if cash < 0:
                raise OrderRefused("insufficient-funds", "Insufficient funds", FILL_REFUSED)
        self.cash, self.positions, self.margin = cash, positions, margin
        self.reserved[order_id] = self.reserved.get(order_id, ZERO) - share
        working.remaining -= quantity
        if working.remaining <= 0:
            self.ended(order_id)
        return effect.realised

    def _rebalanced(
        self, positions: dict[str, Position], margin: dict[str, Decimal], cash: Decimal,
        prices: dict[str, Decimal],
    ) -> tuple[Decimal, dict[str, Decimal]]:  # fmt: skip
        """``margins.rebalance``: each F&O position blocks its share of the hedge-aware
        requirement at the marks; the difference moves between cash and margin."""
        saved, self.positions = self.positions, positions
        try:
            report = margin_report(self._derivative_book(prices), self.rates)
        finally:
            self.positions = saved
        out = dict(margin)
        for key in positions:
            if not self.contracts[key].is_derivative:
                continue
            share = report.for_key(key) if positions[key].quantity else None
            target = ZERO if share is None else share.required
            cash -= target - out.get(key, ZERO)
            out[key] = target
        return cash, out

    # --- expiry -------------------------------------------------------------------------
    def settle_expiry(
        self, contract: Contract, underlying_price: Decimal, ts: dt.datetime,
        exercise_stt: ExerciseCharging | None = None,
    ) -> Settlement | None:  # fmt: skip
        """Close an expired position as ``bookkeeping.settle_expiry``; None when nothing is
        held.  Raises :class:`OrderRefused` (the position stays open) when what a short
        owes exceeds cash and its margin."""
        held = self.position(contract.key)
        if not held.quantity:
            return None
        done: ExpirySettlement
        if contract.kind == "option":
            if contract.option_type is None or contract.strike is None:
                raise ValueError(f"{contract.key} is an option without a strike or a type")
            done = settle_option(
                held, option_type=contract.option_type, strike=contract.strike,
                underlying_settlement_price=underlying_price, multiplier=contract.multiplier,
            )  # fmt: skip
        else:
            done = settle_future(held, final_settlement_price=underlying_price,
                                 multiplier=contract.multiplier)  # fmt: skip
        cash = self.cash + done.cash + self.margin.get(contract.key, ZERO)
        stt = ZERO
        if done.exercised_value and exercise_stt is not None:
            stt = exercise_stt(done.exercised_value, ts.date())
        positions = {**self.positions, contract.key: done.position}
        margin = {**self.margin, contract.key: ZERO}
        rebalanced, margin = self._rebalanced(positions, margin, cash - stt, {})
        if min(cash, cash - stt, rebalanced) < 0:
            raise OrderRefused(
                "insufficient-funds", "Expiry settlement exceeds cash and margin",
                f"settling {held.quantity} {contract.key} at {done.price} needs "
                f"{-done.cash} {contract.currency}; it stays open (a margin call)",
            )  # fmt: skip
        cash = rebalanced
        self.cash, self.positions, self.margin = cash, positions, margin
        outcome = ("exercised" if done.exercised_value else "assigned" if done.assigned
                   else "settled" if contract.kind == "future" else "expired")  # fmt: skip
        settled = Settlement(ts, contract.key, done.quantity, done.price, underlying_price,
                             done.cash, done.realised, stt, outcome)  # fmt: skip
        self.settlements.append(settled)
        return settled


__all__ = [
    "FILL_REFUSED",
    "PAPER_MARGIN_RATES",
    "PAPER_PRICE_BAND_PCT",
    "Charging",
    "Contract",
    "ExerciseCharging",
    "MarginAccount",
    "OrderRefused",
    "Rejection",
    "Settlement",
]
