"""Use cases of ``/api/v1/risk`` for option books: the scenario grid by full revaluation, its
Greeks approximation, the worst case, the book's Monte Carlo VaR and the heat map.

A book comes from a request's own legs (:func:`build_book`) or from a paper account's or a
portfolio's positions (:mod:`quantdesk.risk.sources`); either way the numerics are
:func:`quantdesk.analytics.risk.scenario_grid` and
:func:`quantdesk.analytics.risk.book_monte_carlo_var`.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal

import numpy as np

from quantdesk.analytics import risk
from quantdesk.analytics.daycount import DAYS_PER_YEAR
from quantdesk.platform.exceptions import InvalidInput
from quantdesk.risk import charts, schemas
from quantdesk.risk.service import MAX_PRICES, FloatArray, money


# --- option books -------------------------------------------------------------------------
def _years(expiry: dt.date | None, valuation: dt.date, field: str) -> float:
    if expiry is None:
        raise InvalidInput(f"{field}: options and futures need an `expiry`", field=field)
    days = (expiry - valuation).days
    if days <= 0:
        raise InvalidInput(f"{field}: the {expiry} expiry is not after {valuation}", field=field)
    return days / DAYS_PER_YEAR


def book_legs(request: schemas.ScenarioRequest, today: dt.date) -> list[risk.BookLeg]:
    valuation = request.valuation_date or today
    legs = []
    for i, leg in enumerate(request.legs):
        field = f"legs[{i}]"
        units = float(leg.quantity * leg.lot_size)
        if leg.underlying not in request.spots:
            raise InvalidInput(f"{field}: no spot for {leg.underlying}", field="spots")
        if leg.kind in ("call", "put"):
            if leg.strike is None or leg.iv is None:
                raise InvalidInput(f"{field}: an option needs `strike` and `iv`", field=field)
            legs.append(
                risk.BookLeg(
                    leg.underlying, leg.kind, units, strike=float(leg.strike),
                    expiry=_years(leg.expiry, valuation, field), iv=leg.iv,
                )
            )  # fmt: skip
        elif leg.kind == "future":
            expiry = _years(leg.expiry, valuation, field)
            legs.append(risk.BookLeg(leg.underlying, "future", units, expiry=expiry))
        else:
            legs.append(risk.BookLeg(leg.underlying, "underlying", units))
    return legs


@dataclass(frozen=True, slots=True, eq=False)
class Book:
    book: risk.OptionBook
    skipped: list[str]
    correlation: list[list[float]] | None = None
    """Of the underlyings' daily returns (stored bars), for the Monte Carlo when the request
    gives none; ``None``: independent underlyings."""


def build_book(request: schemas.ScenarioRequest, today: dt.date) -> Book:
    try:
        legs = book_legs(request, today)
        book = risk.OptionBook.of(
            legs,
            {k: float(v) for k, v in request.spots.items()},
            rate=request.rate,
            dividend_yield=dict(request.dividend_yields or {}),
        )
    except ValueError as exc:
        raise InvalidInput(str(exc), field="legs") from None
    return Book(book, [])


def _grid(g: schemas.GridIn, book: risk.OptionBook) -> risk.ScenarioGrid:
    days = sorted(set(g.days)) or [0.0]
    prices = len(days) * g.underlying_points * g.iv_points * int(book.is_option.sum())
    if prices > MAX_PRICES:
        raise InvalidInput(
            f"the grid needs {prices:,} option prices; at most {MAX_PRICES:,} (fewer points, "
            "horizons or legs)",
            field="grid",
        )
    spot_moves = np.linspace(-g.underlying_range, g.underlying_range, g.underlying_points)
    if g.underlying_points == 1:
        spot_moves = np.zeros(1)
    iv_changes = np.linspace(-g.iv_range, g.iv_range, g.iv_points) if g.iv_points > 1 else [0.0]
    return risk.scenario_grid(book, spot_moves, iv_changes, days)


def _mc(
    wanted: schemas.BookMonteCarloIn | None,
    book: risk.OptionBook,
    correlation: list[list[float]] | None = None,
) -> schemas.BookVaROut | None:
    if wanted is None:
        return None
    given = wanted.volatilities or {}
    vols = []
    for i, name in enumerate(book.underlyings):
        if name in given:
            vols.append(given[name])
            continue
        ivs = book.iv[(book.index == i) & book.is_option]
        if ivs.size == 0:
            raise InvalidInput(
                f"monte_carlo: {name} has no option to take a volatility from; give "
                f"`monte_carlo.volatilities.{name}`",
                field="monte_carlo.volatilities",
            )
        vols.append(float(ivs.mean()))
    paths = wanted.simulations * book.units.size
    if paths > MAX_PRICES:
        raise InvalidInput(
            f"monte_carlo: simulations x legs is {paths:,}; at most {MAX_PRICES:,}",
            field="monte_carlo.simulations",
        )
    try:
        found = risk.book_monte_carlo_var(
            book, vols, wanted.correlation or correlation, wanted.confidence, days=wanted.days,
            simulations=wanted.simulations, seed=wanted.seed,
        )  # fmt: skip
    except ValueError as exc:
        raise InvalidInput(f"monte_carlo: {exc}", field="monte_carlo") from None
    return schemas.BookVaROut(
        confidence=wanted.confidence,
        days=wanted.days,
        var=money(found.var),
        cvar=money(found.cvar),
        expected_pnl=money(found.expected_pnl),
        worst_pnl=money(found.worst_pnl),
        simulations=found.simulations,
        volatilities=dict(zip(book.underlyings, vols, strict=True)),
    )


def _where(found: tuple[float, float, float, float]) -> schemas.WorstOut:
    pnl, move, iv_change, days = found
    return schemas.WorstOut(pnl=money(pnl), underlying_move=move, iv_change=iv_change, days=days)


def _table(values: FloatArray) -> list[list[list[Decimal]]]:
    return [[[money(v) for v in row] for row in plane] for plane in values.tolist()]


def scenarios(
    grid_in: schemas.GridIn, monte_carlo: schemas.BookMonteCarloIn | None, built: Book
) -> schemas.ScenarioResponse:
    book = built.book
    grid = _grid(grid_in, book)
    return schemas.ScenarioResponse(
        underlyings=list(book.underlyings),
        value=money(grid.value),
        underlying_moves=grid.spot_moves.tolist(),
        iv_changes=grid.iv_changes.tolist(),
        days=grid.days.tolist(),
        pnl=_table(grid.pnl),
        greeks_pnl=_table(grid.greeks_pnl),
        worst=_where(grid.worst),
        best=_where(grid.best),
        monte_carlo=_mc(monte_carlo, book, built.correlation),
        skipped=built.skipped,
    )


def scenarios_svg(grid_in: schemas.GridIn, built: Book, title: str) -> str:
    grid = _grid(grid_in, built.book)
    return charts.heatmap_svg(
        spot_moves=grid.spot_moves.tolist(),
        iv_changes=grid.iv_changes.tolist(),
        days=grid.days.tolist(),
        pnl=grid.pnl.tolist(),
        worst=grid.worst,
        title=title,
    )
