"""The app with one extra route that declares the ``orders`` rate-limit class, for the
rate-limit tests (an order placement's limits without the trading service behind them)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import APIRouter, FastAPI

from quantdesk.app import create_app
from quantdesk.security.policy import RequireTrader, rate_limit
from quantdesk.settings import Settings

PROBE_ORDERS = "/api/v1/probe/orders"


@asynccontextmanager
async def app_with_probe_orders(settings: Settings) -> AsyncIterator[FastAPI]:
    application = create_app(settings)
    router = APIRouter()

    @router.post(PROBE_ORDERS, dependencies=[rate_limit("orders")])
    async def place(principal: RequireTrader) -> dict[str, str]:
        return {"ok": "yes"}

    application.include_router(router)
    async with application.router.lifespan_context(application):
        yield application
