"""The lot book: transactions in date order in, lots, realised sales, income and the daily
effects that the value series is built from out.

Hand-written, because no maintained Python library keeps tax lots with FIFO, LIFO, HIFO,
average cost *and* specific identification, shorts, contract multipliers and corporate
actions in Decimals (``beancount``'s booking does FIFO/LIFO/average on its own ledger
format, not a service's transactions).  The rules, and the worked example they are tested
against, are in ``docs/portfolios.md``.

Conventions:

* A lot's ``cost`` is what it cost in the portfolio's currency, fees included (the FX rate
  of its trade date); a short lot's cost is minus its net proceeds.  Closing part of a lot
  takes the same fraction of its cost.  Realised P&L = what the close brought in (net of its
  fees) minus the cost it took.
* ``average`` takes every close at the position's average cost (total cost / quantity);
  the lots it consumes for their dates are taken first in, first out.
* ``hifo`` closes the dearest long lots first (and the short lots that brought in least),
  so the realised gain is the smallest the lots allow.
* Splits and bonus issues multiply every lot's quantity and keep its cost and its date; a
  merger or ticker change moves the lots to the new instrument likewise.  Dividends are
  income, never a change of cost; a per-share dividend is paid on what was held at the
  start of its ex-date (its ``date``).  Tax and fees beyond a dividend's or interest's gross
  are refused: income is never negative.
* Every division is rounded to 12 decimal places, and what a close takes is subtracted
  from the lot, so quantity and cost are conserved exactly: realised + remaining cost is
  always the cost that went in.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from decimal import Context, Decimal, localcontext
from operator import attrgetter
from typing import NamedTuple

from quantdesk.portfolios.accounting.types import (
    CLOSING_EVENTS,
    ONE,
    ZERO,
    AccountingError,
    DeductionsExceedGross,
    LotMethod,
    LotPick,
    Transaction,
    TxnType,
)

_WIDE = Context(prec=60)
_SORT_KEY = attrgetter("sort_key")
_PLACES = Decimal("1e-12")


_divide, _quantize = _WIDE.divide, _WIDE.quantize


def _div(a: Decimal, b: Decimal) -> Decimal:
    """``a / b`` rounded to 12 places (half-even), exact when it terminates before that."""
    # The context's methods, not ``Decimal.quantize(..., context=)``: the same operation,
    # without parsing a keyword argument (which cost as much as the division).
    return _quantize(_divide(a, b), _PLACES)


def _sign(x: Decimal) -> Decimal:
    return ONE if x > 0 else -ONE


class Lot:
    __slots__ = ("cost", "cost_local", "id", "notional", "opened", "quantity")

    def __init__(
        self,
        lot_id: str,
        opened: dt.date,
        quantity: Decimal,
        cost: Decimal,
        cost_local: Decimal,
        notional: Decimal,
    ) -> None:
        self.id = lot_id
        self.opened = opened
        self.quantity = quantity  # signed: + long, - short
        self.cost = cost  # signed, portfolio currency, fees included
        self.cost_local = cost_local  # signed, the instrument's currency
        self.notional = notional  # signed, portfolio currency, fees excluded (futures only)

    @property
    def unit_cost(self) -> Decimal:
        return _div(self.cost, self.quantity)


@dataclass(slots=True)
class Position:
    account: str
    instrument: str
    multiplier: Decimal = ONE
    is_future: bool = False
    currency: str = ""
    lots: list[Lot] = field(default_factory=list)
    # The lots' total, kept up to date by every change (summing the lots on each read
    # was a third of a 20,000-transaction recompute).
    quantity: Decimal = ZERO

    def recount(self) -> None:
        self.lots = [lot for lot in self.lots if lot.quantity]
        self.quantity = sum((lot.quantity for lot in self.lots), ZERO)

    @property
    def cost(self) -> Decimal:
        return sum((lot.cost for lot in self.lots), ZERO)

    @property
    def cost_local(self) -> Decimal:
        return sum((lot.cost_local for lot in self.lots), ZERO)

    @property
    def notional(self) -> Decimal:
        return sum((lot.notional for lot in self.lots), ZERO)


class ClosedLot(NamedTuple):
    lot_id: str
    opened: dt.date
    closed: dt.date
    quantity: Decimal  # signed as the lot was: negative for a covered short
    cost: Decimal
    proceeds: Decimal
    realized_pnl: Decimal


@dataclass(slots=True)
class Sale:
    """One closing transaction: what it brought in, the cost it took, the lots it consumed."""

    transaction_id: str
    type: TxnType
    date: dt.date
    account: str
    instrument: str
    quantity: Decimal
    proceeds: Decimal
    cost: Decimal
    realized_pnl: Decimal
    lots: tuple[ClosedLot, ...]


class Delta(NamedTuple):
    """What one transaction changed in one instrument's position (portfolio-wide)."""

    instrument: str
    quantity: Decimal
    cost: Decimal
    notional: Decimal


@dataclass(slots=True)
class Effect:
    """What one transaction did, in the portfolio's currency.

    ``cash`` is the change of the account's cash; ``flow`` the external flow into the
    securities (positive in): money spent on them, minus money they paid out.  Income,
    fees and taxes are broken out for the reports."""

    transaction_id: str
    date: dt.date
    account: str
    cash: Decimal = ZERO
    flow: Decimal = ZERO
    income: Decimal = ZERO
    fees: Decimal = ZERO
    taxes: Decimal = ZERO
    realized_pnl: Decimal = ZERO
    instrument: str | None = None
    deltas: list[Delta] = field(default_factory=list)


def _take(lot: Lot, quantity: Decimal) -> tuple[Decimal, Decimal, Decimal]:
    """Take ``quantity`` (unsigned) out of ``lot``: the cost, local cost and notional taken."""
    whole = lot.quantity if lot.quantity > 0 else -lot.quantity
    if quantity == whole:
        taken = (lot.cost, lot.cost_local, lot.notional)
        lot.quantity, lot.cost, lot.cost_local, lot.notional = ZERO, ZERO, ZERO, ZERO
        return taken
    cost = _div(lot.cost * quantity, whole)
    lot.quantity = lot.quantity - quantity if lot.quantity > 0 else lot.quantity + quantity
    # In the portfolio's own currency the local cost is the cost (the same object), and
    # only a future carries a notional: one division instead of three on the common path.
    if lot.cost_local is lot.cost:
        local = cost
        lot.cost = lot.cost_local = lot.cost - cost
    else:
        local = _div(lot.cost_local * quantity, whole)
        lot.cost -= cost
        lot.cost_local -= local
    notional = _div(lot.notional * quantity, whole) if lot.notional else ZERO
    lot.notional -= notional
    return cost, local, notional


class _Taken(NamedTuple):
    lot: Lot
    opened: dt.date
    quantity: Decimal  # unsigned
    cost: Decimal
    cost_local: Decimal
    notional: Decimal


class Book:
    """Lots of every (account, instrument), built by applying transactions in order."""

    def __init__(
        self,
        method: LotMethod = LotMethod.FIFO,
        account_methods: dict[str, LotMethod] | None = None,
    ) -> None:
        self.method = method
        self.account_methods = account_methods or {}
        self.positions: dict[tuple[str, str], Position] = {}
        self.sales: list[Sale] = []
        self.effects: list[Effect] = []
        self.cash: dict[str, Decimal] = {}
        self.income_by_instrument: dict[str, Decimal] = {}

    # --- reading ----------------------------------------------------------------------------
    def open_positions(self) -> list[Position]:
        return [p for p in self.positions.values() if p.lots]

    def quantity(self, account: str, instrument: str) -> Decimal:
        position = self.positions.get((account, instrument))
        return ZERO if position is None else position.quantity

    # --- applying ---------------------------------------------------------------------------
    def apply_all(self, transactions: Iterable[Transaction]) -> Book:
        # 60 significant digits: a 24-digit quantity times a 24-digit price is exact (the
        # default context's 28 would round it silently).
        with localcontext(_WIDE):
            for txn in sorted(transactions, key=_SORT_KEY):
                self._apply(txn)
        return self

    def apply(self, txn: Transaction) -> Effect:
        with localcontext(_WIDE):
            return self._apply(txn)

    def _apply(self, txn: Transaction) -> Effect:
        effect = Effect(txn.id, txn.date, txn.account, instrument=txn.instrument)
        handler = _HANDLERS[txn.type]
        handler(self, txn, effect)
        effect.flow = effect.flow - effect.cash
        self.cash[txn.account] = self.cash.get(txn.account, ZERO) + effect.cash
        self.effects.append(effect)
        return effect

    def _position(self, txn: Transaction, account: str | None = None) -> Position:
        instrument = txn.instrument or _needs_instrument(txn)
        key = (txn.account if account is None else account, instrument)
        position = self.positions.get(key)
        if position is None:
            position = Position(
                key[0], instrument, txn.multiplier, txn.is_future, txn.currency or ""
            )
            self.positions[key] = position
        return position

    def _method(self, account: str) -> LotMethod:
        return self.account_methods.get(account, self.method)

    # --- trades -------------------------------------------------------------------------
    def _open(self, txn: Transaction, effect: Effect, direction: int) -> None:
        if not txn.quantity > 0:  # (checked here, not by a call: every trade passes it)
            _positive(txn, "quantity", txn.quantity)
        position = self._position(txn)
        held = position.quantity
        if direction > 0 and held < 0:
            raise AccountingError(
                txn.id,
                f"{position.instrument} is held short ({held}) in this account: "
                "record a buy_to_cover",
            )
        if direction < 0 and held > 0:
            raise AccountingError(
                txn.id,
                f"{position.instrument} is held long ({held}) in this account: sell it first",
            )
        notional_local = txn.quantity * txn.price * txn.multiplier
        fx = txn.fx_rate
        if direction > 0:
            local, signed_notional, signed = notional_local + txn.fees, notional_local, txn.quantity
        else:
            local, signed_notional, signed = (
                txn.fees - notional_local,
                -notional_local,
                -txn.quantity,
            )
        if not position.is_future:
            signed_notional = ZERO  # only a margined contract is valued against it
        if fx != ONE:
            lot = Lot(txn.id, txn.date, signed, local * fx, local, signed_notional * fx)
            fees = txn.fees * fx
        else:
            lot = Lot(txn.id, txn.date, signed, local, local, signed_notional)
            fees = txn.fees
        position.lots.append(lot)
        position.quantity += signed
        effect.fees += fees
        effect.cash -= fees if position.is_future else lot.cost
        effect.deltas.append(Delta(position.instrument, lot.quantity, lot.cost, lot.notional))

    def _close(
        self,
        txn: Transaction,
        effect: Effect,
        direction: int,
        quantity: Decimal,
        price: Decimal,
        position: Position,
    ) -> None:
        """Close ``quantity`` of a position held in ``direction`` (+1 long, -1 short)."""
        ordered = self._check_close(txn, position, quantity, direction)
        notional_local = quantity * price * position.multiplier
        fx = txn.fx_rate
        # Signed, what the close brings in: a sale's net proceeds, minus a cover's cost.
        received_local = (
            notional_local - txn.fees if direction > 0 else -(notional_local + txn.fees)
        )
        received = received_local * fx
        closed: list[ClosedLot] = []
        total_cost = total_notional = ZERO
        remaining = received
        closed_on = txn.date
        if ordered is None:  # specific lots or average cost: picked first, then priced
            taken = self._pick(txn, position, quantity, direction)
            for n, part in enumerate(taken):
                last = n == len(taken) - 1
                share = remaining if last else _div(received * part.quantity, quantity)
                remaining -= share
                total_cost += part.cost
                total_notional += part.notional
                closed.append(
                    ClosedLot(
                        part.lot.id,
                        part.opened,
                        closed_on,
                        part.quantity * direction,
                        part.cost,
                        share,
                        share - part.cost,
                    )
                )
            emptied = int(any(not part.lot.quantity for part in taken))
        else:
            # FIFO, LIFO, HIFO: each lot taken and priced in one pass, with no record of the
            # take in between (the lots' matching was most of a recompute's time).  The
            # same takes, divisions and order as ``_pick``'s loop then the pricing above.
            left = quantity
            emptied = 0
            for lot in ordered:
                if not left:
                    break
                whole = lot.quantity if lot.quantity > 0 else -lot.quantity
                take = whole if whole < left else left  # min(left, whole), ties to left
                if take == whole:
                    cost, notional = lot.cost, lot.notional
                    lot.quantity = lot.cost = lot.cost_local = lot.notional = ZERO
                    emptied += 1
                else:
                    cost, _, notional = _take(lot, take)
                left -= take
                share = remaining if not left else _div(received * take, quantity)
                remaining -= share
                total_cost += cost
                total_notional += notional
                closed.append(
                    ClosedLot(
                        lot.id,
                        lot.opened,
                        closed_on,
                        take if direction > 0 else take * direction,
                        cost,
                        share,
                        share - cost,
                    )
                )
        realised = received - total_cost
        if emptied and ordered is position.lots:  # first in, first out: a prefix emptied
            position.lots = position.lots[emptied:]
        elif emptied:
            position.lots = [lot for lot in position.lots if lot.quantity]
        signed = quantity if direction > 0 else -quantity
        position.quantity -= signed
        self.sales.append(
            Sale(
                txn.id,
                txn.type,
                closed_on,
                position.account,
                position.instrument,
                quantity,
                received,
                total_cost,
                realised,
                tuple(closed),
            )
        )
        effect.realized_pnl += realised
        effect.fees += txn.fees * fx
        effect.cash += received - total_notional if position.is_future else received
        effect.deltas.append(Delta(position.instrument, -signed, -total_cost, -total_notional))

    def _check_close(
        self, txn: Transaction, position: Position, quantity: Decimal, direction: int
    ) -> Sequence[Lot] | None:
        """Refuse a close beyond what is held; the lots in the order the method takes them,
        or None when the close is not taken lot by lot in an order (specific lots, average
        cost)."""
        held = position.quantity if position.quantity > 0 else -position.quantity
        if quantity > held:
            raise AccountingError(
                txn.id,
                f"{txn.type.value} of {quantity} {position.instrument} exceeds the "
                f"{'long' if direction > 0 else 'short'} quantity held in this account ({held})",
            )
        if txn.lots:
            return None
        method = self.account_methods.get(position.account, self.method)
        if method is LotMethod.FIFO:
            return position.lots
        if method is LotMethod.LIFO:
            return list(reversed(position.lots))
        if method is LotMethod.HIFO:
            # Dearest long lots first; for shorts, the lots that brought in least first.
            return sorted(position.lots, key=lambda lot: lot.unit_cost, reverse=direction > 0)
        return None

    def _pick(
        self, txn: Transaction, position: Position, quantity: Decimal, direction: int
    ) -> list[_Taken]:
        ordered = self._check_close(txn, position, quantity, direction)
        if ordered is None:
            if txn.lots:
                return self._pick_specific(txn, position, quantity)
            return self._pick_average(position, quantity)
        out: list[_Taken] = []
        left = quantity
        for lot in ordered:
            if not left:
                break
            take = min(left, abs(lot.quantity))
            opened = lot.opened
            cost, local, notional = _take(lot, take)
            out.append(_Taken(lot, opened, take, cost, local, notional))
            left -= take
        return out

    def _pick_average(self, position: Position, quantity: Decimal) -> list[_Taken]:
        held = abs(position.quantity)
        before = (position.cost, position.cost_local, position.notional)
        if quantity == held:
            taken_total = before
        else:
            taken_total = (
                _div(before[0] * quantity, held),
                _div(before[1] * quantity, held),
                _div(before[2] * quantity, held),
            )
        out: list[_Taken] = []
        left = quantity
        given = [ZERO, ZERO, ZERO]
        # The quantities (and so the dates) come out first in, first out; the cost at the
        # average, shared over them by quantity (the last share takes the remainder).
        for lot in position.lots:
            if not left:
                break
            take = min(left, abs(lot.quantity))
            left -= take
            if left:
                shares = [_div(total * take, quantity) for total in taken_total]
            else:
                shares = [total - g for total, g in zip(taken_total, given, strict=True)]
            given = [g + s for g, s in zip(given, shares, strict=True)]
            out.append(_Taken(lot, lot.opened, take, shares[0], shares[1], shares[2]))
            lot.quantity -= _sign(lot.quantity) * take
        survivors = [lot for lot in position.lots if lot.quantity]
        for lot in position.lots:
            lot.cost = lot.cost_local = lot.notional = ZERO
        if survivors:
            survivors[0].cost = before[0] - taken_total[0]
            survivors[0].cost_local = before[1] - taken_total[1]
            survivors[0].notional = before[2] - taken_total[2]
            _respread(survivors)
        return out

    def _pick_specific(
        self, txn: Transaction, position: Position, quantity: Decimal
    ) -> list[_Taken]:
        if sum((pick.quantity for pick in txn.lots), ZERO) != quantity:
            raise AccountingError(txn.id, "the chosen lots' quantities must add up to the quantity")
        by_id = {lot.id: lot for lot in position.lots}
        out: list[_Taken] = []
        for pick in txn.lots:
            lot = by_id.get(pick.lot_id)
            if lot is None:
                raise AccountingError(
                    txn.id, f"no open lot {pick.lot_id} of {position.instrument} in this account"
                )
            _positive(txn, "lot quantity", pick.quantity)
            if pick.quantity > abs(lot.quantity):
                raise AccountingError(txn.id, f"lot {pick.lot_id} holds only {abs(lot.quantity)}")
            opened = lot.opened
            cost, local, notional = _take(lot, pick.quantity)
            out.append(_Taken(lot, opened, pick.quantity, cost, local, notional))
        return out


def _respread(lots: list[Lot]) -> None:
    """Give ``lots`` one unit cost (their total cost over their total quantity), exactly in
    sum: the last lot takes the rounding remainder."""
    total_q = sum((abs(lot.quantity) for lot in lots), ZERO)
    for attr in ("cost", "cost_local", "notional"):
        total = sum((getattr(lot, attr) for lot in lots), ZERO)
        left = total
        for n, lot in enumerate(lots):
            share = left if n == len(lots) - 1 else _div(total * abs(lot.quantity), total_q)
            left -= share
            setattr(lot, attr, share)


def _needs_instrument(txn: Transaction) -> str:
    if not txn.instrument:
        raise AccountingError(txn.id, f"a {txn.type.value} needs an instrument")
    return txn.instrument


def _positive(txn: Transaction, name: str, value: Decimal) -> None:
    if value <= 0:
        raise AccountingError(txn.id, f"{name} must be positive")


def _amount(txn: Transaction) -> Decimal:
    if txn.amount is None:
        raise AccountingError(txn.id, f"a {txn.type.value} needs an amount")
    if txn.amount < 0:
        raise AccountingError(txn.id, "amount must not be negative")
    return txn.amount


# --- handlers, one per type ---------------------------------------------------------------
def _buy(book: Book, txn: Transaction, effect: Effect) -> None:
    book._open(txn, effect, +1)
    if book.account_methods.get(txn.account, book.method) is LotMethod.AVERAGE:
        _respread(book._position(txn).lots)


def _short(book: Book, txn: Transaction, effect: Effect) -> None:
    book._open(txn, effect, -1)
    if book._method(txn.account) is LotMethod.AVERAGE:
        _respread(book._position(txn).lots)


def _sell(book: Book, txn: Transaction, effect: Effect) -> None:
    if not txn.quantity > 0:
        _positive(txn, "quantity", txn.quantity)
    position = book._position(txn)
    if position.quantity < 0:
        raise AccountingError(txn.id, f"{position.instrument} is held short: record a buy_to_cover")
    book._close(txn, effect, +1, txn.quantity, txn.price, position)


def _cover(book: Book, txn: Transaction, effect: Effect) -> None:
    _positive(txn, "quantity", txn.quantity)
    position = book._position(txn)
    if position.quantity > 0:
        raise AccountingError(txn.id, f"{position.instrument} is held long: record a sell")
    book._close(txn, effect, -1, txn.quantity, txn.price, position)


def _closing_event(book: Book, txn: Transaction, effect: Effect) -> None:
    """Exercise, assignment, expiry, settlement: close what is held at ``price`` (0 for an
    expiry), long or short; the underlying's delivery is its own buy or sell."""
    position = book._position(txn)
    held = position.quantity
    if not held:
        raise AccountingError(txn.id, f"nothing of {position.instrument} is held to close")
    quantity = txn.quantity or abs(held)
    direction = 1 if held > 0 else -1
    book._close(txn, effect, direction, quantity, txn.price, position)


def _dividend(book: Book, txn: Transaction, effect: Effect) -> None:
    instrument = _needs_instrument(txn)
    if txn.amount is not None:
        gross = _amount(txn)
    else:
        # Per share: ``price`` times the quantity given, or held at the start of the ex-date
        # (``DAY_ORDER`` applies dividends before the day's trades).
        held = txn.quantity or book.quantity(txn.account, instrument)
        if held <= 0:
            raise AccountingError(
                txn.id,
                f"no {instrument} held at the start of {txn.date} (the dividend's ex-date) "
                "to receive it on",
            )
        gross = held * txn.price
    fx = txn.fx_rate
    net = _net_income(txn, gross) * fx
    effect.income += net
    effect.taxes += txn.tax * fx
    effect.fees += txn.fees * fx
    effect.cash += net
    book.income_by_instrument[instrument] = book.income_by_instrument.get(instrument, ZERO) + net


def _interest(book: Book, txn: Transaction, effect: Effect) -> None:
    fx = txn.fx_rate
    net = _net_income(txn, _amount(txn)) * fx
    effect.income += net
    effect.taxes += txn.tax * fx
    effect.fees += txn.fees * fx
    effect.cash += net


def _net_income(txn: Transaction, gross: Decimal) -> Decimal:
    """A dividend's or interest's ``gross`` less its withholding and fees, in its currency."""
    for name, value in (("tax", txn.tax), ("fees", txn.fees)):
        if value < 0:
            raise AccountingError(txn.id, f"{name} must not be negative")
    if txn.tax + txn.fees > gross:
        raise DeductionsExceedGross(
            txn.id,
            f"tax {txn.tax} and fees {txn.fees} exceed the gross {txn.type.value} of {gross}",
            "tax" if txn.tax else "fees",
        )
    return gross - txn.tax - txn.fees


def _fee(book: Book, txn: Transaction, effect: Effect) -> None:
    paid = _amount(txn) * txn.fx_rate
    effect.fees += paid
    effect.cash -= paid


def _tax(book: Book, txn: Transaction, effect: Effect) -> None:
    paid = _amount(txn) * txn.fx_rate
    effect.taxes += paid
    effect.cash -= paid


def _deposit(book: Book, txn: Transaction, effect: Effect) -> None:
    # Cash only: the securities' performance does not see money parked in cash.
    effect.cash += _amount(txn) * txn.fx_rate
    effect.flow += effect.cash  # cancels in ``apply``: no external flow of the securities


def _withdrawal(book: Book, txn: Transaction, effect: Effect) -> None:
    effect.cash -= _amount(txn) * txn.fx_rate
    effect.flow += effect.cash


def _transfer_in(book: Book, txn: Transaction, effect: Effect) -> None:
    """Securities arriving from outside the portfolio, at ``price`` as their cost basis."""
    book._open(txn, effect, +1)
    # No cash paid for the securities themselves (only the fees): they are an inflow.
    fx = txn.fx_rate
    effect.cash = -txn.fees * fx
    effect.flow += txn.quantity * txn.price * txn.multiplier * fx


def _transfer_out(book: Book, txn: Transaction, effect: Effect) -> None:
    _positive(txn, "quantity", txn.quantity)
    source = book._position(txn)
    direction = 1 if source.quantity >= 0 else -1
    taken = book._pick(txn, source, txn.quantity, direction)
    source.lots = [lot for lot in source.lots if lot.quantity]
    source.quantity -= txn.quantity * direction
    fx = txn.fx_rate
    effect.fees += txn.fees * fx
    effect.cash -= txn.fees * fx
    moved_cost = sum((t.cost for t in taken), ZERO)
    moved_notional = sum((t.notional for t in taken), ZERO)
    signed_quantity = txn.quantity * direction
    effect.deltas.append(Delta(source.instrument, -signed_quantity, -moved_cost, -moved_notional))
    if txn.to_account is not None:
        # Within the portfolio: the lots keep their cost and their dates.
        target = book._position(txn, txn.to_account)
        for part in taken:
            target.lots.append(
                Lot(
                    part.lot.id,
                    part.opened,
                    part.quantity * direction,
                    part.cost,
                    part.cost_local,
                    part.notional,
                )
            )
        target.lots.sort(key=lambda lot: lot.opened)
        target.recount()
        effect.deltas.append(Delta(target.instrument, signed_quantity, moved_cost, moved_notional))
        return
    # Out of the portfolio (a gift, a move to another broker): leaves at ``price``.
    effect.flow -= signed_quantity * txn.price * txn.multiplier * fx


def _split(book: Book, txn: Transaction, effect: Effect) -> None:
    if txn.ratio is None or txn.ratio <= 0:
        raise AccountingError(txn.id, f"a {txn.type.value} needs a positive ratio")
    factor = txn.ratio if txn.type is TxnType.SPLIT else ONE + txn.ratio
    instrument = _needs_instrument(txn)
    for (account, name), position in book.positions.items():
        if name != instrument or (txn.account and account != txn.account):
            continue
        before = position.quantity
        for lot in position.lots:
            lot.quantity *= factor
        position.recount()
        effect.deltas.append(Delta(instrument, position.quantity - before, ZERO, ZERO))


def _merger(book: Book, txn: Transaction, effect: Effect) -> None:
    """A merger or ticker change: the lots move to ``new_instrument``, ``ratio`` new shares
    for each old one (default 1), with their cost and their dates."""
    instrument = _needs_instrument(txn)
    if not txn.new_instrument:
        raise AccountingError(txn.id, "a merger needs new_instrument")
    if txn.new_instrument == instrument:
        # Moving the lots onto their own position appended to the list being moved, for
        # ever; a change of the share count alone is a split.
        raise AccountingError(txn.id, "a merger's new_instrument must differ (record a split)")
    factor = txn.ratio if txn.ratio is not None else ONE
    if factor <= 0:
        raise AccountingError(txn.id, "ratio must be positive")
    for (account, name), position in list(book.positions.items()):
        if name != instrument or not position.lots or (txn.account and account != txn.account):
            continue
        key = (account, txn.new_instrument)
        target = book.positions.get(key)
        if target is None:
            target = Position(
                account,
                txn.new_instrument,
                position.multiplier,
                position.is_future,
                position.currency,
            )
            book.positions[key] = target
        quantity, cost, notional = position.quantity, position.cost, position.notional
        for lot in position.lots:
            lot.quantity *= factor
            target.lots.append(lot)
        target.lots.sort(key=lambda lot: lot.opened)
        target.recount()
        position.lots = []
        position.quantity = ZERO
        effect.deltas.append(Delta(instrument, -quantity, -cost, -notional))
        effect.deltas.append(Delta(txn.new_instrument, quantity * factor, cost, notional))


_HANDLERS = {
    TxnType.BUY: _buy,
    TxnType.SELL: _sell,
    TxnType.SHORT_SELL: _short,
    TxnType.BUY_TO_COVER: _cover,
    TxnType.DIVIDEND: _dividend,
    TxnType.INTEREST: _interest,
    TxnType.FEE: _fee,
    TxnType.TAX: _tax,
    TxnType.DEPOSIT: _deposit,
    TxnType.WITHDRAWAL: _withdrawal,
    TxnType.TRANSFER_IN: _transfer_in,
    TxnType.TRANSFER_OUT: _transfer_out,
    TxnType.SPLIT: _split,
    TxnType.BONUS: _split,
    TxnType.MERGER: _merger,
    **dict.fromkeys(CLOSING_EVENTS, _closing_event),
}


def build_book(
    transactions: Iterable[Transaction],
    method: LotMethod = LotMethod.FIFO,
    account_methods: dict[str, LotMethod] | None = None,
) -> Book:
    """Apply ``transactions`` in date order (``Transaction.sort_key``) to a new book."""
    return Book(method, account_methods).apply_all(transactions)


def specific(*picks: tuple[str, Decimal | str | int]) -> tuple[LotPick, ...]:
    """``specific(("lot-id", "50"), ...)``: the lots a sell takes, for tests and notebooks."""
    return tuple(LotPick(lot_id, Decimal(quantity)) for lot_id, quantity in picks)
