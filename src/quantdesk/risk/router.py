"""``/api/v1/risk``: risk measures, VaR/CVaR, optimisation and option-book scenarios.

Thin: each endpoint authorises (viewer role; an API key needs ``read``), loads the data the
request names (its own arrays, stored bars, or a paper account's positions) and runs one
use case in a worker thread, since the numerics take milliseconds to seconds of CPU.
Nothing here moves money: suggested weights and allocations are answers, not orders.
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Query
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from quantdesk.platform.context import Context, DbSession
from quantdesk.platform.db import utcnow
from quantdesk.platform.exceptions import InvalidInput
from quantdesk.portfolios.paper import market_today
from quantdesk.risk import books, schemas, service, sources
from quantdesk.security.policy import RequireViewer

router = APIRouter(prefix="/api/v1/risk", tags=["risk & optimisation"])

SVG: dict[int | str, dict[str, Any]] = {200: {"content": {"image/svg+xml": {}}}}


async def _panel(
    body: schemas.MeasuresRequest | schemas.OptimizeRequest, db: DbSession
) -> service.Panel:
    if body.symbols is not None:
        return await sources.bar_panel(db, body.symbols, body.lookback_days, utcnow())
    return service.panel_of(body.returns, body.prices)


@router.post("/measures", summary="Risk measures and VaR/CVaR of a return series or portfolio")
async def measures(
    body: schemas.MeasuresRequest, _principal: RequireViewer, db: DbSession
) -> schemas.MeasuresResponse:
    """Give `returns` (one series of simple daily returns, or columns with `weights`),
    `prices`, or `symbols` (stored daily bars).  Answers historical, parametric,
    Cornish-Fisher and seeded Monte Carlo VaR/CVaR at `confidence` over `horizon_days` as
    positive loss fractions, with volatility, Sharpe, Sortino, Calmar, drawdown, beta and,
    for columns, each holding's marginal and component VaR."""
    panel = await _panel(body, db)
    return await run_in_threadpool(service.measures, body, panel)


@router.post("/optimize", summary="Optimise portfolio weights (mean-variance, risk parity, HRP)")
async def optimize(
    body: schemas.OptimizeRequest, _principal: RequireViewer, db: DbSession
) -> schemas.OptimizeResponse:
    """`objective`: max_sharpe, min_volatility, efficient_return (`target_return`),
    efficient_risk (`target_volatility`), risk_parity (equal risk contribution) or hrp.
    Expected returns default to the arithmetic mean x 252, covariance to the sample
    covariance x 252.  With `allocation`, also whole shares/lots for a cash value."""
    panel = await _panel(body, db)
    done = await run_in_threadpool(service.optimise, body, panel)
    return done.response


@router.post(
    "/frontier.svg",
    summary="The efficient frontier with the assets and the chosen portfolio, as SVG",
    response_class=Response,
    responses=SVG,
)
async def frontier_chart(
    body: schemas.OptimizeRequest, _principal: RequireViewer, db: DbSession
) -> Response:
    """The same body as `/optimize` (`frontier_points` defaults to 50 here)."""
    panel = await _panel(body, db)
    svg = await run_in_threadpool(service.frontier_svg, body, panel)
    return Response(svg, media_type="image/svg+xml")


@router.post("/scenarios", summary="P&L of an option book under a scenario grid (full revaluation)")
async def scenarios(
    body: schemas.ScenarioRequest, _principal: RequireViewer
) -> schemas.ScenarioResponse:
    """Every leg is repriced (Black-Scholes-Merton) at each spot move x relative IV change x
    days forward; the second-order Greeks approximation is returned beside it, with the
    worst case and where it occurs, and the book's Monte Carlo VaR with correlated
    underlyings."""
    built = books.build_book(body, utcnow().date())
    return await run_in_threadpool(books.scenarios, body.grid, body.monte_carlo, built)


@router.post(
    "/scenarios.svg",
    summary="The option book's scenario grid as an SVG heat map",
    response_class=Response,
    responses=SVG,
)
async def scenarios_chart(body: schemas.ScenarioRequest, _principal: RequireViewer) -> Response:
    built = books.build_book(body, utcnow().date())
    svg = await run_in_threadpool(books.scenarios_svg, body.grid, built, "Option book P&L")
    return Response(svg, media_type="image/svg+xml")


Confidence = Annotated[float, Query(gt=0.5, lt=1.0)]


@router.get("/accounts/{account_id}/measures", summary="Risk of a paper account's positions")
async def account_measures(
    account_id: uuid.UUID,
    principal: RequireViewer,
    ctx: Context,
    db: DbSession,
    confidence: Confidence = 0.95,
    horizon_days: Annotated[int, Query(ge=1, le=250)] = 1,
    lookback_days: Annotated[int, Query(ge=10, le=10_000)] = 365,
) -> schemas.MeasuresResponse:
    """The positions (options aside: see `/scenarios`) weighted by market value over the
    daily bars of the last `lookback_days`, measured as `POST /measures` measures columns."""
    panel, weights, skipped = await sources.account_panel(
        ctx, db, principal.user_id, account_id, lookback_days, utcnow()
    )
    # The data is the panel itself: the request only carries the options (no source).
    body = schemas.MeasuresRequest.model_construct(
        weights=weights, confidence=confidence, horizon_days=horizon_days
    )
    result = await run_in_threadpool(service.measures, body, panel)
    return result.model_copy(update={"skipped": skipped})


def _grid(
    move_range: float, move_points: int, iv_range: float, iv_points: int, days: list[float]
) -> schemas.GridIn:
    return schemas.GridIn(
        underlying_range=move_range, underlying_points=move_points, iv_range=iv_range,
        iv_points=iv_points, days=days or [0.0],
    )  # fmt: skip


MoveRange = Annotated[float, Query(gt=0, lt=1)]
MovePoints = Annotated[int, Query(ge=1, le=201)]
IvRange = Annotated[float, Query(ge=0, lt=1)]
IvPoints = Annotated[int, Query(ge=1, le=101)]
Days = Annotated[list[float], Query(max_length=20)]


@router.get(
    "/accounts/{account_id}/scenarios",
    summary="Full-revaluation scenario grid and Monte Carlo VaR of a paper account's F&O book",
)
async def account_scenarios(
    account_id: uuid.UUID,
    principal: RequireViewer,
    ctx: Context,
    db: DbSession,
    underlying_range: MoveRange = 0.2,
    underlying_points: MovePoints = 41,
    iv_range: IvRange = 0.5,
    iv_points: IvPoints = 21,
    days: Days = [0.0],  # noqa: B006 - FastAPI copies query defaults
    confidence: Annotated[float, Query(gt=0.5, lt=1.0)] = 0.99,
    var_days: Annotated[float, Query(gt=0, le=365)] = 1.0,
    simulations: Annotated[int, Query(ge=100, le=100_000)] = 10_000,
    seed: Annotated[int, Query(ge=0, le=2**32 - 1)] = 0,
) -> schemas.ScenarioResponse:
    """Options get their IV implied from their marks at the underlying's spot, futures their
    cost-of-carry value, cash positions in an underlying of the book move with it.
    Positions that cannot be valued are listed in `skipped`."""
    built = await sources.account_book(ctx, db, principal.user_id, account_id, utcnow())
    grid = _grid(underlying_range, underlying_points, iv_range, iv_points, days)
    mc = schemas.BookMonteCarloIn(
        confidence=confidence, days=var_days, simulations=simulations, seed=seed
    )
    return await run_in_threadpool(books.scenarios, grid, mc, built)


@router.get(
    "/accounts/{account_id}/scenarios.svg",
    summary="The paper account's scenario grid as an SVG heat map",
    response_class=Response,
    responses=SVG,
)
async def account_scenarios_chart(
    account_id: uuid.UUID,
    principal: RequireViewer,
    ctx: Context,
    db: DbSession,
    underlying_range: MoveRange = 0.2,
    underlying_points: MovePoints = 41,
    iv_range: IvRange = 0.5,
    iv_points: IvPoints = 21,
    days: Days = [0.0],  # noqa: B006 - FastAPI copies query defaults
) -> Response:
    built = await sources.account_book(ctx, db, principal.user_id, account_id, utcnow())
    grid = _grid(underlying_range, underlying_points, iv_range, iv_points, days)
    title = f"Paper account {account_id} - F&O book P&L"
    svg = await run_in_threadpool(books.scenarios_svg, grid, built, title)
    return Response(svg, media_type="image/svg+xml")


# --- portfolios ----------------------------------------------------------------------------
portfolio_router = APIRouter(prefix="/api/v1/portfolios", tags=["risk & optimisation"])


@portfolio_router.get("/{portfolio_id}/risk", summary="Risk measures and VaR of a portfolio")
async def portfolio_risk(
    portfolio_id: uuid.UUID,
    principal: RequireViewer,
    ctx: Context,
    db: DbSession,
    confidence: Confidence = 0.95,
    horizon_days: Annotated[int, Query(ge=1, le=250)] = 1,
    lookback_days: Annotated[int, Query(ge=10, le=10_000)] = 365,
    risk_free_rate: Annotated[float, Query(ge=-1, le=1)] = 0.0,
) -> schemas.MeasuresResponse:
    """Measured on the portfolio's daily time-weighted returns (flows removed) over the
    last `lookback_days`, weekdays with something held; `components` split the parametric
    VaR over today's holdings (their daily bars, weights by market value)."""
    panel = await sources.portfolio_panel(
        ctx, db, principal.user_id, portfolio_id, lookback_days, market_today()
    )
    body = schemas.MeasuresRequest.model_construct(
        confidence=confidence, horizon_days=horizon_days, risk_free_rate=risk_free_rate
    )
    result = await run_in_threadpool(service.measures, body, panel)
    held = await sources.portfolio_weights(
        ctx, db, principal.user_id, portfolio_id, lookback_days, utcnow()
    )
    if isinstance(held, str):
        return result.model_copy(update={"skipped": [held]})
    split = await run_in_threadpool(service.components, *held, confidence, horizon_days)
    return result.model_copy(update={"components": split})


@portfolio_router.get(
    "/{portfolio_id}/optimize",
    summary="Suggested weights for a portfolio's holdings and the trades that get there",
)
async def portfolio_optimize(
    portfolio_id: uuid.UUID,
    principal: RequireViewer,
    ctx: Context,
    db: DbSession,
    objective: schemas.Objective = "max_sharpe",
    risk_free_rate: Annotated[float, Query(ge=-1, le=1)] = 0.0,
    target_return: Annotated[float | None, Query(ge=-10, le=10)] = None,
    target_volatility: Annotated[float | None, Query(gt=0, le=10)] = None,
    max_weight: Annotated[float, Query(gt=0, le=1)] = 1.0,
    expected_returns: schemas.ReturnModel = "mean_historical",
    covariance: schemas.RiskModel = "sample",
    lookback_days: Annotated[int, Query(ge=10, le=10_000)] = 365,
) -> schemas.RebalanceResponse:
    """Optimises over the priced long holdings' daily bars, then sizes whole lots of the
    current market value at the latest prices: `trades` are what to buy and sell.  Nothing
    is placed: send the trades you confirm to a paper account as orders."""
    currency, holdings, skipped = await sources.portfolio_holdings(
        ctx, db, principal.user_id, portfolio_id
    )
    if len(holdings) < 2:
        raise InvalidInput("optimisation needs at least two priced holdings")
    panel = await sources.bar_panel(db, list(holdings), lookback_days, utcnow())
    body = schemas.OptimizeRequest.model_construct(
        objective=objective, risk_free_rate=risk_free_rate, target_return=target_return,
        target_volatility=target_volatility, bounds=(0.0, max_weight),
        expected_returns=expected_returns, covariance=covariance,
    )  # fmt: skip
    if objective == "efficient_return" and target_return is None:
        raise InvalidInput("efficient_return needs `target_return`", field="target_return")
    if objective == "efficient_risk" and target_volatility is None:
        raise InvalidInput("efficient_risk needs `target_volatility`", field="target_volatility")
    return await run_in_threadpool(service.rebalance, body, panel, currency, holdings, skipped)


@portfolio_router.get(
    "/{portfolio_id}/scenarios",
    summary="Full-revaluation scenario grid and Monte Carlo VaR of a portfolio's F&O book",
)
async def portfolio_scenarios(
    portfolio_id: uuid.UUID,
    principal: RequireViewer,
    ctx: Context,
    db: DbSession,
    underlying_range: MoveRange = 0.2,
    underlying_points: MovePoints = 41,
    iv_range: IvRange = 0.5,
    iv_points: IvPoints = 21,
    days: Days = [0.0],  # noqa: B006 - FastAPI copies query defaults
    confidence: Annotated[float, Query(gt=0.5, lt=1.0)] = 0.99,
    var_days: Annotated[float, Query(gt=0, le=365)] = 1.0,
    simulations: Annotated[int, Query(ge=100, le=100_000)] = 10_000,
    seed: Annotated[int, Query(ge=0, le=2**32 - 1)] = 0,
) -> schemas.ScenarioResponse:
    """The portfolio's options (IVs implied from their last prices), futures and holdings
    of their underlyings, as for a paper account."""
    built = await sources.portfolio_book(ctx, db, principal.user_id, portfolio_id, utcnow())
    grid = _grid(underlying_range, underlying_points, iv_range, iv_points, days)
    mc = schemas.BookMonteCarloIn(
        confidence=confidence, days=var_days, simulations=simulations, seed=seed
    )
    return await run_in_threadpool(books.scenarios, grid, mc, built)
