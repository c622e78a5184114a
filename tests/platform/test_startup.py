"""Start-up (issue 19, "works from the first request"): the app is ready only once the
analytics kernels are loaded and, with demo data, once the demo has live quotes."""

from __future__ import annotations

import asyncio
import importlib
import time

import httpx
import pytest

from quantdesk.analytics.warmup import warm_kernels
from quantdesk.app import create_app
from quantdesk.marketdata.quotes.service import QuoteService
from quantdesk.settings import Settings


def test_warm_up_calls_every_kernel() -> None:
    timings = warm_kernels()
    names = {timing.name for timing in timings}
    assert {"rsi", "macd", "bbands", "adx", "vwap", "analyze_chain"} <= names
    assert {"implied_vol (bsm)", "greeks (black76)", "ma(matype=8)"} <= names
    # Compiled: numba dispatchers now hold machine code for the types the services pass.
    for module, kernel in (("greeks", "_greeks_kernel"), ("implied_vol", "_implied_vol_kernel")):
        dispatcher = getattr(
            importlib.import_module(f"quantdesk.analytics.options.{module}"), kernel
        )
        assert dispatcher.signatures, kernel


@pytest.mark.db
async def test_not_ready_before_the_demo_has_quotes(settings: Settings) -> None:
    demo = settings.model_copy(update={"demo_data": True, "demo_tick_interval_s": 0.2})
    app = create_app(demo)
    async with app.router.lifespan_context(app):
        ctx = app.state.ctx
        quotes = QuoteService(ctx.cache, ctx.bus)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            first = await client.get("/health/ready")
            deadline = time.monotonic() + 60
            answer = first
            while answer.status_code != 200 and time.monotonic() < deadline:
                assert answer.status_code == 503
                assert answer.json()["failing"] == ["startup"]
                await asyncio.sleep(0.05)
                answer = await client.get("/health/ready")
            assert answer.status_code == 200
            # Ready means the README's chain call finds its quotes.
            assert await quotes.get("NSE:NIFTY 50") is not None
    assert first.status_code == 503, first.text
    assert "demo_quotes" in first.json()["pending"]
