"""The trading kill switch: admins halt new orders for the whole system, one exchange or one
instrument, and lift the halt again.

The order path asks one question, ``await ensure_trading_allowed(ctx, instrument_key)``,
which raises ``TradingHalted`` (a 409 problem naming the scope and the reason) while a halt
covers the instrument.  Cancels are never halted: they only take risk off.

How a halt reaches every process within a second:

- The truth is the ``trading_halts`` table (``ops/models.py``): a halt is a row, committed
  with its security event in one unit of work.
- Each process keeps a snapshot of the active halts and answers from it: a dictionary
  lookup on the order path, no query.  The snapshot is reloaded when it is older than
  ``CACHE_TTL_S`` (0.5 s), one query per process at a time, so even with Redis down a halt
  is in force everywhere less than a second after it committed.
- After the commit the halting process drops its own snapshot and publishes the change on
  the bus (``ops.trading_halts``: Redis pub/sub across processes); every process drops its
  snapshot on that message, so with Redis up a halt is in force within milliseconds.  The
  same message is what the stream relays to clients (its ``status`` channel).

Metrics: ``quantdesk_trading_halts_active{scope}`` (this process's view, refreshed at least
every ``REFRESH_S``) and ``quantdesk_orders_halted_total{scope}`` (orders refused).

Hand-written rather than a feature-flag library: the flag service libraries (flipt,
unleash, openfeature providers) need a server of their own or poll on intervals of many
seconds; this is one table, one cached read and one pub/sub message.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import math
import time
import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import orjson
import structlog
from prometheus_client import Counter, Gauge
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from quantdesk.marketdata.domain import Exchange, parse_key
from quantdesk.marketdata.instruments.service import InstrumentService
from quantdesk.ops.models import TradingHalt
from quantdesk.platform.client import ClientInfo
from quantdesk.platform.context import AppContext
from quantdesk.platform.db import after_commit, utcnow
from quantdesk.platform.exceptions import Conflict, InvalidInput, NotFound
from quantdesk.platform.tasks import cancel_and_wait
from quantdesk.security.audit import SecurityEventType, record_security_event

log = structlog.get_logger("quantdesk.ops")

CHANNEL = "ops.trading_halts"
# A snapshot older than this is reloaded before it answers (the bound without pub/sub).
CACHE_TTL_S = 0.5
# The background follower refreshes the snapshot (and so the gauge) at least this often.
REFRESH_S = 5.0
EXTENSION = "kill_switch"


class HaltScope(StrEnum):
    ALL = "all"
    EXCHANGE = "exchange"
    INSTRUMENT = "instrument"


class TradingHalted(Conflict):
    """A new order refused because an administrator halted trading where it would trade."""

    type_slug = "trading-halted"
    title = "Trading halted"


@dataclass(frozen=True, slots=True)
class ActiveHalt:
    id: uuid.UUID
    scope: HaltScope
    target: str
    reason: str
    halted_at: dt.datetime

    def describe(self) -> str:
        where = {
            HaltScope.ALL: "for the whole system",
            HaltScope.EXCHANGE: f"on exchange {self.target}",
            HaltScope.INSTRUMENT: f"for {self.target}",
        }[self.scope]
        return f"new orders are halted {where}: {self.reason}"


@dataclass(frozen=True, slots=True)
class HaltSnapshot:
    everything: ActiveHalt | None = None
    exchanges: dict[str, ActiveHalt] = field(default_factory=dict)
    instruments: dict[str, ActiveHalt] = field(default_factory=dict)

    @classmethod
    def of(cls, halts: Sequence[ActiveHalt]) -> HaltSnapshot:
        everything = None
        exchanges: dict[str, ActiveHalt] = {}
        instruments: dict[str, ActiveHalt] = {}
        # Newest first: when one key has two halts (two admins at once), the oldest is
        # written last and is the one reported.
        for halt in sorted(halts, key=lambda h: h.halted_at, reverse=True):
            if halt.scope is HaltScope.ALL:
                everything = halt
            elif halt.scope is HaltScope.EXCHANGE:
                exchanges[halt.target] = halt
            else:
                instruments[halt.target] = halt
        return cls(everything, exchanges, instruments)

    def blocking(self, instrument_key: str) -> ActiveHalt | None:
        """The widest halt covering ``instrument_key`` (canonical ``EXCHANGE:SYMBOL``)."""
        if self.everything is not None:
            return self.everything
        if not self.exchanges and not self.instruments:
            return None
        exchange = instrument_key.partition(":")[0]
        return self.exchanges.get(exchange) or self.instruments.get(instrument_key)

    def halts(self) -> list[ActiveHalt]:
        """Every halt in force, oldest first."""
        found = [*self.exchanges.values(), *self.instruments.values()]
        if self.everything is not None:
            found.append(self.everything)
        return sorted(found, key=lambda h: h.halted_at)

    def counts(self) -> dict[HaltScope, int]:
        return {
            HaltScope.ALL: int(self.everything is not None),
            HaltScope.EXCHANGE: len(self.exchanges),
            HaltScope.INSTRUMENT: len(self.instruments),
        }


class KillSwitch:
    """One process's view of the active halts (one per app, in ``ctx.extensions``)."""

    def __init__(self, ctx: AppContext) -> None:
        self._ctx = ctx
        self._snapshot = HaltSnapshot()
        self._loaded_at = -math.inf
        self._reload = asyncio.Lock()
        # Bumped by every invalidation: a load that started before one is not trusted.
        self.generation = 0
        registry = ctx.metrics.registry
        self._active = Gauge(
            "quantdesk_trading_halts_active",
            "Trading halts in force, by scope (this process's view).",
            ["scope"],
            registry=registry,
        )
        self._refused = Counter(
            "quantdesk_orders_halted",
            "New orders refused by the kill switch, by the scope of the halt.",
            ["scope"],
            registry=registry,
        )
        for scope in HaltScope:
            self._active.labels(scope.value).set(0)
            self._refused.labels(scope.value)

    def invalidate(self) -> None:
        self._loaded_at = -math.inf
        self.generation += 1

    async def snapshot(self) -> HaltSnapshot:
        if time.monotonic() - self._loaded_at < CACHE_TTL_S:
            return self._snapshot
        async with self._reload:
            if time.monotonic() - self._loaded_at >= CACHE_TTL_S:
                await self.reload()
        return self._snapshot

    async def reload(self) -> HaltSnapshot:
        # A read unit of work of its own, never the caller's: on SQLite the caller may hold
        # the write lock, and a request waiting here for it would wait on itself.
        started, generation = time.monotonic(), self.generation
        async with self._ctx.database.session() as db:
            rows = (
                await db.scalars(select(TradingHalt).where(TradingHalt.resumed_at.is_(None)))
            ).all()
        snapshot = HaltSnapshot.of([_active(row) for row in rows])
        self._snapshot = snapshot
        if generation == self.generation:
            self._loaded_at = started
        for scope, count in snapshot.counts().items():
            self._active.labels(scope.value).set(count)
        return snapshot

    async def check(self, instrument_key: str) -> None:
        halt = (await self.snapshot()).blocking(instrument_key)
        if halt is not None:
            self._refused.labels(halt.scope.value).inc()
            raise TradingHalted(
                halt.describe(),
                scope=halt.scope.value,
                target=halt.target or None,
                reason=halt.reason,
                halt_id=str(halt.id),
            )

    async def announce(self, action: str, halt: TradingHalt) -> None:
        """After the commit: drop this process's snapshot and tell the others."""
        self.invalidate()
        message = {
            "type": f"trading.{action}",
            "halt_id": str(halt.id),
            "scope": halt.scope,
            "target": halt.target or None,
            "reason": halt.reason,
            "at": (halt.resumed_at if action == "resumed" else halt.halted_at),
        }
        try:
            await self._ctx.bus.publish(CHANNEL, orjson.dumps(message))
        except Exception:  # the row is committed; other processes see it within CACHE_TTL_S
            log.warning("kill_switch_publish_failed", exc_info=True)

    async def follow(self) -> None:
        """Drop the snapshot on every change another process announces; refresh the gauge."""
        async with self._ctx.bus.subscribe([CHANNEL]) as subscription:
            while True:
                message = await subscription.get(REFRESH_S)
                self.invalidate()
                if message is None:
                    try:
                        await self.reload()
                    except Exception:  # the database is away: the order path says so itself
                        log.debug("kill_switch_refresh_failed", exc_info=True)


def kill_switch(ctx: AppContext) -> KillSwitch:
    switch = ctx.extensions.get(EXTENSION)
    if switch is None:
        switch = ctx.extensions[EXTENSION] = KillSwitch(ctx)
    assert isinstance(switch, KillSwitch)  # noqa: S101 - only this module sets it
    return switch


async def ensure_trading_allowed(ctx: AppContext, instrument_key: str) -> None:
    """Raise ``TradingHalted`` when a halt covers ``instrument_key`` (``EXCHANGE:SYMBOL``).

    The order path calls this before it writes a new order.  It answers from a snapshot at
    most ``CACHE_TTL_S`` old (dropped at once when a halt is announced), so it costs a
    dictionary lookup; twice a second per process it costs one small query.
    """
    await kill_switch(ctx).check(instrument_key.strip().upper())


@asynccontextmanager
async def kill_switch_lifespan(ctx: AppContext) -> AsyncIterator[None]:
    switch = kill_switch(ctx)
    task = asyncio.create_task(switch.follow(), name="kill-switch-follower")
    try:
        yield
    finally:
        await cancel_and_wait(task)


# --- use cases -----------------------------------------------------------------------------
async def canonical_target(db: AsyncSession, scope: HaltScope, target: str | None) -> str:
    """The stored form of a halt's target, validated: '' for all, an exchange code, or an
    instrument key that names a known instrument (a typo must not halt nothing)."""
    value = (target or "").strip()
    if scope is HaltScope.ALL:
        if value:
            raise InvalidInput("a halt of the whole system takes no target", field="target")
        return ""
    if scope is HaltScope.EXCHANGE:
        try:
            return Exchange(value.upper()).value
        except ValueError:
            known = ", ".join(e.value for e in Exchange)
            raise InvalidInput(
                f"unknown exchange {value!r}; known: {known}", field="target"
            ) from None
    try:
        exchange, symbol = parse_key(value)
    except ValueError as exc:
        raise InvalidInput(str(exc), field="target") from None
    key = f"{exchange.value}:{symbol}"
    try:
        await InstrumentService(db).get_row(key)
    except NotFound:
        raise InvalidInput(f"no instrument {key}", field="target") from None
    return key


async def halt_trading(
    ctx: AppContext,
    db: AsyncSession,
    *,
    scope: HaltScope,
    target: str | None,
    reason: str,
    actor: uuid.UUID | None,
    client: ClientInfo | None = None,
) -> tuple[TradingHalt, bool]:
    """Halt new orders in ``scope``; (the halt, True) or, when the same halt already stands,
    (that halt, False): halting twice is not an error and writes nothing."""
    key = await canonical_target(db, scope, target)
    existing = await db.scalar(
        select(TradingHalt)
        .where(
            TradingHalt.scope == scope.value,
            TradingHalt.target == key,
            TradingHalt.resumed_at.is_(None),
        )
        .limit(1)
    )
    if existing is not None:
        return existing, False
    halt = TradingHalt(
        id=uuid.uuid4(),
        scope=scope.value,
        target=key,
        reason=reason.strip(),
        halted_at=utcnow(),
        halted_by=actor,
    )
    db.add(halt)
    await _audit(ctx, db, SecurityEventType.TRADING_HALTED, halt, actor, client)
    switch = kill_switch(ctx)
    after_commit(db, lambda: switch.announce("halted", halt))
    return halt, True


async def resume_trading(
    ctx: AppContext,
    db: AsyncSession,
    halt_id: uuid.UUID,
    *,
    actor: uuid.UUID | None,
    client: ClientInfo | None = None,
) -> TradingHalt:
    halt = await db.get(TradingHalt, halt_id, with_for_update=True)
    if halt is None:
        raise NotFound("no such trading halt")
    if halt.resumed_at is not None:
        raise Conflict("this halt was already lifted", resumed_at=halt.resumed_at.isoformat())
    halt.resumed_at = utcnow()
    halt.resumed_by = actor
    await _audit(ctx, db, SecurityEventType.TRADING_RESUMED, halt, actor, client)
    switch = kill_switch(ctx)
    after_commit(db, lambda: switch.announce("resumed", halt))
    return halt


async def resume_scope(
    ctx: AppContext,
    db: AsyncSession,
    *,
    scope: HaltScope,
    target: str | None,
    actor: uuid.UUID | None,
    client: ClientInfo | None = None,
) -> list[TradingHalt]:
    """Lift every active halt of exactly this scope and target (the command line's form)."""
    key = await canonical_target(db, scope, target)
    ids = (
        await db.scalars(
            select(TradingHalt.id).where(
                TradingHalt.scope == scope.value,
                TradingHalt.target == key,
                TradingHalt.resumed_at.is_(None),
            )
        )
    ).all()
    return [await resume_trading(ctx, db, i, actor=actor, client=client) for i in ids]


async def list_halts(
    db: AsyncSession, *, include_lifted: bool = False, limit: int = 100
) -> list[TradingHalt]:
    """Halts, newest first: the active ones, or (``include_lifted``) the history too."""
    query = select(TradingHalt).order_by(TradingHalt.halted_at.desc(), TradingHalt.id)
    if not include_lifted:
        query = query.where(TradingHalt.resumed_at.is_(None))
    return list((await db.scalars(query.limit(limit))).all())


def _active(row: TradingHalt) -> ActiveHalt:
    return ActiveHalt(row.id, HaltScope(row.scope), row.target, row.reason, row.halted_at)


async def _audit(
    ctx: AppContext,
    db: AsyncSession,
    event_type: SecurityEventType,
    halt: TradingHalt,
    actor: uuid.UUID | None,
    client: ClientInfo | None,
) -> None:
    """The security event, in the halt's own unit of work (both commit or neither)."""
    details: dict[str, Any] = {
        "halt_id": str(halt.id),
        "scope": halt.scope,
        "target": halt.target or None,
        "reason": halt.reason,
        "by": str(actor) if actor else "cli",
    }
    await record_security_event(
        ctx, event_type, user_id=actor, client=client, details=details, session=db
    )
