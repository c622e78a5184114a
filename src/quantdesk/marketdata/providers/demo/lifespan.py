"""The demo ticker as a feature lifespan: live quotes for the demo market while serving."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from quantdesk.platform.context import AppContext

DEMO_TICKER = "demo_ticker"


@asynccontextmanager
async def demo_ticker_lifespan(ctx: AppContext) -> AsyncIterator[None]:
    settings = ctx.settings
    if not (settings.demo_data and settings.demo_tick_interval_s > 0):
        yield
        return
    # Imported here: the demo market pulls in calendars and NumPy work that no other
    # configuration needs, so an app without demo data never pays for it.
    from quantdesk.marketdata.providers.demo.simulator import DemoTicker

    ctx.extensions[DEMO_TICKER] = ticker = DemoTicker(ctx)
    ticker.start()
    try:
        yield
    finally:
        await ctx.extensions.pop(DEMO_TICKER).stop()
