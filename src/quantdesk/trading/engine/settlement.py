"""The day's lifecycle, as pure computations: F&O expiry, futures' daily mark-to-market,
corporate actions on holdings, and the T+1 settlement of delivery (CNC) buys.

* Expiry: an option settles at its intrinsic value against the underlying's settlement
  price (cash-settled: NSE index and, here, stock options alike); a future at its final
  settlement price.  Both close the position through :func:`positions.apply_fill`, so the
  realised P&L and the cost taken out follow the same average-cost rules as a trade.  A
  long in-the-money option is *exercised*: its settlement value is what India's STT on
  exercised options is charged on (``ChargeSchedule.exercise``); a short one is assigned.
* Daily mark-to-market of a future: the variation between its value at the day's
  settlement price and its cost moves into cash and realised P&L; its cost becomes that
  value.
* Corporate actions on a holding: a split or a bonus multiplies the quantity and keeps the
  total cost (so the average price falls in proportion); an entitlement's fraction of a
  share is dropped, or paid in cash at a given price with its share of the cost.  A
  dividend pays cash per share held (a short position pays it).
* T+1: a delivery buy settles into holdings on the next trading day after the trade (the
  trading-day test is passed in, e.g. from the exchange calendar).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from decimal import ROUND_DOWN, Decimal

from quantdesk.trading.engine.positions import Position, apply_fill, money, sign, tidy

ZERO = Decimal(0)
ONE = Decimal(1)


def intrinsic_value(option_type: str, strike: Decimal, underlying_price: Decimal) -> Decimal:
    """Per unit: ``max(S - K, 0)`` for a call, ``max(K - S, 0)`` for a put."""
    if option_type == "call":
        return max(underlying_price - strike, ZERO)
    if option_type == "put":
        return max(strike - underlying_price, ZERO)
    raise ValueError(f"option_type is call or put, not {option_type!r}")


@dataclass(frozen=True, slots=True)
class ExpirySettlement:
    price: Decimal  # per unit: the option's intrinsic value or the future's final price
    quantity: Decimal  # the signed quantity settled (the position's)
    cash: Decimal  # signed: received (+) or paid (-)
    removed_cost: Decimal  # cost basis taken out (signed, as the position carried it)
    realised: Decimal
    position: Position  # flat, with the realised P&L added
    exercised_value: Decimal  # a long ITM option's settlement value (STT base), else 0
    assigned: bool  # a short ITM option


def settle_option(
    position: Position,
    *,
    option_type: str,
    strike: Decimal,
    underlying_settlement_price: Decimal,
    multiplier: Decimal = ONE,
) -> ExpirySettlement:
    """Close an option position at expiry at its intrinsic value.

    Options' cost basis is cash paid or received, so the cash moved is the closing value
    (a long receives its value, a short pays it) and the realised P&L that value less the
    cost.  An out-of-the-money option expires worthless: cash 0, the whole cost realised.
    """
    price = intrinsic_value(option_type, strike, underlying_settlement_price)
    effect = apply_fill(position, -position.quantity, price, multiplier)
    exercised = effect.closing_value if position.quantity > 0 and price > 0 else ZERO
    return ExpirySettlement(
        price=price,
        quantity=position.quantity,
        cash=money(effect.closing_value),
        removed_cost=effect.removed_cost,
        realised=money(effect.realised),
        position=effect.position,
        exercised_value=money(exercised),
        assigned=position.quantity < 0 and price > 0,
    )


def settle_future(
    position: Position, *, final_settlement_price: Decimal, multiplier: Decimal = ONE
) -> ExpirySettlement:
    """Close a future at expiry at its final settlement price.

    A future's cost is its value at the last daily settlement (no cash changed hands for
    it), so only the last variation moves cash: ``cash == realised``.
    """
    effect = apply_fill(position, -position.quantity, final_settlement_price, multiplier)
    realised = money(effect.realised)
    return ExpirySettlement(
        price=final_settlement_price,
        quantity=position.quantity,
        cash=realised,
        removed_cost=effect.removed_cost,
        realised=realised,
        position=effect.position,
        exercised_value=ZERO,
        assigned=False,
    )


@dataclass(frozen=True, slots=True)
class MarkToMarket:
    variation: Decimal  # into cash and realised P&L (negative: a loss paid)
    position: Position  # cost reset to the value at the settlement price


def mark_to_market(
    position: Position, *, settlement_price: Decimal, multiplier: Decimal = ONE
) -> MarkToMarket:
    """A future's daily settlement at the day's settlement price."""
    value = money(position.quantity * settlement_price * multiplier)
    variation = money(value - position.cost)
    return MarkToMarket(
        variation, Position(position.quantity, value, position.realised_pnl + variation)
    )


@dataclass(frozen=True, slots=True)
class Split:
    """``new`` shares for every ``old`` (a face value of 10 split to 2 is ``Split(1, 5)``;
    a reverse split of 10 into 1 is ``Split(10, 1)``)."""

    old: Decimal
    new: Decimal

    @property
    def ratio(self) -> Decimal:
        return self.new / self.old


@dataclass(frozen=True, slots=True)
class Bonus:
    """``bonus`` new shares for every ``held`` (a 1:1 bonus doubles the holding)."""

    bonus: Decimal
    held: Decimal

    @property
    def ratio(self) -> Decimal:
        return (self.held + self.bonus) / self.held


@dataclass(frozen=True, slots=True)
class Dividend:
    per_share: Decimal


CorporateAction = Split | Bonus | Dividend


@dataclass(frozen=True, slots=True)
class ActionEffect:
    position: Position
    cash: Decimal  # a dividend (a short pays it), or cash in lieu of a fraction
    fraction: Decimal  # entitled units below one whole share, dropped or paid in lieu
    realised: Decimal  # cash in lieu less the cost it takes out


def apply_corporate_action(
    position: Position, action: CorporateAction, *, fraction_price: Decimal | None = None
) -> ActionEffect:
    """What ``action`` does to a holding on its ex/record date.

    Splits and bonuses keep the total cost, so the average price is divided by the ratio.
    Entitlements are whole shares; without ``fraction_price`` a fraction is dropped and its
    cost stays with the whole shares, with it the fraction is paid in cash and takes its
    pro-rata share of the cost out (the difference is realised).
    """
    if isinstance(action, Dividend):
        if action.per_share < 0:
            raise ValueError("a dividend is not negative")
        return ActionEffect(position, money(position.quantity * action.per_share), ZERO, ZERO)
    if (isinstance(action, Split) and (action.old <= 0 or action.new <= 0)) or (
        isinstance(action, Bonus) and (action.held <= 0 or action.bonus < 0)
    ):
        raise ValueError("a ratio's terms are positive")
    exact = position.quantity * action.ratio
    whole = sign(exact) * abs(exact).quantize(ONE, rounding=ROUND_DOWN)
    fraction = tidy(abs(exact - whole))
    if whole == 0 or (fraction and fraction_price is not None):
        return _in_lieu(position, exact, fraction, fraction_price or ZERO)
    return ActionEffect(Position(whole, position.cost, position.realised_pnl), ZERO, fraction, ZERO)


def _in_lieu(position: Position, exact: Decimal, fraction: Decimal, price: Decimal) -> ActionEffect:
    whole = exact - sign(exact) * fraction
    removed = position.cost if whole == 0 else money(position.cost * fraction / abs(exact))
    cash = money(sign(exact) * fraction * price)
    realised = money(cash - removed)
    return ActionEffect(
        Position(whole, position.cost - removed, position.realised_pnl + realised),
        cash,
        fraction,
        realised,
    )


def settlement_day(
    trade_day: dt.date, is_trading_day: Callable[[dt.date], bool], days: int = 1
) -> dt.date:
    """The ``days``-th trading day after ``trade_day`` (T+1 for Indian delivery)."""
    if days < 0:
        raise ValueError("settlement is not before the trade")
    day, counted = trade_day, 0
    for _ in range(366):
        if counted == days:
            return day
        day += dt.timedelta(days=1)
        counted += is_trading_day(day)
    raise ValueError(f"no {days} trading days within a year after {trade_day.isoformat()}")


def unsettled_quantity(
    buys: Iterable[tuple[dt.date, Decimal]],
    today: dt.date,
    is_trading_day: Callable[[dt.date], bool],
    days: int = 1,
) -> Decimal:
    """Of delivery buys ``(trade day, quantity)``, what has not settled into holdings yet."""
    return sum((q for day, q in buys if settlement_day(day, is_trading_day, days) > today), ZERO)
