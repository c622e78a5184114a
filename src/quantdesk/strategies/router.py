"""``/api/v1/analytics/strategies``: multi-leg strategy analysis and its payoff diagram."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from quantdesk.security.policy import RequireViewer
from quantdesk.strategies import service
from quantdesk.strategies.schemas import StrategyRequest, StrategyResponse

router = APIRouter(prefix="/api/v1/analytics/strategies", tags=["analytics: strategies"])


@router.post(
    "/analyze",
    summary="Analyse a multi-leg option/future strategy",
    response_model=StrategyResponse,
)
async def analyze(request: StrategyRequest, _principal: RequireViewer) -> StrategyResponse:
    """Give `legs` (options, futures, the underlying; signed lots; entry prices) or a
    `template` (straddles, strangles, verticals, condors, butterflies, calendars, covered
    call, protective put, collar).  Returns the payoff at the first expiry and today over a
    price grid, exact breakevens, max profit/loss (null when unlimited), the lognormal
    probability of profit and the net Greeks.  Money is in decimal strings."""
    return await run_in_threadpool(service.analyze_request, request)


@router.post(
    "/payoff.svg",
    summary="The strategy's payoff diagram as SVG",
    response_class=Response,
    responses={200: {"content": {"image/svg+xml": {}}}},
)
async def payoff_chart(request: StrategyRequest, _principal: RequireViewer) -> Response:
    """The same body as `/analyze`; draws P/L at expiry and today, the spot and the
    breakevens."""
    svg = await run_in_threadpool(service.payoff_chart_svg, request)
    return Response(svg, media_type="image/svg+xml")
