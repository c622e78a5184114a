"""Batch option pricing and implied volatility: up to 100,000 rows per request."""

from __future__ import annotations

from typing import Any

import numpy as np
from fastapi import APIRouter
from starlette.concurrency import run_in_threadpool

from quantdesk.analytics.options import IVReason, greeks, implied_vol
from quantdesk.analytics_api.columns import decimal_strings, floats_or_null, rows_of
from quantdesk.analytics_api.options_schemas import (
    MAX_BATCH_ROWS,
    GreeksRequest,
    GreeksResponse,
    ImpliedVolRequest,
    ImpliedVolResponse,
)
from quantdesk.platform.responses import FastJSONResponse
from quantdesk.security.policy import RequireViewer

router = APIRouter(prefix="/api/v1/analytics/options", tags=["analytics: options"])

DAYS_PER_YEAR = 365.0
_REASON_NAMES = {int(reason): reason.name.lower() for reason in IVReason}


def _columns(request: GreeksRequest | ImpliedVolRequest, *names: str) -> dict[str, Any]:
    columns = {name: getattr(request, name) for name in names}
    rows_of(columns, MAX_BATCH_ROWS)
    return columns


def _greeks_payload(request: GreeksRequest) -> dict[str, Any]:
    cols = _columns(request, "kind", "spot", "strike", "t", "r", "sigma", "q")
    result = greeks(**cols, model=request.model)
    return {
        "rows": int(np.size(result.price)),
        "price": decimal_strings(result.price),
        "delta": floats_or_null(result.delta),
        "gamma": floats_or_null(result.gamma),
        "vega": floats_or_null(result.vega),
        "vega_per_point": floats_or_null(result.vega / 100.0),
        "theta": floats_or_null(result.theta),
        "theta_per_day": floats_or_null(result.theta / DAYS_PER_YEAR),
        "rho": floats_or_null(result.rho),
        "vanna": floats_or_null(result.vanna),
        "volga": floats_or_null(result.volga),
        "charm": floats_or_null(result.charm),
    }


def _implied_vol_payload(request: ImpliedVolRequest) -> dict[str, Any]:
    cols = _columns(request, "price", "kind", "spot", "strike", "t", "r", "q")
    result = implied_vol(**cols, model=request.model)
    reasons = np.atleast_1d(np.asarray(result.reason, dtype=np.int64))
    return {
        "rows": int(np.size(result.vol)),
        "iv": floats_or_null(result.vol),
        "reason": [_REASON_NAMES[int(code)] for code in reasons],
    }


@router.post(
    "/greeks",
    summary="Price and Greeks for a batch of European options",
    response_model=GreeksResponse,
    response_class=FastJSONResponse,
)
async def batch_greeks(request: GreeksRequest, _principal: RequireViewer) -> FastJSONResponse:
    """Black-Scholes-Merton (or Black-76) price, delta, gamma, vega, theta, rho, vanna, volga
    and charm in QuantLib's conventions, plus per-day theta and per-point vega.  Rows with
    invalid inputs come back as nulls; the batch never fails because of one bad row."""
    return FastJSONResponse(await run_in_threadpool(_greeks_payload, request))


@router.post(
    "/implied-vol",
    summary="Implied volatility for a batch of option prices",
    response_model=ImpliedVolResponse,
    response_class=FastJSONResponse,
)
async def batch_implied_vol(
    request: ImpliedVolRequest, _principal: RequireViewer
) -> FastJSONResponse:
    """Solves to 1e-10 in volatility wherever the price is inside the no-arbitrage bounds;
    elsewhere the row is null with a reason code."""
    return FastJSONResponse(await run_in_threadpool(_implied_vol_payload, request))
