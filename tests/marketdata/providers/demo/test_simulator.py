"""The tick simulator: consistent quotes, determinism, publication on the bus, app wiring."""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import AsyncIterator
from decimal import Decimal

import httpx
import pytest
from fastapi import FastAPI
from redis.asyncio import Redis

from quantdesk.app import create_app
from quantdesk.marketdata.domain import InstrumentType, OptionType, Quote
from quantdesk.marketdata.providers.demo.market import DemoMarket
from quantdesk.marketdata.providers.demo.simulator import DemoTicker, TickSimulator
from quantdesk.marketdata.quotes.service import QuoteService, decode_quote, quote_channel
from quantdesk.platform.bus import MemoryBus
from quantdesk.platform.cache import MemoryCache
from quantdesk.platform.context import AppContext
from quantdesk.settings import Settings
from tests.marketdata.providers.demo.conftest import ANCHOR
from tests.support.quiescence import assert_loop_quiesces

# The session before the anchor closed at 10:00 UTC on 2026-06-16; the simulator runs on.
NOW = dt.datetime(2026, 6, 17, 4, 0, tzinfo=dt.UTC)


def fixed_clock() -> dt.datetime:
    return NOW


def memory_simulator(market: DemoMarket, interval_s: float = 1.0) -> TickSimulator:
    return TickSimulator(
        market, QuoteService(MemoryCache(), MemoryBus()), interval_s=interval_s, clock=fixed_clock
    )


def test_first_step_quotes_everything_then_only_changes(market: DemoMarket) -> None:
    simulator = memory_simulator(market)
    first = simulator.step()
    live_series = [s for s in market.option_series if s.expiry >= ANCHOR]
    # 19 underlyings (4 on SIM), 22 futures (2 on SIM) and the options; the US exchanges
    # are closed at NOW, so theirs are the last close, published once.
    assert len(first) == 19 + 22 + sum(2 * s.strikes.shape[0] for s in live_series)
    second = simulator.step()
    assert 0 < len(second) < len(first)
    assert all(q.ts == NOW for q in second.values())
    assert simulator.book.get("NSE:NIFTY 50") == (
        second.get("NSE:NIFTY 50") or first["NSE:NIFTY 50"]
    )


def test_same_market_same_ticks(market: DemoMarket) -> None:
    a, b = memory_simulator(market), memory_simulator(market)
    for _ in range(5):
        assert a.step() == b.step()


def test_ticks_stay_consistent(market: DemoMarket) -> None:
    simulator = memory_simulator(market, interval_s=5.0)
    quotes: dict[str, Quote] = {}
    for _ in range(60):
        quotes.update(simulator.step())
    spot = float(quotes["NSE:NIFTY 50"].last)
    close = float(market.close_quote("NSE:NIFTY 50").last)
    # Five minutes of trading time at ~13-20% vol: a move of well under 2%.
    assert abs(math.log(spot / close)) < 0.02
    future = market.futures["NFO:NIFTY26JULFUT"]
    tau = (future.contract.expiry_close_ts - NOW.timestamp()) / (365 * 86_400)
    basis = math.log(float(quotes[future.instrument.key].last) / spot)
    assert basis == pytest.approx((0.06 - 0.012) * tau, abs=0.002)
    for key, quote in quotes.items():
        assert quote.last > 0
        if quote.bid is not None and quote.ask is not None:
            assert quote.bid <= quote.last <= quote.ask
        assert quote.prev_close is not None
        assert quote.change == quote.last - quote.prev_close
        instrument = market.instrument(key)
        if instrument.type is InstrumentType.OPTION and instrument.underlying == "NIFTY":
            assert instrument.expiry is not None
            strike = float(instrument.strike or 0)
            expiry_close = dt.datetime.combine(instrument.expiry, dt.time(10, 0), dt.UTC)
            t = (expiry_close - NOW).total_seconds() / (365 * 86_400)
            forward = spot * math.exp((0.06 - 0.012) * t)
            payoff = (
                forward - strike if instrument.option_type is OptionType.CALL else strike - forward
            )
            # No-arbitrage lower bound (discounted forward intrinsic), less rounding.
            assert float(quote.last) >= math.exp(-0.06 * t) * max(payoff, 0.0) - 0.1
    index = quotes["NSE:NIFTY 50"]
    assert index.bid is None
    # Open interest moves during the day, measured against the last close's.
    future_quote = quotes[future.instrument.key]
    assert future_quote.prev_oi == market.close_quote(future.instrument.key).oi
    assert future_quote.oi != future_quote.prev_oi
    for quote in quotes.values():
        tick = (
            Decimal("0.01")
            if quote.key.startswith("NASDAQ") or quote.key.startswith("NYSE")
            else Decimal("0.05")
        )
        assert quote.last % tick == 0
        assert quote.bid is None or quote.bid % tick == 0
    assert quotes["NSE:RELIANCE"].volume is not None
    assert quotes["NSE:RELIANCE"].volume > Decimal(0)


def test_rejects_a_non_positive_interval(market: DemoMarket) -> None:
    with pytest.raises(ValueError, match="positive"):
        memory_simulator(market, interval_s=0.0)


@pytest.fixture
async def ctx(settings: Settings) -> AsyncIterator[AppContext]:
    context = AppContext.build(settings)
    yield context
    await context.aclose()


async def test_quotes_a_cache_lost_are_stored_again_without_a_tick(market: DemoMarket) -> None:
    # Found by make chaos: after Redis restarted empty, a closed exchange's quotes (published
    # once, at the first step) never came back, and the NIFTY chain answered 422 until the
    # next session.
    def evening() -> dt.datetime:
        return dt.datetime(2026, 6, 17, 12, 0, tzinfo=dt.UTC)  # NSE and the US closed

    cache, bus = MemoryCache(), MemoryBus()
    simulator = TickSimulator(market, QuoteService(cache, bus), interval_s=5.0, clock=evening)
    await simulator.publish_step()
    close = await QuoteService(cache, bus).get("NSE:NIFTY 50")
    assert close is not None
    assert await simulator.refill({}) == 0  # nothing lost: one read, nothing written
    every_key = [i.key for i in market.instruments()]
    quoted = set(await QuoteService(cache, bus).get_many(every_key))
    assert len(quoted) > 800
    cache.clear()
    async with bus.subscribe([quote_channel("NSE:NIFTY 50")]) as subscription:
        await simulator.publish_step()  # every step at 5 s checks the cache
        assert await subscription.get(0.2) is None  # stored, not announced as a tick
    back = await QuoteService(cache, bus).get("NSE:NIFTY 50")
    assert back is not None
    assert (back.last, back.bid, back.ask, back.ts) == (close.last, close.bid, close.ask, close.ts)
    assert set(await QuoteService(cache, bus).get_many(every_key)) == quoted


async def test_publishes_quotes_on_the_bus(ctx: AppContext, market: DemoMarket) -> None:
    # At NOW NSE is open (the ticker follows the calendars, so the real clock would not do).
    simulator = TickSimulator(
        market,
        QuoteService(ctx.cache, ctx.bus),
        interval_s=0.05,
        redis=ctx.redis,
        clock=fixed_clock,
    )
    async with ctx.bus.subscribe([quote_channel("NSE:NIFTY 50")]) as subscription:
        simulator.start()
        try:
            first = await subscription.get(15)
            second = await subscription.get(15)
        finally:
            await simulator.stop()
    assert first is not None
    assert second is not None
    channel, payload = first
    assert channel == "quotes.NSE:NIFTY 50"
    one, two = decode_quote(payload), decode_quote(second[1])
    assert one.key == "NSE:NIFTY 50"
    assert two.ts >= one.ts
    cached = await QuoteService(ctx.cache, ctx.bus).get("NSE:NIFTY 50")
    assert cached is not None
    assert cached.ts >= two.ts


async def test_one_process_leads_when_redis_is_shared(ctx: AppContext, market: DemoMarket) -> None:
    quotes = QuoteService(ctx.cache, ctx.bus)
    first = TickSimulator(market, quotes, interval_s=0.5, redis=ctx.redis)
    second = TickSimulator(market, quotes, interval_s=0.5, redis=ctx.redis)
    if ctx.redis is None:
        # In-process deployment: no lease needed, every simulator leads.
        assert await first._lead()
        assert await second._lead()
        return
    assert isinstance(ctx.redis, Redis)
    assert await first._lead()
    assert not await second._lead()
    assert await first._lead()  # renewing
    await first.release()
    assert await second._lead()
    await second.release()


async def test_the_app_runs_the_simulator_when_demo_data_is_on(settings: Settings) -> None:
    demo = settings.model_copy(update={"demo_data": True, "demo_tick_interval_s": 0.05})
    app = create_app(demo)
    async with app.router.lifespan_context(app):
        ctx = app.state.ctx
        ticker = ctx.extensions["demo_ticker"]
        assert isinstance(ticker, DemoTicker)
        # SIM is always open, so its quotes move whenever the test runs.
        async with ctx.bus.subscribe([quote_channel("SIM:ALPHA")]) as subscription:
            message = await subscription.get(60)
        assert message is not None
        assert decode_quote(message[1]).key == "SIM:ALPHA"
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            assert (await client.get("/health/live")).status_code < 500
    assert "demo_ticker" not in ctx.extensions
    await assert_loop_quiesces()


async def test_the_app_does_not_tick_without_demo_data(app: FastAPI) -> None:
    assert "demo_ticker" not in app.state.ctx.extensions
