"""``/api/v1/analytics/strategies``: multi-leg strategy analysis and its payoff diagram."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from quantdesk.platform.context import Context
from quantdesk.security.policy import RequireViewer
from quantdesk.strategies import service
from quantdesk.strategies.schemas import StrategyRequest, StrategyResponse

router = APIRouter(prefix="/api/v1/analytics/strategies", tags=["analytics: strategies"])


@router.post(
    "/analyze",
    summary="Analyse a multi-leg option/future strategy",
    response_model=StrategyResponse,
)
async def analyze(
    request: StrategyRequest, ctx: Context, _principal: RequireViewer
) -> StrategyResponse:
    """Give `legs` (options, futures, the underlying; signed lots; entry prices) or a
    `template` (straddles, strangles, verticals, condors, butterflies, calendars, covered
    call, protective put, collar).  A leg may name a listed option or future instead
    (`{"instrument": "NFO:NIFTY26DEC24000CE", "quantity": 1, "entry_price": "120", "iv": 0.14}`):
    kind, strike, expiry and lot size come from the instrument master (404 for an unknown
    key, 422 for anything but an option or future).  Returns the payoff at the first expiry
    and today over a price grid, exact breakevens, max profit/loss (null when unlimited), the
    lognormal probability of profit and the net Greeks.  Prices, P/L and quantities are
    decimal strings; Greeks, IVs and probabilities are numbers."""
    spelled = await service.resolve_instruments(ctx.database, request)
    return await run_in_threadpool(service.analyze_request, spelled)


@router.post(
    "/payoff.svg",
    summary="The strategy's payoff diagram as SVG",
    response_class=Response,
    responses={200: {"content": {"image/svg+xml": {}}}},
)
async def payoff_chart(
    request: StrategyRequest, ctx: Context, _principal: RequireViewer
) -> Response:
    """The same body as `/analyze`; draws P/L at expiry and today, the spot and the
    breakevens."""
    spelled = await service.resolve_instruments(ctx.database, request)
    svg = await run_in_threadpool(service.payoff_chart_svg, spelled)
    return Response(svg, media_type="image/svg+xml")
