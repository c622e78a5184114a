"""Margin: what open positions block, with hedges recognised.  A percentage model, not SPAN.

Each leg alone (its *naked* requirement, :class:`MarginRates` percentages):

* a future: ``(futures_pct + exposure_pct)`` of its notional ``|q| x price x multiplier``;
* a short option: its premium value plus ``short_option_pct`` of the underlying's notional
  less the amount the option is out of the money, at least ``short_option_floor_pct`` of the
  notional (of the underlying's for a call, of the strike's for a put) — the shape of the
  CBOE/FINRA naked-option rule;
* a long option: nothing (its premium is paid in cash on the fill);
* an intraday (``mis``) equity short: ``intraday_pct`` of its notional; a long: nothing.

Hedges.  Options and futures on the same underlying and the same expiry form a *group*.  At
expiry the group's value is piecewise linear in the underlying's price ``S``:
``V(S) = sum of q x multiplier x payoff`` (a call's ``max(S - K, 0)``, a put's
``max(K - S, 0)``, a future's ``S - F`` from its current price ``F``), exact at ``S = 0`` and
at the strikes, with a known slope past the last strike.  Its *worst payout* is
``max(0, -min V)`` — unbounded when the slope past the last strike is negative (more calls
or futures short than long).  The group blocks the smaller of the worst payout and the sum
of its legs' naked requirements, so a hedged book never blocks more than its naked legs.

Why the worst payout: option premiums move through cash on the fill (a seller receives the
premium, a buyer pays it), so blocking the worst payout leaves the net effect of opening a
defined-risk strategy on buying power equal to its maximum loss: a credit spread blocks its
width and receives the credit, net ``width - credit``; an iron condor blocks its wider
wing's width, net of the credit — exactly ``analytics.strategies`` ``extremes(...).max_loss``
at those premiums.  This is SPAN's "risk minus net option value" with the scan replaced by
the exact expiry payoff.

Limits (documented in ``docs/trading-charges-margin.md``): no volatility or time scan, so a
hedged book's requirement ignores moves of the premiums before expiry; legs of different
expiries (calendars) or underlyings are not offset; equities are not netted against F&O
(a covered call on held shares blocks the call's naked requirement); a group blocks the
smaller of two whole-group figures rather than the best split of its legs into hedged and
naked parts.  All amounts are rounded to 4 places (the ledger's precision).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from decimal import Decimal

from quantdesk.trading.engine.checks import CheckFailure
from quantdesk.trading.engine.positions import money

ZERO = Decimal(0)
HUNDRED = Decimal(100)


@dataclass(frozen=True, slots=True)
class MarginRates:
    """Percentages (of notional) of the model; the defaults match the trading settings."""

    futures_pct: Decimal = Decimal(9)
    exposure_pct: Decimal = Decimal(3)
    short_option_pct: Decimal = Decimal(15)
    short_option_floor_pct: Decimal = Decimal(5)
    intraday_pct: Decimal = Decimal(20)
    recognise_hedges: bool = True

    def __post_init__(self) -> None:
        for name in ("futures_pct", "exposure_pct", "short_option_pct", "intraday_pct"):
            if not ZERO <= getattr(self, name) <= HUNDRED:
                raise ValueError(f"{name} is a percentage between 0 and 100")
        if not ZERO <= self.short_option_floor_pct <= self.short_option_pct:
            raise ValueError("the short-option floor is between 0 and short_option_pct")


@dataclass(frozen=True, slots=True)
class MarginLeg:
    """A position (or an order's change to one) as margin sees it.

    ``quantity`` is signed units (positive long), ``price`` the mark (a future's price, an
    option's premium, a share's price); options need ``strike``, ``option_type`` and
    ``underlying_price``.  Legs group by ``(underlying or key, expiry)``.
    """

    key: str
    kind: str  # future, option, equity (an etf is an equity)
    quantity: Decimal
    price: Decimal
    multiplier: Decimal = Decimal(1)
    underlying: str | None = None
    underlying_price: Decimal | None = None
    strike: Decimal | None = None
    option_type: str | None = None  # call, put
    expiry: dt.date | None = None
    product: str = "nrml"

    def __post_init__(self) -> None:
        if self.kind == "etf":
            object.__setattr__(self, "kind", "equity")
        if self.kind not in ("future", "option", "equity"):
            raise ValueError(f"no margin model for a {self.kind}")
        if self.price < 0 or self.multiplier <= 0:
            raise ValueError("price is not negative and the multiplier is positive")
        if self.kind == "option" and (
            self.strike is None
            or self.option_type not in ("call", "put")
            or self.underlying_price is None
            or self.strike <= 0
            or self.underlying_price < 0
        ):
            raise ValueError(f"option {self.key} needs strike, option_type, underlying_price")

    @property
    def units(self) -> Decimal:
        """Signed units of the underlying: quantity x multiplier."""
        return self.quantity * self.multiplier

    @property
    def group(self) -> tuple[str, dt.date | None]:
        return (self.underlying or self.key, self.expiry)

    def payoff(self, spot: Decimal) -> Decimal:
        """Value per unit at expiry at ``spot`` (a future: its change from ``price``)."""
        if self.kind == "future":
            return spot - self.price
        strike = _known(self.strike)
        if self.option_type == "call":
            return max(spot - strike, ZERO)
        return max(strike - spot, ZERO)


def _known(value: Decimal | None) -> Decimal:
    if value is None:  # options are checked when built; this keeps mypy honest
        raise ValueError("an option needs its strike and underlying price")
    return value


def naked_requirement(leg: MarginLeg, rates: MarginRates) -> Decimal:
    """What the leg blocks on its own (see the module docstring)."""
    size = abs(leg.units)
    if leg.quantity == 0:
        return ZERO
    if leg.kind == "future":
        return money(size * leg.price * (rates.futures_pct + rates.exposure_pct) / HUNDRED)
    if leg.kind == "equity":
        if leg.quantity < 0:
            return money(size * leg.price * rates.intraday_pct / HUNDRED)
        return ZERO
    if leg.quantity > 0:  # long option
        return ZERO
    spot, strike = _known(leg.underlying_price), _known(leg.strike)
    if leg.option_type == "call":
        otm, floor_base = max(strike - spot, ZERO), spot
    else:
        otm, floor_base = max(spot - strike, ZERO), strike
    risk = max(
        spot * rates.short_option_pct / HUNDRED - otm,
        floor_base * rates.short_option_floor_pct / HUNDRED,
    )
    return money(size * (leg.price + risk))


def worst_payout(legs: Sequence[MarginLeg]) -> Decimal | None:
    """``max(0, -min V(S))`` over ``S >= 0`` of the legs' value at expiry; None if unbounded.

    Only futures and options count (equities are not grouped).  ``V`` is piecewise linear
    with kinks at the strikes, so its minimum is at ``S = 0``, at a strike, or at infinity.
    """
    active = [leg for leg in legs if leg.kind in ("future", "option") and leg.quantity]
    slope_past_strikes = sum(
        (leg.units for leg in active if leg.kind == "future" or leg.option_type == "call"), ZERO
    )
    if slope_past_strikes < 0:
        return None
    nodes = {ZERO} | {leg.strike for leg in active if leg.strike is not None}
    lowest = min(sum((leg.units * leg.payoff(s) for leg in active), ZERO) for s in nodes)
    return money(max(-lowest, ZERO))


@dataclass(frozen=True, slots=True)
class LegMargin:
    key: str
    naked: Decimal  # what it would block alone
    required: Decimal  # its share of its group's requirement (pro rata to naked)


@dataclass(frozen=True, slots=True)
class GroupMargin:
    underlying: str
    expiry: dt.date | None
    keys: tuple[str, ...]
    naked: Decimal  # the sum of its legs' naked requirements
    worst_payout: Decimal | None  # None: unbounded (or not computed: no hedge recognition)
    required: Decimal

    @property
    def hedged(self) -> bool:
        return self.required < self.naked


@dataclass(frozen=True, slots=True)
class MarginReport:
    legs: tuple[LegMargin, ...]
    groups: tuple[GroupMargin, ...]
    required: Decimal

    def available(self, funds: Decimal) -> Decimal:
        """What is left of ``funds`` (cash plus blocked margin) after the requirement."""
        return money(funds - self.required)

    def for_key(self, key: str) -> LegMargin | None:
        return next((leg for leg in self.legs if leg.key == key), None)


def _allocate(total: Decimal, naked: Sequence[Decimal]) -> list[Decimal]:
    """``total`` split pro rata to ``naked``, rounded, the last share taking the remainder."""
    weight = sum(naked, ZERO)
    if weight == 0:
        return [ZERO for _ in naked]
    shares = [money(total * n / weight) for n in naked]
    last = max(i for i, n in enumerate(naked) if n > 0)
    shares[last] = money(total - sum(shares, ZERO) + shares[last])
    return shares


def margin_report(legs: Iterable[MarginLeg], rates: MarginRates | None = None) -> MarginReport:
    """Per-leg and per-group requirements and the total for a book of positions."""
    rates = rates or MarginRates()
    groups: dict[tuple[str, dt.date | None, bool], list[MarginLeg]] = {}
    for leg in legs:
        derivative = leg.kind != "equity"
        # Equities are never grouped: each is its own group.
        name = leg.group[0] if derivative else leg.key
        groups.setdefault((name, leg.expiry if derivative else None, derivative), []).append(leg)
    out_legs: list[LegMargin] = []
    out_groups: list[GroupMargin] = []
    for (name, expiry, derivative), members in groups.items():
        naked = [naked_requirement(leg, rates) for leg in members]
        naked_sum = sum(naked, ZERO)
        payout = worst_payout(members) if derivative and rates.recognise_hedges else None
        required = naked_sum if payout is None else min(naked_sum, payout)
        out_groups.append(
            GroupMargin(name, expiry, tuple(m.key for m in members), naked_sum, payout, required)
        )
        shares = _allocate(required, naked)
        out_legs += [LegMargin(m.key, n, s) for m, n, s in zip(members, naked, shares, strict=True)]
    total = money(sum((g.required for g in out_groups), ZERO))
    return MarginReport(tuple(out_legs), tuple(out_groups), total)


def with_order(book: Sequence[MarginLeg], order: MarginLeg) -> list[MarginLeg]:
    """The book after ``order`` (a signed change of one instrument) fills at its price."""
    out: list[MarginLeg] = []
    merged = False
    for leg in book:
        if leg.key == order.key:
            out.append(replace(order, quantity=leg.quantity + order.quantity))
            merged = True
        else:
            out.append(leg)
    if not merged:
        out.append(order)
    return [leg for leg in out if leg.quantity != 0]


def order_cash(order: MarginLeg) -> Decimal:
    """Cash the order moves on its fill: options pay (buy) or receive (sell) the premium,
    equity buys pay their value, futures and equity sells move nothing here (an intraday
    short's proceeds stay blocked with its margin).  Positive: paid."""
    value = order.quantity * order.price * order.multiplier
    if order.kind == "option":
        return money(value)
    if order.kind == "equity" and order.quantity > 0:
        return money(value)
    return ZERO


@dataclass(frozen=True, slots=True)
class MarginCheck:
    """The numbers of a pre-trade margin check (all decimal, for the problem response)."""

    margin_before: Decimal
    margin_after: Decimal
    premium: Decimal  # cash the order pays (+) or receives (-) at its price
    charges: Decimal  # the order's estimated charges
    required: Decimal  # margin_after - margin_before + premium + charges
    available: Decimal  # free cash

    @property
    def shortfall(self) -> Decimal:
        return max(self.required - self.available, ZERO)

    @property
    def ok(self) -> bool:
        return self.required <= self.available

    def numbers(self) -> dict[str, str]:
        """The figures as exact decimal strings (problem extensions)."""
        return {
            "required": f"{self.required:f}",
            "available": f"{self.available:f}",
            "shortfall": f"{self.shortfall:f}",
            "margin_before": f"{self.margin_before:f}",
            "margin_after": f"{self.margin_after:f}",
            "premium": f"{self.premium:f}",
            "charges": f"{self.charges:f}",
        }

    def failure(self, currency: str) -> CheckFailure | None:
        if self.ok:
            return None
        return CheckFailure(
            "insufficient-margin",
            "Insufficient margin",
            f"this order needs {self.required:f} {currency} (margin {self.margin_before:f} -> "
            f"{self.margin_after:f}, premium {self.premium:f}, charges {self.charges:f}); "
            f"{self.available:f} is available, {self.shortfall:f} short",
        )


def check_order(
    book: Sequence[MarginLeg],
    order: MarginLeg,
    *,
    available: Decimal,
    charges: Decimal = ZERO,
    rates: MarginRates | None = None,
) -> MarginCheck:
    """Would ``order`` exceed the free cash ``available``?  A hedging order can need less
    than nothing (it releases margin); ``required`` is then negative."""
    rates = rates or MarginRates()
    before = margin_report(book, rates).required
    after = margin_report(with_order(book, order), rates).required
    premium = order_cash(order)
    required = money(after - before + premium + charges)
    return MarginCheck(before, after, premium, charges, required, available)
