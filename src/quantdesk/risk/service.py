"""Use cases of ``/api/v1/risk``: measures, optimisation and option-book scenarios.

The numerics are :mod:`quantdesk.analytics.risk` and :mod:`quantdesk.analytics.optimize`;
this module turns requests into arrays, calls them and shapes the answers (NaN and ±inf
become ``null``; money becomes decimal strings at two places).  The compute functions are
synchronous and CPU-bound: routers run them in a worker thread.  Where the data lives in the
database (stored bars, a paper account's positions) :mod:`quantdesk.risk.sources` loads it
first.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal
from decimal import Context as DecimalContext
from typing import Any

import numpy as np

from quantdesk.analytics import optimize as opt
from quantdesk.analytics import returns as rt
from quantdesk.analytics import risk
from quantdesk.platform.exceptions import InvalidInput
from quantdesk.risk import charts, schemas

FloatArray = rt.FloatArray
CENT = Decimal("0.01")
# Wide enough to quantise any float P&L to cents (a float has at most 309 integer digits).
_WIDE = DecimalContext(prec=400, rounding=ROUND_HALF_EVEN)
# Work bounds: random draws of one Monte Carlo, option prices of one scenario request.
MAX_DRAWS = 20_000_000
MAX_PRICES = 20_000_000


def _finite(value: Any) -> float | None:
    number = float(value)
    return number if math.isfinite(number) else None


def money(value: float) -> Decimal:
    if not math.isfinite(value):
        raise InvalidInput("the book's value is not finite; check spots, strikes and IVs")
    return _WIDE.quantize(Decimal(repr(float(value))), CENT)


# --- data ---------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True, eq=False)
class Panel:
    """Aligned daily simple returns: ``returns[t, i]`` of asset ``names[i]``."""

    names: list[str]
    returns: FloatArray
    last_prices: dict[str, Decimal]


def _matrix(
    columns: Mapping[str, Sequence[float | Decimal]], what: str
) -> tuple[list[str], FloatArray]:
    names = list(columns)
    lengths = {len(v) for v in columns.values()}
    if len(lengths) != 1:
        raise InvalidInput(f"every column of `{what}` must have the same length", field=what)
    return names, np.asarray([columns[n] for n in names], dtype=np.float64).T


def panel_of(
    returns: Sequence[float] | Mapping[str, Sequence[float]] | None,
    prices: Sequence[Decimal] | Mapping[str, Sequence[Decimal]] | None,
) -> Panel:
    """The request's own data as aligned returns (a single series is named ``portfolio``)."""
    given: Sequence[float | Decimal] | Mapping[str, Sequence[float | Decimal]]
    if returns is not None:
        given, what = returns, "returns"
    elif prices is not None:
        given, what = prices, "prices"
    else:  # pragma: no cover - the schema requires a source
        raise InvalidInput("no data")
    columns: dict[str, Sequence[float | Decimal]] = (
        dict(given) if isinstance(given, Mapping) else {"portfolio": list(given)}
    )
    names, values = _matrix(columns, what)
    last: dict[str, Decimal] = {}
    try:
        if what == "prices":
            last = {n: Decimal(columns[n][-1]) for n in names}
            values = rt.simple_returns(values)
        rt.as_returns(values)
    except ValueError as exc:
        raise InvalidInput(f"{what}: {exc}", field=what) from None
    return Panel(names, values, last)


def _weights(panel: Panel, weights: Mapping[str, float] | None) -> FloatArray:
    n = len(panel.names)
    if weights is None:
        if n > 1:
            raise InvalidInput("columns of returns need `weights`", field="weights")
        return np.ones(1)
    unknown = sorted(set(weights) - set(panel.names))
    missing = sorted(set(panel.names) - set(weights))
    if unknown or missing:
        raise InvalidInput(
            "weights must name exactly the columns"
            + (f"; unknown: {', '.join(unknown)}" if unknown else "")
            + (f"; missing: {', '.join(missing)}" if missing else ""),
            field="weights",
        )
    w = np.array([weights[n] for n in panel.names], dtype=np.float64)
    if not np.all(np.isfinite(w)) or w.sum() == 0:
        raise InvalidInput("weights must be finite and not sum to zero", field="weights")
    return w


# --- measures -----------------------------------------------------------------------------
def _components(
    panel: Panel, w: FloatArray, mean: FloatArray, cov: FloatArray, c: float, h: int
) -> list[schemas.ComponentOut] | None:
    if len(panel.names) < 2 or not float(w @ cov @ w) > 0:
        return None
    split = risk.component_var(w, cov, mean, c, horizon=h)
    with np.errstate(divide="ignore", invalid="ignore"):
        percent = split.percent
    return [
        schemas.ComponentOut(
            asset=name,
            weight=float(w[i]),
            marginal_var=_finite(split.marginal[i]),
            component_var=_finite(split.component[i]),
            percent_of_var=_finite(percent[i]),
        )
        for i, name in enumerate(panel.names)
    ]


def components(
    panel: Panel, weights: Mapping[str, float], confidence: float, horizon_days: int
) -> list[schemas.ComponentOut] | None:
    """Marginal and component parametric VaR of each column at ``weights``."""
    w = _weights(panel, weights)
    cov = np.atleast_2d(np.cov(panel.returns, rowvar=False, ddof=1))
    return _components(panel, w, panel.returns.mean(axis=0), cov, confidence, horizon_days)


def measures(request: schemas.MeasuresRequest, panel: Panel) -> schemas.MeasuresResponse:
    w = _weights(panel, request.weights)
    series = panel.returns @ w
    if np.any(series <= -1.0):
        raise InvalidInput("the weighted portfolio loses everything on some day", field="weights")
    ppy = request.periods_per_year
    rf = request.risk_free_rate / ppy
    c, h = request.confidence, request.horizon_days
    beta = correlation = bench = None
    if request.benchmark is not None:
        if len(request.benchmark) != series.size:
            raise InvalidInput(
                f"benchmark has {len(request.benchmark)} returns, the series {series.size}",
                field="benchmark",
            )
        bench = np.asarray(request.benchmark, dtype=np.float64)
        beta = _finite(risk.beta(series, bench))
        correlation = _finite(risk.correlation(series, bench))
    mean = panel.returns.mean(axis=0)
    cov = np.atleast_2d(np.cov(panel.returns, rowvar=False, ddof=1))
    components = _components(panel, w, mean, cov, c, h)
    var_mc = cvar_mc = None
    if request.monte_carlo is not None:
        draws = request.monte_carlo.simulations * h * len(panel.names)
        if draws > MAX_DRAWS:
            raise InvalidInput(
                f"monte_carlo: simulations x horizon_days x assets is {draws:,}; at most "
                f"{MAX_DRAWS:,}",
                field="monte_carlo.simulations",
            )
        mc = risk.monte_carlo_var(
            mean, cov, w, c, horizon=h,
            simulations=request.monte_carlo.simulations, seed=request.monte_carlo.seed,
        )  # fmt: skip
        var_mc, cvar_mc = _finite(mc.var), _finite(mc.cvar)
    rolling = None
    if request.rolling_window is not None:
        window = request.rolling_window
        if window > series.size:
            raise InvalidInput(
                f"rolling_window {window} is longer than the {series.size} returns",
                field="rolling_window",
            )

        def roll(measure: Any, *args: Any) -> list[float | None]:
            values = risk.rolling(measure, series, window, *args)
            return [_finite(v) for v in values]

        rolling = schemas.RollingOut(
            window=window,
            volatility=roll(lambda r: risk.volatility(r, ppy)),
            downside_deviation=roll(lambda r: risk.downside_deviation(r, rf, ppy)),
            sharpe=roll(lambda r: risk.sharpe(r, rf, ppy)),
            sortino=roll(lambda r: risk.sortino(r, rf, ppy)),
            calmar=roll(lambda r: risk.calmar(r, ppy)),
            max_drawdown=roll(risk.max_drawdown),
            beta=None if bench is None else roll(risk.beta, bench),
            correlation=None if bench is None else roll(risk.correlation, bench),
        )
    return schemas.MeasuresResponse(
        observations=int(series.size),
        confidence=c,
        horizon_days=h,
        var_historical=_finite(
            risk.historical_var(series, c, method=request.historical_rule, horizon=h)
        ),
        cvar_historical=_finite(
            risk.historical_cvar(series, c, method=request.cvar_rule, horizon=h)
        ),
        var_parametric=_finite(risk.parametric_var(series, c, horizon=h)),
        cvar_parametric=_finite(risk.parametric_cvar(series, c, horizon=h)),
        var_cornish_fisher=_finite(risk.cornish_fisher_var(series, c, horizon=h)),
        var_monte_carlo=var_mc,
        cvar_monte_carlo=cvar_mc,
        volatility=_finite(risk.volatility(series, ppy)),
        downside_deviation=_finite(risk.downside_deviation(series, rf, ppy)),
        sharpe=_finite(risk.sharpe(series, rf, ppy)),
        sortino=_finite(risk.sortino(series, rf, ppy)),
        calmar=_finite(risk.calmar(series, ppy)),
        max_drawdown=_finite(risk.max_drawdown(series)),
        drawdown_duration=int(risk.drawdown_duration(series)),
        annual_return=_finite(rt.annual_return(series, ppy)),
        beta=beta,
        correlation=correlation,
        components=components,
        rolling=rolling,
    )


# --- optimisation -------------------------------------------------------------------------
@dataclass(frozen=True, slots=True, eq=False)
class Optimised:
    response: schemas.OptimizeResponse
    mv: opt.MeanVariance
    names: list[str]


def _bounds(
    request: schemas.OptimizeRequest, names: list[str]
) -> tuple[float, float] | list[tuple[float, float]]:
    if isinstance(request.bounds, dict):
        unknown = sorted(set(request.bounds) - set(names))
        if unknown:
            raise InvalidInput(f"bounds name unknown assets: {', '.join(unknown)}", field="bounds")
        return [request.bounds.get(n, (0.0, 1.0)) for n in names]
    return request.bounds


def _point(p: opt.Portfolio) -> schemas.FrontierPoint:
    return schemas.FrontierPoint(
        expected_return=p.expected_return, volatility=p.volatility, sharpe=_finite(p.sharpe)
    )


def optimise(request: schemas.OptimizeRequest, panel: Panel) -> Optimised:
    names, R = panel.names, panel.returns
    if len(names) < 2:
        raise InvalidInput("optimisation needs at least two assets", field="returns")
    ppy = request.periods_per_year
    rf = request.risk_free_rate
    try:
        mu = opt.expected_returns(
            R, request.expected_returns, span=request.span or 500, risk_free_rate=rf,
            periods_per_year=ppy,
        )  # fmt: skip
        cov = opt.covariance(R, request.covariance, span=request.span or 180, periods_per_year=ppy)
        groups = (
            opt.group_limits(request.sectors, names, request.sector_lower, request.sector_upper)
            if request.sectors
            else []
        )
        mv = opt.MeanVariance(mu, cov, _bounds(request, names), groups, request.l2_gamma)
        objective = request.objective
        if objective == "max_sharpe":
            chosen = mv.max_sharpe(rf)
        elif objective == "min_volatility":
            chosen = mv.min_volatility(rf)
        elif objective == "efficient_return":
            chosen = mv.efficient_return(float(request.target_return or 0.0), rf)
        elif objective == "efficient_risk":
            chosen = mv.efficient_risk(float(request.target_volatility or 0.0), rf)
        elif objective == "risk_parity":
            chosen = opt.performance(opt.risk_parity(cov), mu, cov, rf)
        else:
            chosen = opt.performance(opt.hrp(R, request.linkage).weights, mu, cov, rf)
        frontier = (
            [_point(p) for p in mv.efficient_frontier(request.frontier_points, rf)]
            if request.frontier_points
            else None
        )
    except ValueError as exc:  # OptimizationError included
        raise InvalidInput(str(exc)) from None
    w = np.where(np.abs(chosen.weights) < 1e-10, 0.0, chosen.weights)
    if not np.all(np.isfinite(w)):
        raise InvalidInput(f"{request.objective}: the solver returned no usable weights")
    contributions = opt.risk_contributions(w, cov) if float(w @ cov @ w) > 0 else np.zeros_like(w)
    allocation = _allocation(request, panel, dict(zip(names, w.tolist(), strict=True)))
    vol = np.sqrt(np.diag(cov))
    response = schemas.OptimizeResponse(
        objective=request.objective,
        weights=dict(zip(names, w.tolist(), strict=True)),
        expected_return=chosen.expected_return,
        volatility=chosen.volatility,
        sharpe=_finite(chosen.sharpe),
        risk_contributions=dict(zip(names, contributions.tolist(), strict=True)),
        assets={
            n: schemas.FrontierPoint(
                expected_return=float(mu[i]),
                volatility=float(vol[i]),
                sharpe=_finite((mu[i] - rf) / vol[i]) if vol[i] > 0 else None,
            )
            for i, n in enumerate(names)
        },
        frontier=frontier,
        allocation=allocation,
    )
    return Optimised(response, mv, names)


def _allocation(
    request: schemas.OptimizeRequest, panel: Panel, weights: dict[str, float]
) -> schemas.AllocationOut | None:
    wanted = request.allocation
    if wanted is None:
        return None
    prices = dict(panel.last_prices)
    prices.update(wanted.latest_prices or {})
    held = {n: w for n, w in weights.items() if w != 0.0}
    missing = sorted(set(held) - set(prices))
    if missing:
        raise InvalidInput(
            f"allocation needs latest prices for {', '.join(missing)}",
            field="allocation.latest_prices",
        )
    try:
        lots = {n: int(size) for n, size in (wanted.lot_sizes or {}).items()}
        done = opt.discrete_allocation(
            held, prices, wanted.value, lot_sizes=lots, short_ratio=wanted.short_ratio
        )
    except ValueError as exc:
        raise InvalidInput(str(exc), field="allocation") from None
    return schemas.AllocationOut(
        quantities={n: Decimal(q) for n, q in done.quantities.items()},
        lots={n: Decimal(k) for n, k in done.lots.items()},
        leftover=done.leftover,
        latest_prices={n: prices[n] for n in held},
    )


def rebalance(
    request: schemas.OptimizeRequest,
    panel: Panel,
    currency: str,
    holdings: Mapping[str, Any],
    skipped: list[str],
) -> schemas.RebalanceResponse:
    """Optimise over the holdings' returns, then the whole-lot trades that get there from
    what is held now (``holdings``: instrument -> quantity, unit_value, lot_size)."""
    value = sum((h.quantity * h.unit_value for h in holdings.values()), Decimal(0))
    if value <= 0:
        raise InvalidInput("the portfolio's priced holdings have no market value")
    done = optimise(request, panel).response
    prices = {n: holdings[n].unit_value for n in panel.names}
    lots = {n: holdings[n].lot_size for n in panel.names}
    held = {n: w for n, w in done.weights.items() if w > 0}
    target = opt.discrete_allocation(held, prices, value, lot_sizes=lots)
    trades = []
    for name in panel.names:
        change = Decimal(target.quantities.get(name, 0)) - holdings[name].quantity
        if change:
            trades.append(
                schemas.RebalanceTrade(
                    instrument=name,
                    side="buy" if change > 0 else "sell",
                    quantity=abs(change),
                    estimated_value=money(float(abs(change) * prices[name])),
                )
            )
    current = {n: float(holdings[n].quantity * holdings[n].unit_value / value) for n in panel.names}
    return schemas.RebalanceResponse(
        **done.model_dump(),
        currency=currency,
        value=value,
        current_weights=current,
        trades=trades,
        leftover=target.leftover,
        skipped=skipped,
    )


def frontier_svg(request: schemas.OptimizeRequest, panel: Panel) -> str:
    points = request.frontier_points or 50
    done = optimise(request.model_copy(update={"frontier_points": points}), panel)
    r = done.response
    return charts.frontier_svg(
        frontier=[(p.volatility, p.expected_return) for p in r.frontier or []],
        assets={n: (p.volatility, p.expected_return) for n, p in r.assets.items()},
        chosen=(r.volatility, r.expected_return),
        chosen_label=r.objective.replace("_", " "),
        risk_free_rate=request.risk_free_rate,
    )
