"""Multi-leg strategy analysis as use cases: legs or a template in, payoff curves,
breakevens, max P/L, POP, net Greeks and the payoff diagram out."""

from __future__ import annotations

import datetime as dt
import inspect
from collections.abc import Callable, Sequence
from decimal import Decimal
from typing import Any

from quantdesk.analytics import strategies
from quantdesk.analytics.daycount import DAYS_PER_YEAR
from quantdesk.analytics.strategies import templates
from quantdesk.analytics.strategies.legs import FutureLeg, Leg, OptionLeg, UnderlyingLeg
from quantdesk.platform.decimals import at_places, decimal_from_float, places_of, quantum
from quantdesk.platform.exceptions import InvalidInput
from quantdesk.platform.json_columns import model_input
from quantdesk.strategies.payoff_chart import payoff_svg
from quantdesk.strategies.schemas import (
    TEMPLATE_NAMES,
    LegIn,
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


def _leg(leg: LegIn, valuation: dt.date, index: int) -> Leg:
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


MIN_PLACES, MAX_PLACES = 2, 8  # money shows cents at least; requests accept 8 decimals


def price_places(request: StrategyRequest) -> int:
    """The request's precision: the most decimals any of its prices is written with."""
    prices: list[Decimal] = [request.spot]
    if request.template is not None:
        prices += [*request.template.strikes.values(), *(request.template.entry_prices or [])]
    for leg in request.legs or []:
        prices.append(leg.entry_price)
        if isinstance(leg, OptionLegIn):
            prices.append(leg.strike)
    return min(MAX_PLACES, max(MIN_PLACES, *(places_of(p) for p in prices)))


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
    leg: Leg, given: LegIn | None, lots: Decimal, lot_size: Decimal, places: int
) -> LegOut:
    """A leg as answered: the request's own decimals where it gave them (exact), else the
    template's per-lot multiple of ``lots`` at the precision ``lots`` was written with."""
    if given is not None:
        quantity, size, entry = given.quantity, given.lot_size, at_places(given.entry_price, places)
    else:
        quantity = Decimal(repr(leg.quantity)).quantize(quantum(places_of(lots)))
        size, entry = lot_size, _decimal(leg.entry_price, places)
    common = {"quantity": quantity, "lot_size": size, "entry_price": entry}
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
    request: StrategyRequest,
) -> tuple[dt.date, tuple[Leg, ...], strategies.StrategyAnalysis]:
    """The request's legs (built from a template or given) and their analysis."""
    valuation = request.valuation_date or dt.datetime.now(dt.UTC).date()
    try:
        if request.template is not None:
            legs = _template_legs(request.template, request, valuation)
        else:
            assert request.legs is not None  # noqa: S101 - checked by the schema
            legs = tuple(_leg(leg, valuation, i) for i, leg in enumerate(request.legs))
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


def analyze_request(request: StrategyRequest) -> StrategyResponse:
    valuation, legs, result = run_analysis(request)
    greeks = result.net_greeks
    places = price_places(request)
    spec = request.template
    given: list[LegIn | None] = list(request.legs) if request.legs else [None] * len(legs)
    lots = spec.lots if spec else Decimal(1)
    lot_size = spec.lot_size if spec else Decimal(1)
    return StrategyResponse(
        spot=at_places(request.spot, places),
        valuation_date=valuation,
        expiry_years=result.expiry,
        legs=[_leg_out(leg, g, lots, lot_size, places) for leg, g in zip(legs, given, strict=True)],
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


def payoff_chart_svg(request: StrategyRequest) -> str:
    """The payoff diagram of ``request``: P/L at expiry and today, spot and breakevens."""
    _, _, result = run_analysis(request)
    title = request.template.name.replace("_", " ") if request.template else "strategy"
    return payoff_svg(
        result.grid,
        result.expiry_pnl,
        result.today_pnl,
        result.breakevens,
        result.spot,
        f"{title} — spot {request.spot}, first expiry in {result.expiry * DAYS_PER_YEAR:.0f} days",
    )
