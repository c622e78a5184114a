"""The live tick simulator: moves the demo market's quotes on from the last close.

Every ``interval_s`` seconds each underlying takes one GBM step at its current conditional
volatility, correlated through its region's market factor, on a *trading-time* clock (one
wall-clock second counts as one second of a 6.5-hour session), so the ticks look like
market-hours ticks whenever the demo runs.  Futures follow at their cost-of-carry basis and
options are repriced on the last close's smile (sticky moneyness), so the quotes stay
mutually consistent: futures above spot by carry, options within no-arbitrage bounds.

Each instrument ticks only while its exchange's calendar has a session open: the demo's
NSE/NFO and US instruments follow their real calendars (nothing moves at night, at weekends
or on holidays), SIM, the simulated exchange, is open all day every day.  The first step
publishes the last close of every instrument whose exchange is closed, so quotes exist
from the start; after that a closed exchange's instruments stay as they are.  Should the
cache lose them (Redis restarted empty), the ticker stores every current quote again within
about five seconds.

An instrument an admin scripts (:mod:`.scripting`) is left alone: the ticker publishes
nothing for it until it is handed back.  A scripted underlying's price is taken from its
scripted quote, so its futures and options follow it, and the ticker resumes from it.

Quotes that changed are written through ``QuoteService`` (cache + bus) and into the
``LiveBook`` the demo provider reads.  With Redis (several app processes) only the holder
of a short lease runs the simulation, so every process streams the same ticks.

The random stream is keyed by the seed and the session date, so a run is reproducible
given the same number of steps.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal

import numpy as np
from redis.asyncio import Redis

from quantdesk.analytics.daycount import SECONDS_PER_YEAR
from quantdesk.marketdata.calendars import CalendarDataUnavailable, get_calendar
from quantdesk.marketdata.domain import Exchange, FloatArray, Quote
from quantdesk.marketdata.providers.demo.chains import Smile, option_values
from quantdesk.marketdata.providers.demo.futures import carry_factor
from quantdesk.marketdata.providers.demo.generator import rng
from quantdesk.marketdata.providers.demo.market import DemoMarket, FutureListing, OptionSeries
from quantdesk.marketdata.providers.demo.provider import LiveBook, today_utc
from quantdesk.marketdata.providers.demo.scripting import scripted_keys
from quantdesk.marketdata.providers.demo.universe import REGIONS, DemoUnderlying
from quantdesk.marketdata.quotes.service import QuoteService
from quantdesk.platform.context import AppContext
from quantdesk.platform.logging import get_logger
from quantdesk.platform.startup import startup_phases
from quantdesk.platform.tasks import cancel_and_wait

log = get_logger("quantdesk.marketdata.providers.demo.simulator")

_TRADING_SECONDS_PER_YEAR = 252 * 6.5 * 3600
_REFILL_CHECK_S = 5.0
_LEASE_KEY = "qd:demo:simulator"
# Renew the lease only if we still hold it (compare-and-expire, atomically).
_RELEASE = (
    "if redis.call('get', KEYS[1]) == ARGV[1] then "
    "return redis.call('del', KEYS[1]) else return 0 end"
)
_RENEW = (
    "if redis.call('get', KEYS[1]) == ARGV[1] then "
    "return redis.call('pexpire', KEYS[1], ARGV[2]) else return 0 end"
)

Clock = Callable[[], datetime]


def _utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(slots=True)
class _Underlying:
    spec: DemoUnderlying
    price: float
    vol: float
    volume: float
    prev_close: Decimal


@dataclass(slots=True)
class _Future:
    listing: FutureListing
    basis: float  # log basis over fair carry at the last close
    volume: float
    oi: float
    prev_oi: Decimal | None  # at the last close: the day's OI change is measured from it
    prev_close: Decimal


@dataclass(slots=True)
class _Series:
    series: OptionSeries
    smile: Smile
    volume_calls: FloatArray
    volume_puts: FloatArray
    oi_calls: FloatArray
    oi_puts: FloatArray
    prev_oi_calls: list[Decimal | None]
    prev_oi_puts: list[Decimal | None]
    prev_calls: list[Decimal | None]
    prev_puts: list[Decimal | None]


def _tick_round(value: float, tick: Decimal) -> Decimal:
    ticks = round(value / float(tick))
    return max(Decimal(ticks) * tick, tick)


class TickSimulator:
    """Steps the demo market and publishes the quotes that changed."""

    def __init__(
        self,
        market: DemoMarket,
        quotes: QuoteService,
        *,
        interval_s: float = 1.0,
        book: LiveBook | None = None,
        redis: Redis | None = None,
        clock: Clock = _utcnow,
    ) -> None:
        if interval_s <= 0:
            raise ValueError("interval_s must be positive")
        self.market = market
        self.quotes = quotes
        self.interval_s = interval_s
        self.book = book or LiveBook()
        self.clock = clock
        self.steps = 0
        self._redis = redis
        self._token = secrets.token_hex(8)
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self._rng = rng(market.seed, "ticks", market.requested_anchor.toordinal())
        # How often a step checks that the cache still holds the quotes: about every 5 s.
        self._refill_every = max(1, round(_REFILL_CHECK_S / interval_s))
        self._last: dict[str, Quote] = {}
        self._underlyings: list[_Underlying] = []
        self._futures: list[_Future] = []
        self._series: list[_Series] = []
        self._calendars = sorted({spec.calendar for spec in market.underlyings.values()})
        # The instruments an admin may script: the ticker asks the cache about these only.
        self.scriptable = [i.key for i in market.instruments() if i.exchange is Exchange.SIM]
        self._initialise()

    # --- state -----------------------------------------------------------------------
    def _initialise(self) -> None:
        market = self.market
        closing = market.close_quotes()
        self._last = dict(closing)
        for spec in market.underlyings.values():
            close = closing[spec.key]
            index = market.last_index(spec)
            self._underlyings.append(
                _Underlying(
                    spec=spec,
                    price=float(close.last),
                    vol=market.current_vol(spec, index),
                    volume=0.0,
                    prev_close=close.last,
                )
            )
        spot_close = {u.spec.key: u.price for u in self._underlyings}
        for key, listing in market.futures.items():
            if listing.contract.expiry_close_ts <= int(self.clock().timestamp()):
                continue  # settled at its expiry close: no more ticks
            close = closing[key]
            spec = listing.spec
            ts = float(market.sessions(spec).closes[market.last_index(spec)])
            fair = spot_close[spec.key] * float(carry_factor(listing.contract, np.array([ts]))[0])
            self._futures.append(
                _Future(
                    listing=listing,
                    basis=math.log(float(close.last) / fair),
                    volume=0.0,
                    oi=float(close.oi or 0),
                    prev_oi=close.oi,
                    prev_close=close.last,
                )
            )
        for series in market.option_series:
            spec = series.spec
            if series.expiry_close_ts <= int(self.clock().timestamp()):
                continue
            n = series.strikes.shape[0]
            self._series.append(
                _Series(
                    series=series,
                    smile=market.smile(spec, market.last_index(spec)),
                    volume_calls=np.zeros(n),
                    volume_puts=np.zeros(n),
                    oi_calls=np.array([float(closing[i.key].oi or 0) for i in series.calls]),
                    oi_puts=np.array([float(closing[i.key].oi or 0) for i in series.puts]),
                    prev_oi_calls=[closing[i.key].oi for i in series.calls],
                    prev_oi_puts=[closing[i.key].oi for i in series.puts],
                    prev_calls=[closing[i.key].last for i in series.calls],
                    prev_puts=[closing[i.key].last for i in series.puts],
                )
            )

    def _live_keys(self) -> list[tuple[str, str]]:
        """Every instrument the ticker moves, with its calendar."""
        found = [(u.spec.key, u.spec.calendar) for u in self._underlyings]
        found += [(f.listing.instrument.key, f.listing.spec.calendar) for f in self._futures]
        for state in self._series:
            calendar = state.series.spec.calendar
            found += [(i.key, calendar) for i in (*state.series.calls, *state.series.puts)]
        return found

    # --- one step --------------------------------------------------------------------
    def open_calendars(self, now: datetime) -> frozenset[str]:
        """The demo's calendars with a session open at ``now`` (a year past a calendar's
        data counts as closed: the demo market stops that exchange's clock there too)."""
        found: set[str] = set()
        for name in self._calendars:
            try:
                if get_calendar(name).is_open(now):
                    found.add(name)
            except CalendarDataUnavailable:
                continue
        return frozenset(found)

    def step(self, scripted: Mapping[str, Quote | None] | None = None) -> dict[str, Quote]:
        """Advance every instrument whose exchange is open by one tick; return the quotes
        whose values changed.

        ``scripted`` maps the keys an admin has scripted to their current quote (``None``
        when none is cached): those get no quote from the ticker, and a scripted
        underlying's price follows its quote.
        """
        now = self.clock()
        self.steps += 1
        scripted = scripted or {}
        is_open = self.open_calendars(now)
        dt_years = self.interval_s / _TRADING_SECONDS_PER_YEAR
        factors = {region: float(self._rng.standard_normal()) for region in REGIONS}
        changed: dict[str, Quote] = {}
        if self.steps == 1:
            # Closed exchanges: their last close, once, so every instrument has a quote.
            changed.update(
                (key, self._last[key])
                for key, calendar in self._live_keys()
                if calendar not in is_open and key not in scripted
            )
        for key in scripted:
            # Re-quoted in full when handed back, whatever the price is by then.
            self._last.pop(key, None)
        spots: dict[str, float] = {}
        for state in self._underlyings:
            spec = state.spec
            if spec.calendar not in is_open:
                spots[spec.key] = state.price
                continue
            if spec.key in scripted:
                quote = scripted[spec.key]
                if quote is not None:
                    state.price = float(quote.last)
                spots[spec.key] = state.price
                continue
            rho = spec.model.factor_loading
            shock = (
                rho * factors[spec.region] + math.sqrt(1 - rho * rho) * self._rng.standard_normal()
            )
            sd = state.vol * math.sqrt(dt_years)
            state.price *= math.exp(-0.5 * sd * sd + sd * shock)
            state.volume += (
                spec.model.daily_volume * self.interval_s / 23_400 * self._rng.lognormal(-0.08, 0.4)
            )
            spots[spec.key] = state.price
            is_index = spec.model.daily_volume == 0
            self._emit(
                changed,
                spec.key,
                now,
                state.price,
                spec.tick,
                state.prev_close,
                volume=None if is_index else state.volume,
                quoted=not is_index,
                size=Decimal(1),
            )
        stamp = np.array([now.timestamp()])
        for future in self._futures:
            listing = future.listing
            if listing.spec.calendar not in is_open:
                continue
            spot = spots[listing.spec.key]
            future.basis = 0.995 * future.basis + 2e-5 * self._rng.standard_normal()
            price = spot * float(carry_factor(listing.contract, stamp)[0]) * math.exp(future.basis)
            lot = listing.instrument.lot_size
            # Positions open and close all day; net OI drifts by a few lots a tick.
            churn = self._rng.poisson(3.0, 2)
            future.oi = max(future.oi + float(lot) * float(churn[0] - churn[1]), float(lot))
            future.volume += (
                listing.contract.daily_volume
                * self.interval_s
                / 22_500
                * self._rng.lognormal(-0.08, 0.4)
            )
            self._emit(
                changed,
                listing.instrument.key,
                now,
                price,
                listing.instrument.tick_size,
                future.prev_close,
                volume=round(future.volume / float(lot)) * float(lot),
                oi=Decimal(int(future.oi)),
                prev_oi=future.prev_oi,
                size=lot,
            )
        for series_state in self._series:
            if series_state.series.spec.calendar in is_open:
                self._step_series(series_state, spots[series_state.series.spec.key], now, changed)
        for key in scripted.keys() & changed.keys():
            del changed[key]
        self._last.update(changed)
        self.book.update(changed)
        self.book.update({key: quote for key, quote in scripted.items() if quote is not None})
        return changed

    def _step_series(
        self, state: _Series, spot: float, now: datetime, out: dict[str, Quote]
    ) -> None:
        series = state.series
        spec = series.spec
        t = (series.expiry_close_ts - now.timestamp()) / SECONDS_PER_YEAR
        if t <= 0:
            return
        lot = float(spec.derivatives.lot_size if spec.derivatives else 1)
        for call, instruments, volume, oi, prev_oi, prev in (
            (
                True,
                series.calls,
                state.volume_calls,
                state.oi_calls,
                state.prev_oi_calls,
                state.prev_calls,
            ),
            (
                False,
                series.puts,
                state.volume_puts,
                state.oi_puts,
                state.prev_oi_puts,
                state.prev_puts,
            ),
        ):
            prices = option_values(
                "call" if call else "put",
                spot,
                series.strikes,
                t,
                spec.rate,
                spec.dividend_yield,
                state.smile,
                float(spec.tick),
            )
            n = volume.shape[0]
            volume += self._rng.poisson(0.3, n) * lot
            np.maximum(
                oi + (self._rng.poisson(0.08, n) - self._rng.poisson(0.07, n)) * lot, 0.0, out=oi
            )
            for index, instrument in enumerate(instruments):
                self._emit(
                    out,
                    instrument.key,
                    now,
                    float(prices[index]),
                    spec.tick,
                    prev[index],
                    volume=float(volume[index]),
                    oi=Decimal(int(oi[index])),
                    prev_oi=prev_oi[index],
                    size=Decimal(int(lot)),
                )

    def _emit(
        self,
        out: dict[str, Quote],
        key: str,
        now: datetime,
        price: float,
        tick: Decimal,
        prev_close: Decimal | None,
        *,
        volume: float | None,
        oi: Decimal | None = None,
        prev_oi: Decimal | None = None,
        quoted: bool = True,
        size: Decimal,
    ) -> None:
        last = _tick_round(price, tick)
        previous = self._last.get(key)
        if previous is not None and previous.last == last and self.steps > 1:
            return
        spread = max(tick, _tick_round(float(last) * 0.0002, tick)) if quoted else None
        out[key] = Quote(
            key=key,
            last=last,
            ts=now,
            bid=max(last - spread, tick) if spread is not None else None,
            ask=last + spread if spread is not None else None,
            bid_size=size * int(self._rng.integers(1, 40)) if quoted else None,
            ask_size=size * int(self._rng.integers(1, 40)) if quoted else None,
            volume=Decimal(int(volume)) if volume is not None else None,
            oi=oi,
            change=last - prev_close if prev_close is not None else None,
            prev_close=prev_close,
            prev_oi=prev_oi,
        )

    # --- running ---------------------------------------------------------------------
    async def publish_step(self) -> int:
        scripted = await self.scripted()
        published = await self.quotes.publish(self.step(scripted).values())
        if self.steps % self._refill_every == 0:
            await self.refill(scripted)
        return published

    async def refill(self, scripted: Mapping[str, Quote | None]) -> int:
        """Store every instrument's current quote again if the cache has lost them (a Redis
        restarted empty): a closed exchange's quotes are published once, so nothing else
        would bring them back before its next session.  One cache read when nothing is lost."""
        current = {key: q for key, q in self._last.items() if key not in scripted}
        sentinel = next(iter(current), None)
        if sentinel is None or await self.quotes.get(sentinel) is not None:
            return 0
        log.warning("demo quotes missing from the cache; storing them again", quotes=len(current))
        return len(await self.quotes.store(current.values()))

    async def scripted(self) -> dict[str, Quote | None]:
        """The instruments an admin has scripted, with their current quotes."""
        keys = sorted(await scripted_keys(self.quotes.cache, self.scriptable))
        if not keys:
            return {}
        quotes = await self.quotes.get_many(keys)
        return {key: quotes.get(key) for key in keys}

    async def run(self, on_first_quotes: Callable[[], None] | None = None) -> None:
        """Tick until cancelled; a failed publish is logged and retried on the next tick.

        ``on_first_quotes`` is called once, when the market first has live quotes: after
        this process's first published step, or, when another process holds the lease,
        once that process's quotes are in the shared cache.
        """
        loop = asyncio.get_running_loop()
        next_at = loop.time()
        announce = on_first_quotes
        while not self._stopping:
            try:
                if await self._lead():
                    await self.publish_step()
                    quoting = True
                else:
                    quoting = announce is not None and await self._leader_is_quoting()
                if quoting and announce is not None:
                    announce()
                    announce = None
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # a Redis blip must not end the simulation
                log.warning("demo tick failed", error=str(exc))
            next_at = max(next_at + self.interval_s, loop.time())
            await asyncio.sleep(next_at - loop.time())

    async def _leader_is_quoting(self) -> bool:
        first = self._underlyings[0].spec.key if self._underlyings else None
        return first is None or await self.quotes.get(first) is not None

    async def _lead(self) -> bool:
        """Hold the cross-process lease (always true without Redis)."""
        if self._redis is None:
            return True
        ttl_ms = int(max(self.interval_s * 3, 2.0) * 1000)
        renewed = await self._redis.eval(_RENEW, 1, _LEASE_KEY, self._token, ttl_ms)
        if renewed:
            return True
        return bool(await self._redis.set(_LEASE_KEY, self._token, nx=True, px=ttl_ms))

    def start(self) -> asyncio.Task[None]:
        if self._task is None or self._task.done():
            self._stopping = False
            self._task = asyncio.create_task(self.run(), name="demo-tick-simulator")
        return self._task

    async def stop(self) -> None:
        self._stopping = True
        task, self._task = self._task, None
        if task is not None:
            await cancel_and_wait(task)
        await self.release()

    async def release(self) -> None:
        """Give up the lease so another process can take over at once."""
        if self._redis is not None:
            with contextlib.suppress(Exception):
                await self._redis.eval(_RELEASE, 1, _LEASE_KEY, self._token)


class DemoTicker:
    """What the app's lifespan runs: builds the demo market off the event loop (a second
    or two of NumPy and calendar work), then ticks until stopped.  A failure to build is
    logged, never fatal: the API serves without moving quotes."""

    def __init__(self, ctx: AppContext, *, book: LiveBook | None = None) -> None:
        self.ctx = ctx
        self.book = book or LiveBook()
        self.simulator: TickSimulator | None = None
        self.ready = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self._task is None:
            # Begun here, before the app serves: readiness waits for the first quotes.
            phases = startup_phases(self.ctx)
            phases.begin("demo_market", "building the demo market")
            phases.begin("demo_quotes", "waiting for the demo ticker's first quotes")
            self._task = asyncio.create_task(self._main(), name="demo-ticker")

    async def _main(self) -> None:
        settings = self.ctx.settings
        phases = startup_phases(self.ctx)
        try:
            market = await asyncio.to_thread(DemoMarket, settings.demo_seed, today_utc())
        except Exception as exc:
            log.error("demo market unavailable; quotes will not move", error=str(exc))
            phases.end("demo_market", error=str(exc))
            phases.end("demo_quotes", error="no demo market")
            return
        phases.end("demo_market", instruments=len(market.instruments()))
        self.simulator = TickSimulator(
            market,
            QuoteService(self.ctx.cache, self.ctx.bus),
            interval_s=settings.demo_tick_interval_s,
            book=self.book,
            redis=self.ctx.redis,
        )
        self.ready.set()
        await self.simulator.run(on_first_quotes=lambda: phases.end("demo_quotes"))

    async def stop(self) -> None:
        task, self._task = self._task, None
        if self.simulator is not None:
            await self.simulator.stop()
        if task is not None:
            await cancel_and_wait(task)
