"""The Kite feature's lifespan: the ticker, what it subscribes to, and the daily dump.

The ticker runs when ``QUANTDESK_KITE_API_KEY`` is set and ``QUANTDESK_KITE_TICKER`` is on.  Kite
allows three ticker connections per API key, so with several app processes only the holder
of a short Redis lease (``qd:kite:ticker``) runs the ticker; the others get its quotes
through the bus and the cache like any subscriber.  Every ``refresh_s`` the leader works out
what to subscribe to:

* the instruments of open paper orders (the ``orders`` table by name: status not terminal),
  so matching sees every quote it needs;
* ``QUANTDESK_KITE_TICKER_INSTRUMENTS``, a standing watch list (indices, say);
* the instruments the stream's clients subscribe to (the stream's tick hub in each process)
  and every source registered with :func:`register_key_source` (an async callable returning
  instrument keys).  These live in each process, so with Redis every process writes its set
  to the hash ``qd:kite:wanted`` each round and the leader takes the union of the fresh ones.

Keys map to instrument tokens through the instrument master (``TokenMap``).

The instruments dump has its own lifespan task, ``KiteInstrumentsDaily``, independent of the
ticker (it runs with ``QUANTDESK_KITE_TICKER=false`` too, when
``QUANTDESK_KITE_INSTRUMENTS_DAILY`` is on).  Once a day, after Kite publishes it (08:30
IST), one process (the holder of the lease ``qd:kite:instruments``) imports it into the
master: skipped when the dump is byte-for-byte the last one imported, an upsert otherwise
(rows inserted, updated or left alone), then the ticker's token map is rebuilt.  Parsing a
dump costs seconds of CPU, so it runs in a worker thread, off the event loop; a dump that
does not import (a bad row, Kite down) is tried again 30 minutes later, not every minute.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import hashlib
import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from contextlib import asynccontextmanager
from typing import Any, Final

import orjson
import sqlalchemy as sa

from quantdesk.marketdata.domain import make_key, parse_key
from quantdesk.marketdata.instruments.importers import (
    ImportFormat,
    ImportReport,
    parse_instruments,
)
from quantdesk.marketdata.instruments.service import InstrumentService
from quantdesk.marketdata.providers.kite.auth import IST, KiteTokenStore, TokenSource
from quantdesk.marketdata.providers.kite.feed import (
    TickPublisher,
    TokenMap,
    previous_session_oi,
)
from quantdesk.marketdata.providers.kite.protocol import Mode
from quantdesk.marketdata.providers.kite.provider import DUMP_READY, KiteProvider
from quantdesk.marketdata.providers.kite.ticker import KiteTicker
from quantdesk.marketdata.providers.setup import providers_of
from quantdesk.marketdata.quotes.service import QuoteService
from quantdesk.platform.context import AppContext
from quantdesk.platform.db import Database
from quantdesk.platform.exceptions import QuantdeskError
from quantdesk.platform.logging import get_logger
from quantdesk.platform.tasks import cancel_and_wait
from quantdesk.security.pii import PiiCipher
from quantdesk.settings import Settings
from quantdesk.trading.engine.types import TERMINAL_STATUSES

log = get_logger(__name__)

KITE_FEED: Final = "kite_feed"
KITE_INSTRUMENTS: Final = "kite_instruments"
KEY_SOURCES: Final = "kite_key_sources"
_LEASE_KEY: Final = "qd:kite:ticker"
_IMPORT_LEASE_KEY: Final = "qd:kite:instruments"
_WANTED_KEY: Final = "qd:kite:wanted"
STREAM_EXTENSION: Final = "stream"  # quantdesk.stream.service.EXTENSION_KEY
_DUMP_HASH_KEY: Final = "kite:instruments:sha256"
_DUMP_DAY_KEY: Final = "kite:instruments:day"
IMPORT_RETRY: Final = dt.timedelta(minutes=30)
# Derivatives segments, whose previous-session OI the chain's OI-change readings need.
_DERIVATIVES_PREFIXES: Final = ("NFO:", "BFO:", "MCX:", "CDS:", "BCD:")
_ORDERS = sa.table("orders", sa.column("instrument"), sa.column("status"))
_RENEW: Final = (
    "if redis.call('get', KEYS[1]) == ARGV[1] then "
    "return redis.call('pexpire', KEYS[1], ARGV[2]) else return 0 end"
)
_RELEASE: Final = (
    "if redis.call('get', KEYS[1]) == ARGV[1] then "
    "return redis.call('del', KEYS[1]) else return 0 end"
)

KeySource = Callable[[], Awaitable[Iterable[str]]]
Clock = Callable[[], dt.datetime]


def register_key_source(ctx: AppContext, source: KeySource) -> None:
    """Have the Kite ticker also subscribe to the keys ``source`` returns (polled)."""
    ctx.extensions.setdefault(KEY_SOURCES, []).append(source)


def token_store(settings: Settings, database: Database) -> KiteTokenStore:
    if settings.kite_api_key is None:
        raise QuantdeskError("QUANTDESK_KITE_API_KEY is not set")
    return KiteTokenStore(
        database, PiiCipher.from_settings(settings), settings.kite_api_key.get_secret_value()
    )


def _canonical(keys: Iterable[str]) -> set[str]:
    found: set[str] = set()
    for key in keys:
        with contextlib.suppress(ValueError):
            found.add(make_key(*parse_key(key)))
    return found


async def open_order_keys(database: Database) -> set[str]:
    async with database.session() as db:
        rows = await db.execute(
            sa.select(_ORDERS.c.instrument)
            .where(_ORDERS.c.status.not_in(sorted(TERMINAL_STATUSES)))
            .distinct()
        )
        return _canonical(str(row[0]) for row in rows)


class Lease:
    """A short Redis lease: at most one process holds ``key`` (always held without Redis)."""

    def __init__(self, ctx: AppContext, key: str, ttl_s: float) -> None:
        self.ctx = ctx
        self.key = key
        self.ttl_ms = int(ttl_s * 1000)
        self.holder = secrets.token_hex(8)
        self.held = False

    async def take(self) -> bool:
        """Renew the lease if ours, else take it if free; whether we hold it now."""
        redis = self.ctx.redis
        if redis is None:
            self.held = True
            return True
        try:
            if await redis.eval(_RENEW, 1, self.key, self.holder, self.ttl_ms):
                self.held = True
            else:
                self.held = bool(await redis.set(self.key, self.holder, nx=True, px=self.ttl_ms))
        except Exception:  # Redis down: keep what we had, never two holders on purpose
            return self.held
        return self.held

    async def release(self) -> None:
        if self.ctx.redis is not None and self.held:
            with contextlib.suppress(Exception):
                await self.ctx.redis.eval(_RELEASE, 1, self.key, self.holder)
        self.held = False


def kite_provider(ctx: AppContext) -> KiteProvider:
    """The app's ``kite`` provider: one set of rate limiters per process for the key."""
    provider = providers_of(ctx).get(KiteProvider.name)
    if not isinstance(provider, KiteProvider):  # pragma: no cover - setup registers it
        raise TypeError("the registry's kite provider is not a KiteProvider")
    return provider


def _ist_now() -> dt.datetime:
    return dt.datetime.now(IST)


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


class KiteInstrumentsDaily:
    """The daily instruments import as its own task; see the module docstring.

    ``now`` is the clock the schedule reads (tests pass their own); ``step`` is one look
    at it, ``run`` looks every ``check_s``.
    """

    def __init__(self, ctx: AppContext, *, now: Clock = _ist_now, check_s: float = 60.0) -> None:
        self.ctx = ctx
        self.now = now
        self.check_s = check_s
        self.store = token_store(ctx.settings, ctx.database)
        self.tokens = TokenSource(self.store)
        # The import of a big dump takes a while: the lease outlives several checks.
        self.lease = Lease(ctx, _IMPORT_LEASE_KEY, max(check_s * 3, 600.0))
        self.on_imported: list[Callable[[], Awaitable[None]]] = []
        self.last_import: dt.date | None = None
        self.retry_at: dt.datetime | None = None
        self.last_outcome: str | None = None
        self._task: asyncio.Task[None] | None = None

    def due(self, now: dt.datetime) -> bool:
        local = now.astimezone(IST)
        if local.time() < DUMP_READY or self.last_import == local.date():
            return False
        return self.retry_at is None or now >= self.retry_at

    async def step(self) -> str:
        """One look at the clock: ``not_due``, ``not_leading``, ``no_session``,
        ``imported``, ``unchanged`` or ``failed`` (tried again after ``IMPORT_RETRY``)."""
        now = self.now()
        if not self.due(now):
            return "not_due"
        if not await self.lease.take():
            return "not_leading"
        today = now.astimezone(IST).date().isoformat()
        if await self.ctx.cache.get(_DUMP_DAY_KEY) == today.encode():
            self.last_import = now.astimezone(IST).date()  # another process did it today
            return "not_due"
        if await self.tokens.current() is None:
            return "no_session"  # looked at again next check: a login may come any minute
        try:
            outcome = await self.import_instruments()
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            # Not on every check: downloading and parsing a dump costs seconds.
            self.retry_at = now + IMPORT_RETRY
            detail = exc.detail if isinstance(exc, QuantdeskError) else type(exc).__name__
            log.warning("kite_instruments_import_failed", error=detail[:200])
            return "failed"
        self.last_import = now.astimezone(IST).date()
        self.retry_at = None
        await self.ctx.cache.set(_DUMP_DAY_KEY, today.encode(), ttl_s=2 * 86_400)
        return outcome

    async def import_instruments(self, *, force: bool = False) -> str:
        """Fetch today's dump and upsert it into the master (skipped when unchanged)."""
        text = await kite_provider(self.ctx).instruments_csv()
        digest = await asyncio.to_thread(_sha256, text)
        if not force and await self.ctx.cache.get(_DUMP_HASH_KEY) == digest.encode():
            return "unchanged"
        parsed = await asyncio.to_thread(parse_instruments, text, ImportFormat.KITE)
        async with self.ctx.database.session(immediate=True) as db:
            counts = await InstrumentService(db).upsert_many(parsed.instruments)
        report = ImportReport.of(parsed, counts)
        await self.ctx.cache.set(_DUMP_HASH_KEY, digest.encode(), ttl_s=2 * 86_400)
        for hook in self.on_imported:
            await hook()
        log.info(
            "kite_instruments_imported",
            inserted=report.inserted,
            updated=report.updated,
            unchanged=report.unchanged,
            skipped=report.skipped,
        )
        return "imported"

    async def run(self) -> None:
        while True:
            try:
                self.last_outcome = await self.step()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the database or Redis blinked: next check
                log.warning("kite_instruments_check_failed", error=type(exc).__name__)
            await asyncio.sleep(self.check_s)

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self.run(), name="kite-instruments-daily")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            await cancel_and_wait(task)
        await self.lease.release()


class KiteFeed:
    """The ticker and its subscriptions; see the module docstring."""

    def __init__(
        self,
        ctx: AppContext,
        *,
        refresh_s: float = 5.0,
        ticker_options: dict[str, Any] | None = None,
    ) -> None:
        settings = ctx.settings
        if settings.kite_api_key is None:
            raise ValueError("the Kite feed needs QUANTDESK_KITE_API_KEY")
        self.ctx = ctx
        self.refresh_s = refresh_s
        self.store = token_store(settings, ctx.database)
        self.tokens = TokenSource(self.store)
        self.api_key = settings.kite_api_key.get_secret_value()
        self.mode = Mode(settings.kite_ticker_mode)
        self.token_map = TokenMap()
        self.publisher = TickPublisher(QuoteService(ctx.cache, ctx.bus), ctx.bus, self.token_map)
        self.ticker = KiteTicker(
            self.api_key,
            self.tokens,
            self.publisher,
            url=settings.kite_ticker_url,
            **(ticker_options or {}),
        )
        self.lease = Lease(ctx, _LEASE_KEY, max(refresh_s * 3, 5.0))
        self._map_loaded_at: float | None = None
        self._prev_oi_day: dt.date | None = None
        self._prev_oi_looked_up: set[int] = set()
        self._task: asyncio.Task[None] | None = None

    @property
    def leading(self) -> bool:
        return self.lease.held

    # ------------------------------------------------------------------ the work

    async def local_keys(self) -> set[str]:
        """What this process's stream clients and registered sources want."""
        keys: set[str] = set()
        stream = self.ctx.extensions.get(STREAM_EXTENSION)
        subscribers = getattr(getattr(stream, "ticks", None), "subscribers", None)
        if isinstance(subscribers, dict):
            keys |= _canonical(str(key) for key in subscribers)
        for source in self.ctx.extensions.get(KEY_SOURCES, []):
            try:
                keys |= _canonical(await source())
            except Exception as exc:  # one broken source must not stop the others
                log.warning("kite_key_source_failed", error=type(exc).__name__)
        return keys

    async def share_local_keys(self) -> set[str]:
        """Publish this process's wanted keys (with Redis); the union of every live process's."""
        keys = await self.local_keys()
        redis = self.ctx.redis
        if redis is None:
            return keys
        now = time.time()
        try:
            await redis.hset(
                _WANTED_KEY, self.lease.holder, orjson.dumps({"at": now, "keys": sorted(keys)})
            )
            await redis.expire(_WANTED_KEY, int(self.refresh_s * 6) + 1)
            if not self.leading:
                return keys
            for field, raw in (await redis.hgetall(_WANTED_KEY)).items():
                entry = orjson.loads(raw)
                if now - float(entry["at"]) > self.refresh_s * 3:
                    await redis.hdel(_WANTED_KEY, field)  # a process that went away
                    continue
                keys |= _canonical(entry["keys"])
        except Exception as exc:  # Redis blinked: this round, this process's keys only
            log.warning("kite_wanted_keys_unshared", error=type(exc).__name__)
        return keys

    async def wanted_keys(self) -> set[str]:
        keys = _canonical(self.ctx.settings.kite_ticker_instruments)
        keys |= await open_order_keys(self.ctx.database)
        return keys | await self.share_local_keys()

    async def reload_tokens(self) -> None:
        async with self.ctx.database.session() as db:
            fresh = await TokenMap.load(db)
        self.token_map.by_token, self.token_map.by_key = fresh.by_token, fresh.by_key
        self._map_loaded_at = asyncio.get_running_loop().time()

    async def refresh_subscriptions(self) -> None:
        keys = await self.wanted_keys()
        now = asyncio.get_running_loop().time()
        # Rebuilt each minute, and sooner (at most every 5 s) when a wanted key is unknown.
        age = None if self._map_loaded_at is None else now - self._map_loaded_at
        unknown = any(key not in self.token_map.by_key for key in keys)
        if age is None or age > 60 or (unknown and age > 5):
            await self.reload_tokens()
        wanted = {self.token_map.by_key[k]: self.mode for k in keys if k in self.token_map.by_key}
        await self._load_prev_oi(wanted)
        self.ticker.subscribe(wanted)

    async def _load_prev_oi(self, tokens: Iterable[int]) -> None:
        """Yesterday's closing OI of newly wanted derivatives, from the stored daily bars."""
        today = dt.datetime.now(IST).date()
        if self._prev_oi_day != today:
            self.publisher.prev_oi.clear()
            self._prev_oi_looked_up.clear()
            self._prev_oi_day = today
        keys = {
            key: token
            for token in tokens
            if token not in self._prev_oi_looked_up
            and (key := self.token_map.by_token.get(token, "")).startswith(_DERIVATIVES_PREFIXES)
        }
        if not keys:
            return
        async with self.ctx.database.session() as db:
            found = await previous_session_oi(db, keys, today)
        for key, oi in found.items():
            self.publisher.prev_oi[keys[key]] = oi
        self._prev_oi_looked_up.update(keys.values())

    async def step(self) -> None:
        was_leading = self.leading
        lead = await self.lease.take()
        if lead and not was_leading:
            log.info("kite_ticker_leading")
            self.ticker.start()
        elif not lead and was_leading:
            log.info("kite_ticker_lease_lost")
            await self.ticker.stop()
        if lead:
            await self.refresh_subscriptions()
        else:
            await self.share_local_keys()

    async def run(self) -> None:
        while True:
            try:
                await self.step()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the database blinked: try again next round
                log.warning("kite_feed_step_failed", error=type(exc).__name__)
            await asyncio.sleep(self.refresh_s)

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self.run(), name="kite-feed")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            await cancel_and_wait(task)
        await self.ticker.stop()
        await self.lease.release()
        if self.ctx.redis is not None:
            with contextlib.suppress(Exception):
                await self.ctx.redis.hdel(_WANTED_KEY, self.lease.holder)


@asynccontextmanager
async def kite_feed_lifespan(ctx: AppContext) -> AsyncIterator[None]:
    """The ticker (``QUANTDESK_KITE_TICKER``) and, independently, the daily instruments
    import (``QUANTDESK_KITE_INSTRUMENTS_DAILY``), each when Kite is configured."""
    settings = ctx.settings
    if settings.kite_api_key is None:
        yield
        return
    async with contextlib.AsyncExitStack() as running:
        feed: KiteFeed | None = None
        if settings.kite_ticker:
            feed = KiteFeed(ctx)
            ctx.extensions[KITE_FEED] = feed
            running.callback(ctx.extensions.pop, KITE_FEED, None)
            feed.start()
            running.push_async_callback(feed.stop)
        if settings.kite_instruments_daily:
            daily = KiteInstrumentsDaily(ctx)
            if feed is not None:
                daily.on_imported.append(feed.reload_tokens)
            ctx.extensions[KITE_INSTRUMENTS] = daily
            running.callback(ctx.extensions.pop, KITE_INSTRUMENTS, None)
            daily.start()
            running.push_async_callback(daily.stop)
        yield
