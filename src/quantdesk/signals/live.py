"""Live signals: ticks to closed bars to a model's new signal value, published on the bus.

A model goes live on an instrument while someone follows it (``follow``: the stream's
``signals`` channel does, for the model's owner).  This process then listens to the
instrument's quotes on the bus and builds bars from them (:mod:`quantdesk.marketdata.bars.live`,
on the exchange's sessions): the stored timeframe the model's bars are made of (1m for an
intraday model, 1d for a daily one) and the model's own.  When a bar closes:

1. a complete stored-timeframe bar is **stored** (an idempotent upsert into the bar store),
   so the chart, ``GET /api/v1/signals/...`` and backtests see it; a later backfill from the
   provider replaces it with the provider's own candle;
2. for a complete bar of a followed model's timeframe, the model's value for that bar is
   computed by the very code ``GET /api/v1/signals/{model}/{instrument}`` runs (the same
   window of bars, the same features, the same artifact), so the two agree exactly, and
   published on ``signals.<model_id>.<KEY>`` as the stream's ``signal`` frame.

The bar an instrument's first tick falls in (this process missed its beginning) is partial:
neither stored nor signalled.  Bars close on the feed's clock (the newest tick's time plus the time
since it came), ``CLOSE_GRACE_S`` after their end, so a quiet instrument's bar closes too and
a slightly late tick still counts.  Several processes may follow the same model: each
computes the same value from the same stored bars and the stream drops repeats by bar time.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import time
import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import orjson

from quantdesk.marketdata.bars.live import BarBuilder, LiveBar, SessionOf, SessionWindow
from quantdesk.marketdata.bars.repository import BarStore
from quantdesk.marketdata.bars.trading_sessions import calendar_for
from quantdesk.marketdata.domain import STORED_TIMEFRAMES, Exchange, Timeframe, parse_key
from quantdesk.marketdata.quotes.service import CHANNEL_PREFIX, decode_quote
from quantdesk.platform.context import AppContext
from quantdesk.platform.exceptions import InvalidInput
from quantdesk.platform.logging import get_logger
from quantdesk.platform.tasks import cancel_and_wait
from quantdesk.signals import service

log = get_logger("quantdesk.signals.live")

EXTENSION_KEY = "live_signals"
SIGNALS_PREFIX = "signals."
CLOSE_GRACE_S = 2
CLOCK_EVERY_S = 0.5
SERIES_LIMIT = 5000  # the window GET /signals/{model}/{instrument} serves by default


def signal_channel(model_id: uuid.UUID | str, key: str) -> str:
    """The bus channel carrying a model's live values on one instrument."""
    return f"{SIGNALS_PREFIX}{model_id}.{key}"


@dataclass(frozen=True, slots=True)
class LiveModel:
    model_id: uuid.UUID
    owner_id: uuid.UUID
    name: str
    version: int
    timeframe: Timeframe


def session_finder(exchange: Exchange) -> SessionOf:
    """The calendar's session holding an instant, as the bar builder wants it."""
    calendar = calendar_for(exchange)

    def session_of(ts: int) -> SessionWindow | None:
        at = dt.datetime.fromtimestamp(ts, dt.UTC)
        local = calendar.local_date(at)
        for day in (local - dt.timedelta(days=1), local):
            for session in calendar.sessions_on(day):
                if session.contains(at):
                    stamp = dt.datetime.combine(session.date, dt.time(), tzinfo=dt.UTC)
                    return SessionWindow(int(session.open_utc.timestamp()),
                                         int(session.close_utc.timestamp()),
                                         int(stamp.timestamp()))  # fmt: skip
        return None

    return session_of


def _width(timeframe: Timeframe) -> int | None:
    return None if timeframe is Timeframe.D1 else int(timeframe.duration.total_seconds())


def signal_document(model: LiveModel, key: str, t: int, values: dict[str, Any]) -> dict[str, Any]:
    stamp = dt.datetime.fromtimestamp(t, dt.UTC).isoformat().replace("+00:00", "Z")
    return {
        "type": "signal", "model": model.name, "model_id": str(model.model_id),
        "version": model.version, "instrument": key, "timeframe": model.timeframe.value,
        "t": t, "ts": stamp, "probability": values["probability"], "signal": values["signal"],
    }  # fmt: skip


class LiveSignals:
    def __init__(self, ctx: AppContext) -> None:
        self.ctx = ctx
        self.models: dict[uuid.UUID, LiveModel] = {}
        self.followers: dict[tuple[uuid.UUID, str], int] = {}  # (model, key) -> how many
        self._builders: dict[tuple[Exchange, Timeframe], BarBuilder] = {}
        self._listening: set[str] = set()
        # One bus subscription per follow that brought new instruments; released once none
        # of its instruments is followed.
        self._pumps: list[tuple[frozenset[str], asyncio.Task[None]]] = []
        self._closed: asyncio.Queue[tuple[Timeframe, LiveBar]] = asyncio.Queue()
        self._tasks: list[asyncio.Task[None]] = []
        self._feed: tuple[float, float] | None = None  # (newest tick ts, monotonic then)
        self.published = 0

    # --- who follows what ----------------------------------------------------------------
    async def follow(self, owner_id: uuid.UUID, ref: str, keys: Sequence[str]) -> LiveModel:
        """Put ``owner_id``'s model ``ref`` (id, or name: its latest version) live on
        ``keys``; ``NotFound`` for a model that is not theirs, ``InvalidInput`` for a
        weekly one (no live weekly bars)."""
        async with self.ctx.database.session() as db:
            row = await service.find_model(db, owner_id, ref, keys[0] if len(keys) == 1 else None)
            await service.instrument_rows(db, keys)
        timeframe = Timeframe(row.timeframe)
        if timeframe is Timeframe.W1:
            raise InvalidInput("a weekly model has no live bars", field="model")
        model = self.models.setdefault(
            row.id, LiveModel(row.id, owner_id, row.name, row.version, timeframe)
        )
        for key in keys:
            self.followers[(model.model_id, key)] = self.followers.get((model.model_id, key), 0) + 1
        new = [key for key in keys if key not in self._listening]
        if new:
            self._listening.update(new)
            live = asyncio.Event()
            pump = asyncio.create_task(self._pump(new, live), name="live-signals")
            self._pumps.append((frozenset(new), pump))
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(5.0):
                    await live.wait()
        return model

    def unfollow(self, model_id: uuid.UUID, keys: Sequence[str]) -> None:
        wanted = {key: self._timeframes(key) for key in keys}
        for key in keys:
            count = self.followers.get((model_id, key), 0) - 1
            if count > 0:
                self.followers[(model_id, key)] = count
            else:
                self.followers.pop((model_id, key), None)
        # A bar nobody builds any more is dropped: left forming, the clock would close it
        # without the ticks that came after, as if it were complete.
        for key, before in wanted.items():
            exchange, _ = parse_key(key)
            for timeframe in before - self._timeframes(key):
                builder = self._builders.get((exchange, timeframe))
                if builder is not None:
                    builder.forget(key)
        if not any(m == model_id for m, _ in self.followers):
            self.models.pop(model_id, None)
        followed = {key for _, key in self.followers}
        for pumped, pump in [(k, p) for k, p in self._pumps if not k & followed]:
            pump.cancel()
            self._pumps.remove((pumped, pump))
            self._listening -= pumped

    @property
    def listening(self) -> frozenset[str]:
        """The instruments whose quotes this process is subscribed to."""
        return frozenset(self._listening)

    def forming(self, key: str) -> dict[Timeframe, LiveBar]:
        """``key``'s bars being built now, by timeframe."""
        exchange, _ = parse_key(key)
        found = {tf: b.forming(key) for (ex, tf), b in self._builders.items() if ex is exchange}
        return {timeframe: bar for timeframe, bar in found.items() if bar is not None}

    def _timeframes(self, key: str) -> set[Timeframe]:
        wanted = {self.models[m].timeframe for m, k in self.followers if k == key}
        return wanted | {timeframe.stored_base for timeframe in wanted}

    # --- ticks to bars -------------------------------------------------------------------
    def _builder(self, exchange: Exchange, timeframe: Timeframe) -> BarBuilder:
        builder = self._builders.get((exchange, timeframe))
        if builder is None:
            builder = self._builders[(exchange, timeframe)] = BarBuilder(
                _width(timeframe), session_finder(exchange)
            )
        return builder

    async def _pump(self, keys: list[str], live: asyncio.Event) -> None:
        async with self.ctx.bus.subscribe([CHANNEL_PREFIX + key for key in keys]) as quotes:
            live.set()
            async for _, body in quotes:
                try:
                    quote = decode_quote(body)
                except (orjson.JSONDecodeError, KeyError, ValueError):
                    continue
                self.on_quote(quote.key, quote.ts, quote.last, quote.volume)

    def on_quote(
        self, key: str, at: dt.datetime, price: Decimal, day_volume: Decimal | None
    ) -> None:
        ts = at.timestamp()
        if self._feed is None or ts > self._feed[0]:
            self._feed = (ts, time.monotonic())
        exchange, _ = parse_key(key)
        closed = [
            (timeframe, bar)
            for timeframe in self._timeframes(key)
            for bar in self._builder(exchange, timeframe).on_tick(key, int(ts), price, day_volume)
        ]
        self._enqueue(closed)

    def feed_clock(self) -> float:
        if self._feed is None:
            return time.time()
        return self._feed[0] + (time.monotonic() - self._feed[1])

    def _enqueue(self, closed: list[tuple[Timeframe, LiveBar]]) -> None:
        # Stored bars first: a model bar's value is computed from the store.
        closed.sort(key=lambda item: (item[0] not in STORED_TIMEFRAMES, item[1].end))
        for item in closed:
            self._closed.put_nowait(item)

    async def _clock(self) -> None:
        while True:
            await asyncio.sleep(CLOCK_EVERY_S)
            now = int(self.feed_clock()) - CLOSE_GRACE_S
            closed = [(timeframe, bar) for (_, timeframe), builder in self._builders.items()
                      for bar in builder.close_due(now)]  # fmt: skip
            self._enqueue(closed)

    # --- closed bars to signals ----------------------------------------------------------
    async def _work(self) -> None:
        while True:
            timeframe, bar = await self._closed.get()
            try:
                await self.on_closed(timeframe, bar)
            except Exception as exc:  # the database is away: this bar is skipped, not retried
                log.warning("live bar not handled", key=bar.key, ts=bar.ts, error=str(exc))

    async def on_closed(self, timeframe: Timeframe, bar: LiveBar) -> None:
        if not bar.complete:
            return
        if timeframe in STORED_TIMEFRAMES:
            async with self.ctx.database.session(immediate=True) as db:
                await BarStore(db).bulk_load(bar.key, timeframe, [bar.as_bar()])
        for model_id, key in list(self.followers):
            model = self.models.get(model_id)
            if key == bar.key and model is not None and model.timeframe is timeframe:
                await self._signal(model, bar)

    async def _signal(self, model: LiveModel, bar: LiveBar) -> None:
        end = dt.datetime.fromtimestamp(bar.end, dt.UTC)
        async with self.ctx.database.session() as db:
            row, key, _chosen, bars, skip = await service.signal_inputs(
                db, model.owner_id, str(model.model_id), bar.key, model.timeframe, None, end,
                SERIES_LIMIT,
            )  # fmt: skip
        if bars is None:
            return
        t, values = await asyncio.to_thread(service.series_values, row, bars, skip)
        if not t or t[-1] != bar.ts:
            return  # the bar is not in the store as built (a coarser bar missing minutes)
        last = {name: column[-1] for name, column in values.items()}
        body = orjson.dumps(signal_document(model, key, bar.ts, last))
        await self.ctx.bus.publish(signal_channel(model.model_id, key), body)
        self.published += 1

    # --- life ----------------------------------------------------------------------------
    async def start(self) -> None:
        self._tasks += [asyncio.create_task(self._clock(), name="live-signals-clock"),
                        asyncio.create_task(self._work(), name="live-signals-work")]  # fmt: skip

    async def stop(self) -> None:
        await cancel_and_wait([*self._tasks, *(pump for _, pump in self._pumps)])
        self._tasks.clear()
        self._pumps.clear()


def live_signals(ctx: AppContext) -> LiveSignals | None:
    found = ctx.extensions.get(EXTENSION_KEY)
    return found if isinstance(found, LiveSignals) else None


@contextlib.asynccontextmanager
async def live_signals_lifespan(ctx: AppContext) -> AsyncIterator[None]:
    live = ctx.extensions[EXTENSION_KEY] = LiveSignals(ctx)
    await live.start()
    try:
        yield
    finally:
        ctx.extensions.pop(EXTENSION_KEY, None)
        await live.stop()


__all__ = ["LiveModel", "LiveSignals", "live_signals", "live_signals_lifespan", "signal_channel"]
