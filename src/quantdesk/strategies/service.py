"""Multi-leg strategy analysis as use cases: legs or a template in, payoff curves,
breakevens, max P/L, POP, net Greeks and the payoff diagram out.

Legs given by instrument key are first spelled out from the instrument master
(:func:`resolve_instruments`, the only step that reads the database); the analysis itself is
pure and runs off the event loop.
"""

from __future__ import annotations

import datetime as dt
import inspect
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Literal

from quantdesk.analytics import strategies
from quantdesk.analytics.daycount import DAYS_PER_YEAR
from quantdesk.analytics.strategies import templates
from quantdesk.analytics.strategies.legs import FutureLeg, Leg, OptionLeg, UnderlyingLeg
from quantdesk.marketdata.domain import Instrument, InstrumentType, OptionType, make_key, parse_key
from quantdesk.marketdata.instruments.service import InstrumentService, to_domain
from quantdesk.platform.db import Database
from quantdesk.platform.decimals import at_places, decimal_from_float, places_of, quantum
from quantdesk.platform.exceptions import InvalidInput, NotFound
from quantdesk.platform.json_columns import model_input
from quantdesk.strategies.payoff_chart import payoff_svg
from quantdesk.strategies.schemas import (
    TEMPLATE_NAMES,
    ExplicitLeg,
    FutureLegIn,
    InstrumentLegIn,
    LegOut,
    NetGreeksOut,
    OptionLegIn,
    StrategyRequest,
    StrategyResponse,
    TemplateIn,
    UnderlyingLegIn,
)

TEMPLATES: dict[str, Callable[..., tuple[Leg, ...]]] = {
    name: getattr(templates, name) for name in TEMPLATE_NAMES
}


def strike_names(name: str) -> list[str]:
    """The template's strike parameters: its positional parameters, in order."""
    parameters = inspect.signature(TEMPLATES[name]).parameters.values()
    return [p.name for p in parameters if p.kind is inspect.Parameter.POSITIONAL_OR_KEYWORD]


def _years(expiry: dt.date, valuation: dt.date, what: str) -> float:
    if expiry <= valuation:
        raise InvalidInput(f"{what} {expiry} must be after the valuation date {valuation}")
    return (expiry - valuation).days / DAYS_PER_YEAR


def _leg(leg: ExplicitLeg, valuation: dt.date, index: int) -> Leg:
    common = {
        "quantity": model_input(leg.quantity),
        "entry_price": model_input(leg.entry_price),
        "lot_size": model_input(leg.lot_size),
    }
    if isinstance(leg, OptionLegIn):
        expiry = _years(leg.expiry, valuation, f"legs[{index}].expiry")
        return OptionLeg(leg.kind, model_input(leg.strike), expiry, leg.iv, **common)
    if isinstance(leg, UnderlyingLegIn):
        return UnderlyingLeg(**common)
    return FutureLeg(_years(leg.expiry, valuation, f"legs[{index}].expiry"), **common)


def _template_legs(
    spec: TemplateIn, request: StrategyRequest, valuation: dt.date
) -> tuple[Leg, ...]:
    wanted = strike_names(spec.name)
    given = set(spec.strikes)
    if given != set(wanted):
        raise InvalidInput(
            f"template {spec.name} takes strikes {wanted}, got {sorted(given)}",
            field="template.strikes",
        )
    market = templates.Market(model_input(request.spot), spec.iv, request.r, request.q)
    kwargs: dict[str, Any] = {
        "market": market,
        "lots": model_input(spec.lots),
        "lot_size": model_input(spec.lot_size),
        "entry_prices": None
        if spec.entry_prices is None
        else [model_input(p) for p in spec.entry_prices],
    }
    if spec.name.endswith("_calendar"):
        if spec.near_expiry is None or spec.far_expiry is None:
            raise InvalidInput("calendars need near_expiry and far_expiry", field="template")
        kwargs["near_expiry"] = _years(spec.near_expiry, valuation, "near_expiry")
        kwargs["far_expiry"] = _years(spec.far_expiry, valuation, "far_expiry")
    else:
        if spec.expiry is None:
            raise InvalidInput(f"template {spec.name} needs an expiry", field="template.expiry")
        kwargs["expiry"] = _years(spec.expiry, valuation, "expiry")
    strikes = [model_input(spec.strikes[name]) for name in wanted]
    return TEMPLATES[spec.name](*strikes, **kwargs)


# --- legs by instrument key ---------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class SpelledOut:
    """A request whose legs are all spelled out, and what the master said about them."""

    request: StrategyRequest
    instruments: tuple[str | None, ...]  # per leg: the key it was given by, if any
    tick_places: int = 0  # the most decimals of those instruments' tick sizes

    @classmethod
    def of(cls, request: StrategyRequest) -> SpelledOut:
        """``request`` as it is; it must not name instruments (they need the master)."""
        legs = request.legs or []
        if any(isinstance(leg, InstrumentLegIn) for leg in legs):
            raise InvalidInput("legs by instrument need the instrument master to resolve")
        return cls(request, (None,) * len(legs))

    def explicit_legs(self) -> list[ExplicitLeg]:
        return [leg for leg in self.request.legs or [] if not isinstance(leg, InstrumentLegIn)]


def names_instruments(request: StrategyRequest) -> bool:
    return any(isinstance(leg, InstrumentLegIn) for leg in request.legs or [])


def _canonical_key(key: str, field: str) -> str:
    try:
        return make_key(*parse_key(key))
    except ValueError as exc:
        raise InvalidInput(f"{field}: {exc}", field=field) from None


def _listed_leg(leg: InstrumentLegIn, listed: Instrument, field: str) -> OptionLegIn | FutureLegIn:
    """The option or future leg the master describes, at the request's size and price."""
    # Units per lot: the exchange lot times the contract multiplier, as the chain values GEX.
    common: dict[str, Any] = {
        "quantity": leg.quantity,
        "entry_price": leg.entry_price,
        "lot_size": listed.lot_size * listed.multiplier,
    }
    if listed.type is InstrumentType.OPTION:
        if listed.strike is None or listed.expiry is None or listed.option_type is None:
            raise InvalidInput(f"{field}: {listed.key} has no strike, expiry or right in the "
                               "instrument master", field=field)  # fmt: skip
        if leg.iv is None:
            raise InvalidInput(
                f"{field}: {listed.key} is an option; give its implied volatility as `iv`",
                field=field.replace("instrument", "iv"),
            )
        kind: Literal["call", "put"] = "call" if listed.option_type is OptionType.CALL else "put"
        # Built without re-validation: the master's values passed its own checks on import.
        return OptionLegIn.model_construct(
            type="option", kind=kind, strike=listed.strike, expiry=listed.expiry, iv=leg.iv,
            **common,
        )  # fmt: skip
    if listed.type is InstrumentType.FUTURE and listed.expiry is not None:
        if leg.iv is not None:
            raise InvalidInput(f"{field}: {listed.key} is a future; `iv` is for options",
                               field=field.replace("instrument", "iv"))  # fmt: skip
        return FutureLegIn.model_construct(type="future", expiry=listed.expiry, **common)
    raise InvalidInput(
        f"{field}: {listed.key} is {listed.type.value} {listed.name!r}, not an option or a "
        "future; give a position in the underlying as a leg of type `underlying`",
        field=field,
    )


async def resolve_instruments(database: Database, request: StrategyRequest) -> SpelledOut:
    """Spell out the legs given by instrument key from the instrument master.

    Unknown keys answer 404 (naming the leg and the key); keys of anything but a listed option
    or future, an option without ``iv`` and legs on different underlyings answer 422.
    Requests without such legs do not touch the database.
    """
    if not names_instruments(request):
        return SpelledOut.of(request)
    legs = request.legs or []
    wanted = {
        i: _canonical_key(leg.instrument, f"legs[{i}].instrument")
        for i, leg in enumerate(legs)
        if isinstance(leg, InstrumentLegIn)
    }
    async with database.session() as db:
        rows = await InstrumentService(db).get_rows(sorted(set(wanted.values())))
        found = {key: to_domain(row) for key, row in rows.items()}
    spelled: list[ExplicitLeg] = []
    instruments: list[str | None] = []
    for i, leg in enumerate(legs):
        if not isinstance(leg, InstrumentLegIn):
            spelled.append(leg)
            instruments.append(None)
            continue
        key, field = wanted[i], f"legs[{i}].instrument"
        if key not in found:
            raise NotFound(f"{field}: no instrument {key}", field=field, instrument=key)
        spelled.append(_listed_leg(leg, found[key], field))
        instruments.append(key)
    underlyings = sorted({found[key].underlying or key for key in wanted.values()})
    if len(underlyings) > 1:
        raise InvalidInput(
            f"legs name instruments on different underlyings ({', '.join(underlyings)}); "
            "a strategy is analysed against one spot",
            field="legs",
        )
    ticks = [places_of(found[key].tick_size) for key in wanted.values()]
    return SpelledOut(request.model_copy(update={"legs": spelled}), tuple(instruments), max(ticks))


# --- the analysis ------------------------------------------------------------------------------
MIN_PLACES, MAX_PLACES = 2, 8  # money shows cents at least; requests accept 8 decimals


def price_places(request: StrategyRequest, tick_places: int = 0) -> int:
    """The request's precision: the most decimals any of its prices is written with, and at
    least the tick precision of the instruments its legs name."""
    prices: list[Decimal] = [request.spot]
    if request.template is not None:
        prices += [*request.template.strikes.values(), *(request.template.entry_prices or [])]
    for leg in request.legs or []:
        prices.append(leg.entry_price)
        if isinstance(leg, OptionLegIn):
            prices.append(leg.strike)
    return min(MAX_PLACES, max(MIN_PLACES, tick_places, *(places_of(p) for p in prices)))


def _decimal(value: float, places: int) -> Decimal:
    number = decimal_from_float(value, places)
    if number is None:
        raise InvalidInput(f"the analysis produced a non-finite value ({value})")
    return number


def _money(value: float, places: int) -> Decimal | None:
    """A bound that may be unlimited (inf): null on the wire, with the flag set."""
    return decimal_from_float(value, places)


def _column(values: Sequence[float], places: int) -> list[Decimal]:
    return [_decimal(v, places) for v in values]


def _leg_out(
    leg: Leg,
    given: ExplicitLeg | None,
    instrument: str | None,
    lots: Decimal,
    lot_size: Decimal,
    places: int,
) -> LegOut:
    """A leg as answered: the request's own decimals where it gave them (exact), else the
    template's per-lot multiple of ``lots`` at the precision ``lots`` was written with."""
    if given is not None:
        quantity, size, entry = given.quantity, given.lot_size, at_places(given.entry_price, places)
    else:
        quantity = Decimal(repr(leg.quantity)).quantize(quantum(places_of(lots)))
        size, entry = lot_size, _decimal(leg.entry_price, places)
    common = {
        "quantity": quantity,
        "lot_size": size,
        "entry_price": entry,
        "instrument": instrument,
    }
    if isinstance(leg, OptionLeg):
        strike = (
            at_places(given.strike, places)
            if isinstance(given, OptionLegIn)
            else _decimal(leg.strike, places)
        )
        return LegOut(
            type="option", kind=leg.kind, strike=strike, expiry_years=leg.expiry, iv=leg.iv,
            **common,
        )  # fmt: skip
    if isinstance(leg, FutureLeg):
        return LegOut(type="future", expiry_years=leg.expiry, **common)
    return LegOut(type="underlying", **common)


def run_analysis(
    spelled: SpelledOut,
) -> tuple[dt.date, tuple[Leg, ...], strategies.StrategyAnalysis]:
    """The request's legs (built from a template or given) and their analysis."""
    request = spelled.request
    valuation = request.valuation_date or dt.datetime.now(dt.UTC).date()
    try:
        if request.template is not None:
            legs = _template_legs(request.template, request, valuation)
        else:
            given = spelled.explicit_legs()
            assert len(given) == len(request.legs or ())  # noqa: S101 - spelled out
            legs = tuple(_leg(leg, valuation, i) for i, leg in enumerate(given))
        horizon = (
            None
            if request.horizon_date is None
            else _years(request.horizon_date, valuation, "horizon_date")
        )
        result = strategies.analyze(
            legs,
            model_input(request.spot),
            r=request.r,
            q=request.q,
            pop_vol=request.pop_vol,
            grid_points=request.grid_points,
            horizon=horizon,
        )
    except ValueError as exc:
        # The pure core validates legs and horizons with ValueError; that is bad input here.
        raise InvalidInput(str(exc)) from None
    return valuation, legs, result


def analyze_request(request: StrategyRequest | SpelledOut) -> StrategyResponse:
    spelled = request if isinstance(request, SpelledOut) else SpelledOut.of(request)
    request = spelled.request
    valuation, legs, result = run_analysis(spelled)
    greeks = result.net_greeks
    places = price_places(request, spelled.tick_places)
    spec = request.template
    given: list[ExplicitLeg | None] = (
        list(spelled.explicit_legs()) if request.legs else [None] * len(legs)
    )
    keys = spelled.instruments if request.legs else (None,) * len(legs)
    lots = spec.lots if spec else Decimal(1)
    lot_size = spec.lot_size if spec else Decimal(1)
    return StrategyResponse(
        spot=at_places(request.spot, places),
        valuation_date=valuation,
        expiry_years=result.expiry,
        legs=[
            _leg_out(leg, g, key, lots, lot_size, places)
            for leg, g, key in zip(legs, given, keys, strict=True)
        ],
        grid=_column(result.grid, places),
        expiry_pnl=_column(result.expiry_pnl, places),
        today_pnl=_column(result.today_pnl, places),
        horizon_pnl=None if result.horizon_pnl is None else _column(result.horizon_pnl, places),
        breakevens=_column(result.breakevens, places),
        max_profit=_money(result.max_profit, places),
        max_loss=_money(result.max_loss, places),
        unlimited_profit=result.unlimited_profit,
        unlimited_loss=result.unlimited_loss,
        probability_of_profit=result.probability_of_profit,
        pop_vol=result.pop_vol,
        net_premium=_decimal(result.net_premium, places),
        net_greeks=NetGreeksOut(
            delta=greeks.delta,
            gamma=greeks.gamma,
            vega=greeks.vega,
            theta=greeks.theta,
            theta_per_day=greeks.theta / DAYS_PER_YEAR,
            rho=greeks.rho,
            vanna=greeks.vanna,
            volga=greeks.volga,
            charm=greeks.charm,
        ),
    )


def payoff_chart_svg(request: StrategyRequest | SpelledOut) -> str:
    """The payoff diagram of ``request``: P/L at expiry and today, spot and breakevens."""
    spelled = request if isinstance(request, SpelledOut) else SpelledOut.of(request)
    request = spelled.request
    _, _, result = run_analysis(spelled)
    title = request.template.name.replace("_", " ") if request.template else "strategy"
    return payoff_svg(
        result.grid,
        result.expiry_pnl,
        result.today_pnl,
        result.breakevens,
        result.spot,
        f"{title} — spot {request.spot}, first expiry in {result.expiry * DAYS_PER_YEAR:.0f} days",
    )
