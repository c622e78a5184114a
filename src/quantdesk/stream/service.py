"""The stream in one process: authentication, the tick hub, the outbox tail, revalidation.

Across processes nothing is coordinated but the per-user connection count: every process
reads the outbox for its own clients (``OutboxTail``), subscribes to the bus for the
instruments its own clients want (``TickHub``), and re-checks its own clients' credentials
(``revalidate``).  So one process (in-process bus) and several (Redis) behave the same to
a client, a Redis outage loses no private event (they never travel through Redis), and a
killed process loses nothing its clients cannot resume from another.

* Ticks: one bus subscription per batch of newly wanted instruments (``Bus.subscribe``
  takes a fixed channel list; a subscription per instrument would be a Redis connection
  per instrument), each tick decoded once and rendered once per mode, whatever the number
  of clients; the books of those followed in full mode likewise, rendered once.
* Private events: the tail reads new outbox rows by id every ``stream_outbox_poll_s`` (and
  at once when trading announces an order change on the bus), renders each once and hands
  it to the connections following its account.  Ids are not a commit order across
  accounts (PostgreSQL hands them out at INSERT, writers commit in any order), so a row can
  commit behind the tail's mark: the ids the tail skipped are kept as open gaps for
  ``stream_outbox_gap_s`` and looked up again on every poll, so such a row reaches its
  clients on the next poll rather than the next reconcile.  A gap that never fills (a
  rolled-back INSERT) is dropped then.  And every ``stream_reconcile_s`` the tail compares
  each followed account's committed ``event_seq`` with what its connections have seen, and
  they backfill from the outbox: delivery is gapless whatever the timing.
* Retention: one process at a time (``platform.lease``) prunes outbox rows older than
  ``stream_outbox_retention_days``; a cursor older than that gets ``resync_required``.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import itertools
import time
import uuid
from collections import defaultdict
from collections.abc import AsyncIterator, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import orjson
from limits import parse_many
from limits.aio.storage import MemoryStorage
from limits.aio.strategies import MovingWindowRateLimiter
from prometheus_client import Counter, Gauge, Histogram
from sqlalchemy.ext.asyncio import AsyncConnection
from starlette.websockets import WebSocket, WebSocketState

from quantdesk.marketdata.quotes.service import (
    CACHE_PREFIX,
    CHANNEL_PREFIX,
    DEPTH_CACHE_PREFIX,
    DEPTH_PREFIX,
    depth_channel,
)
from quantdesk.ops.killswitch import CHANNEL as HALTS_CHANNEL
from quantdesk.ops.killswitch import kill_switch
from quantdesk.platform.context import AppContext
from quantdesk.platform.db import utcnow
from quantdesk.platform.exceptions import QuantdeskError
from quantdesk.platform.lease import lease_for
from quantdesk.platform.logging import get_logger
from quantdesk.platform.redisguard import REDIS_OUTAGE_ERRORS
from quantdesk.platform.tasks import cancel_and_wait
from quantdesk.platform.websocket_wire import OutFrame
from quantdesk.security.authn import ACCESS_COOKIE, verify_access_token
from quantdesk.security.http import origin_of
from quantdesk.security.services import security_services
from quantdesk.security.sessions import session_is_active
from quantdesk.stream import outbox
from quantdesk.stream.connection import Connection, render
from quantdesk.stream.outbox import OutboxEvent
from quantdesk.stream.protocol import (
    AuthOp,
    CloseCode,
    ErrorCode,
    ProtocolError,
    TickMode,
    depth_frame,
    error_frame,
    frame,
    halt_document,
    halt_frame,
    parse_operation,
    tick_frame,
)
from quantdesk.stream.tickets import StreamIdentity, redeem_ticket
from quantdesk.trading.events import MATCHER_CHANNEL

log = get_logger("quantdesk.stream")

EXTENSION_KEY = "stream"
PRUNE_LEASE = "stream_outbox_pruner"
PRUNE_EVERY_S = 600.0
RENEW_USERS = 100  # users per pipeline of a connection-slot renewal
TAIL_BATCH = 1000
MAX_OPEN_GAPS = 1000  # ids looked up again per poll, at most (the reconcile covers the rest)
LIVE_WAIT_S = 5.0  # at most, for the bus to confirm a tick subscription before the ack
FAN_OUT_SLICE = 200  # connections written to between two turns of the event loop


class StreamStats:
    """Prometheus metrics of the stream, on the app's registry."""

    def __init__(self, ctx: AppContext, connections: Any) -> None:
        registry = ctx.metrics.registry
        Gauge(
            "quantdesk_stream_connections",
            "Authenticated stream connections served by this process.",
            registry=registry,
        ).set_function(lambda: float(len(connections)))
        self.sent = Counter(
            "quantdesk_stream_messages_sent",
            "Frames written to stream clients, by kind (tick: ticks and books, private, control).",
            ["kind"],
            registry=registry,
        )
        self.conflated = Counter(
            "quantdesk_stream_ticks_conflated",
            "Ticks and books replaced by a newer one of the same instrument before a slow "
            "client read them (dropped; private events are never dropped).",
            registry=registry,
        )
        self.disconnects = Counter(
            "quantdesk_stream_disconnects",
            "Connections closed by the server, by reason.",
            ["reason"],
            registry=registry,
        )
        self.tick_backlog = Histogram(
            "quantdesk_stream_tick_backlog",
            "Quotes sent per fan-out pass: over 1, the bus delivered them faster than this "
            "process wrote them to its clients, and each client got them in one write.",
            buckets=(1, 2, 4, 8, 16, 32, 64),
            registry=registry,
        )
        self.event_lag = Histogram(
            "quantdesk_stream_event_lag_seconds",
            "From an outbox event's creation to its hand-over to connections by the tail.",
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
            registry=registry,
        )


class TickHub:
    """This process's bus subscriptions to quotes and books, shared by every connection.

    An instrument's ``quotes.<KEY>`` is listened to while a connection follows it in any
    mode, its ``depth.<KEY>`` (the Kite feed's five-level book) only while one follows it in
    ``full`` mode: quote and LTP subscribers, the many, cost no book traffic."""

    def __init__(self, ctx: AppContext, stats: StreamStats) -> None:
        self.ctx = ctx
        self.sent = stats.sent.labels(kind="tick")
        self.backlog = stats.tick_backlog
        self.subscribers: dict[str, set[Connection]] = {}  # key -> who follows its quotes
        self.book_subscribers: dict[str, set[Connection]] = {}  # key -> who, in full mode
        self._group_of: dict[str, set[str]] = {}  # bus channel -> the batch it came with
        self._tasks: dict[int, asyncio.Task[None]] = {}
        self._live: dict[int, asyncio.Event] = {}  # per group: its bus subscription is live

    async def add(self, connection: Connection, keys: Sequence[str], mode: TickMode) -> None:
        """Follow ``keys`` in ``mode`` for ``connection`` (a key it follows already changes
        mode); returns once the bus delivers them, so that an ack sent afterwards promises
        every tick and book from then on."""
        for key in keys:
            self.subscribers.setdefault(key, set()).add(connection)
        if mode is TickMode.FULL:
            for key in keys:
                self.book_subscribers.setdefault(key, set()).add(connection)
        else:
            self._leave(self.book_subscribers, connection, keys, DEPTH_PREFIX)
        # Books in batches of their own: switching a batch out of full mode drops its
        # depth channels from the bus while its quotes stay.
        groups = self._listen([CHANNEL_PREFIX + key for key in keys])
        if mode is TickMode.FULL:
            groups |= self._listen([depth_channel(key) for key in keys])
        waits = [self._live[g].wait() for g in groups if not self._live[g].is_set()]
        if waits:
            # Bounded: a bus that cannot subscribe (its outage is logged) must not hold the ack.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(LIVE_WAIT_S):
                    await asyncio.gather(*waits)

    def remove(self, connection: Connection, keys: Sequence[str]) -> None:
        self._leave(self.subscribers, connection, keys, CHANNEL_PREFIX)
        self._leave(self.book_subscribers, connection, keys, DEPTH_PREFIX)

    def _listen(self, channels: list[str]) -> set[int]:
        """Subscribe the bus to those of ``channels`` not yet listened to, in one batch
        (``Bus.subscribe`` takes a fixed list; one subscription per channel would be a Redis
        connection per instrument); the groups carrying ``channels``."""
        new = [channel for channel in channels if channel not in self._group_of]
        if new:
            group = set(new)
            for channel in new:
                self._group_of[channel] = group
            live = self._live[id(group)] = asyncio.Event()
            self._tasks[id(group)] = asyncio.create_task(self._pump(new, live), name="stream-ticks")
        return {id(self._group_of[channel]) for channel in channels}

    def _leave(
        self,
        followers: dict[str, set[Connection]],
        connection: Connection,
        keys: Sequence[str],
        prefix: str,
    ) -> None:
        for key in keys:
            subscribers = followers.get(key)
            if subscribers is None:
                continue
            subscribers.discard(connection)
            if subscribers:
                continue
            del followers[key]
            group = self._group_of.pop(prefix + key)
            group.discard(prefix + key)
            if not group:
                self._tasks.pop(id(group)).cancel()
                self._live.pop(id(group), None)

    async def _pump(self, channels: list[str], live: asyncio.Event) -> None:
        async with self.ctx.bus.subscribe(channels) as subscription:
            live.set()
            async for first in subscription:
                # Whatever else arrived during the last fan-out goes out with this one: a
                # fan-out that fell behind its bus sends each client one write for them all.
                quotes: list[tuple[str, bytes]] = []
                for channel, body in (first, *subscription.ready()):
                    if channel.startswith(DEPTH_PREFIX):
                        await self._relay_quotes(quotes)
                        quotes = []
                        self._relay_book(channel.removeprefix(DEPTH_PREFIX), body)
                    else:
                        quotes.append((channel.removeprefix(CHANNEL_PREFIX), body))
                await self._relay_quotes(quotes)

    async def _relay_quotes(self, quotes: Sequence[tuple[str, bytes]]) -> None:
        """Each quote to its followers, in order.  Several (the fan-out fell behind its bus):
        a client following more than one of them gets them in one write, since a socket's
        send (~10 us) is most of what a fan-out costs."""
        if not quotes:
            return
        self.backlog.observe(len(quotes))
        if len(quotes) == 1:
            await self._relay_quote(*quotes[0])
            return
        gathered: dict[Connection, list[tuple[str, OutFrame]]] = {}
        for key, body in quotes:
            subscribers = self.subscribers.get(key)
            quote = _decoded(body) if subscribers else None
            if not subscribers or quote is None:
                continue
            rendered: dict[TickMode, OutFrame] = {}
            for connection in tuple(subscribers):
                mode = connection.tick_modes.get(key)
                if mode is not None:
                    out = _rendered(rendered, quote, mode)
                    gathered.setdefault(connection, []).append((key, out))
        written = 0
        for n, (connection, ticks) in enumerate(tuple(gathered.items()), 1):
            if n % FAN_OUT_SLICE == 0:
                await asyncio.sleep(0)  # as in _relay_quote
            written += connection.offer_ticks(ticks)
        if written:
            self.sent.inc(written)

    async def _relay_quote(self, key: str, body: bytes) -> None:
        subscribers = self.subscribers.get(key)
        quote = _decoded(body) if subscribers else None
        if not subscribers or quote is None:
            return
        rendered: dict[TickMode, OutFrame] = {}
        written = 0
        for n, connection in enumerate(tuple(subscribers), 1):
            if n % FAN_OUT_SLICE == 0:
                # A write is a few microseconds (the socket's send): between slices the loop
                # runs whatever else is ready, so a fan-out to thousands never holds a
                # request or an order event for milliseconds.
                await asyncio.sleep(0)
            mode = connection.tick_modes.get(key)
            if mode is not None:
                written += connection.offer_tick(key, _rendered(rendered, quote, mode))
        if written:
            self.sent.inc(written)

    def _relay_book(self, key: str, body: bytes) -> None:
        subscribers = self.book_subscribers.get(key)
        if not subscribers:
            return
        try:
            out = OutFrame(depth_frame(orjson.loads(body)))
        except (orjson.JSONDecodeError, KeyError, TypeError):
            return
        written = sum(connection.offer_depth(key, out) for connection in tuple(subscribers))
        if written:
            self.sent.inc(written)

    async def aclose(self) -> None:
        tasks = list(self._tasks.values())
        await cancel_and_wait(tasks)
        self._tasks.clear()


class SignalHub:
    """This process's bus subscriptions to live signal values (``signals.live``), shared by
    every connection, in the ticks' pattern: one bus subscription per batch of newly wanted
    ``signals.<model_id>.<KEY>`` channels, each value rendered once.  Several processes can
    compute the same value (each follows the models its own clients want): a value for a bar
    at or before the last one relayed on its channel is a repeat, and dropped."""

    def __init__(self, ctx: AppContext, stats: StreamStats) -> None:
        self.ctx = ctx
        self.sent = stats.sent.labels(kind="tick")
        self.subscribers: dict[str, set[Connection]] = {}  # bus channel -> who follows it
        self._last_t: dict[str, int] = {}
        self._tasks: dict[str, asyncio.Task[None]] = {}  # first channel of a batch -> pump
        self._batch_of: dict[str, list[str]] = {}

    async def add(self, connection: Connection, channels: Sequence[str]) -> None:
        for channel in channels:
            self.subscribers.setdefault(channel, set()).add(connection)
        new = [channel for channel in channels if channel not in self._batch_of]
        if not new:
            return
        for channel in new:
            self._batch_of[channel] = new
        live = asyncio.Event()
        self._tasks[new[0]] = asyncio.create_task(self._pump(new, live), name="stream-signals")
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(LIVE_WAIT_S):
                await live.wait()

    def remove(self, connection: Connection, channels: Sequence[str]) -> None:
        for channel in channels:
            subscribers = self.subscribers.get(channel)
            if subscribers is None:
                continue
            subscribers.discard(connection)
            if subscribers:
                continue
            del self.subscribers[channel]
            batch = self._batch_of.pop(channel)
            if not any(c in self._batch_of for c in batch):
                task = self._tasks.pop(batch[0], None)
                if task is not None:
                    task.cancel()

    async def _pump(self, channels: list[str], live: asyncio.Event) -> None:
        async with self.ctx.bus.subscribe(channels) as subscription:
            live.set()
            async for channel, body in subscription:
                self._relay(channel, body)

    def _relay(self, channel: str, body: bytes) -> None:
        subscribers = self.subscribers.get(channel)
        if not subscribers:
            return
        try:
            t = int(orjson.loads(body)["t"])
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
            return
        if t <= self._last_t.get(channel, -1):
            return  # another process's copy of a value already relayed
        self._last_t[channel] = t
        out = OutFrame(body.decode())
        written = sum(connection.offer_signal(channel, out) for connection in tuple(subscribers))
        if written:
            self.sent.inc(written)

    async def aclose(self) -> None:
        await cancel_and_wait(list(self._tasks.values()))
        self._tasks.clear()


class OpenGaps:
    """Outbox ids the tail has passed without seeing: rows not committed yet (or never, when
    their transaction rolled back), each looked for until its deadline."""

    def __init__(self, keep_s: float) -> None:
        self.keep_s = keep_s
        self.deadlines: dict[int, float] = {}  # insertion order is id order

    def skipped(self, mark: int, ids: Sequence[int], now: float) -> None:
        """``ids`` (ascending) were read after ``mark``: the ids between them are gaps.  At
        most ``MAX_OPEN_GAPS`` are kept, the newest: the oldest have waited longest, and the
        reconcile covers any dropped."""
        deadline = now + self.keep_s
        newest: list[range] = []
        room = MAX_OPEN_GAPS
        bounds = [mark, *ids]
        for low, high in zip(reversed(bounds[:-1]), reversed(bounds[1:]), strict=True):
            if room <= 0:
                break
            start = max(low + 1, high - room)
            if start < high:
                newest.append(range(start, high))
                room -= high - start
        for span in reversed(newest):
            self.deadlines.update(dict.fromkeys(span, deadline))
        excess = len(self.deadlines) - MAX_OPEN_GAPS
        if excess > 0:
            self.deadlines = dict(itertools.islice(self.deadlines.items(), excess, None))

    def filled(self, ids: Iterable[int]) -> None:
        for event_id in ids:
            self.deadlines.pop(event_id, None)

    def open(self, now: float) -> list[int]:
        """The gaps still looked for (those past their deadline are dropped)."""
        expired = [event_id for event_id, deadline in self.deadlines.items() if deadline < now]
        for event_id in expired:
            del self.deadlines[event_id]
        return list(self.deadlines)


async def _close_shielded(connection: AsyncConnection) -> None:
    """Back to the pool even when the closing task is cancelled (a shutdown cancels the tail
    mid-query, and again while it closes): the close itself runs to its end."""
    with contextlib.suppress(Exception):
        await asyncio.shield(connection.close())


class OutboxTail:
    """New outbox events to the connections that follow their accounts (see the module doc)."""

    def __init__(self, ctx: AppContext, stats: StreamStats) -> None:
        self.ctx = ctx
        self.settings = ctx.settings
        self.stats = stats
        self.followers: dict[uuid.UUID, set[Connection]] = defaultdict(set)
        self.wake = asyncio.Event()
        self.mark = 0
        self.gaps = OpenGaps(self.settings.stream_outbox_gap_s)
        self.reader: AsyncConnection | None = None

    def add(self, connection: Connection, account_id: uuid.UUID) -> None:
        self.followers[account_id].add(connection)

    def remove(self, connection: Connection, account_ids: Sequence[uuid.UUID]) -> None:
        for account_id in account_ids:
            followers = self.followers.get(account_id)
            if followers is not None:
                followers.discard(connection)
                if not followers:
                    del self.followers[account_id]

    async def start_mark(self) -> None:
        """Start after the outbox's newest event (older ones reach a client by ``from_seq``
        replay); retried here rather than at start-up, so that the app starts, and says it
        is not ready, while its database is away."""
        while True:
            try:
                async with self.ctx.database.session() as db:
                    self.mark = await outbox.latest_id(db)
                return
            except Exception as exc:
                log.warning("stream outbox mark not read", error=str(exc))
                await asyncio.sleep(1.0)

    async def run(self) -> None:
        try:
            await self._run()
        finally:
            await self._drop_reader()

    async def _run(self) -> None:
        await self.start_mark()
        poll_s = self.settings.stream_outbox_poll_s
        while True:
            # Nobody follows an account: look less often, only to keep the mark current.
            wait_s = poll_s if self.followers else max(poll_s, 1.0)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(wait_s):
                    await self.wake.wait()
            self.wake.clear()
            try:
                while await self.poll() == TAIL_BATCH:
                    pass
            except Exception as exc:  # the database is down: the reconcile catches up later
                log.warning("stream outbox tail failed", error=str(exc))
                await asyncio.sleep(1.0)

    async def poll(self) -> int:
        """Relays the events committed since the last poll; returns how many were new past
        the mark (a full batch: call again)."""
        gaps = self.gaps.open(time.monotonic())
        reader = await self._connected_reader()
        try:
            events = await outbox.events_after_id(reader, self.mark, TAIL_BATCH)
            # Second, so it sees at least what the first read saw committed.
            late = await outbox.events_with_ids(reader, gaps) if gaps else []
            await reader.commit()  # ends SQLite's read transaction (PostgreSQL has none)
        except BaseException:
            await self._drop_reader()
            raise
        self.gaps.filled(event.id for event in late)
        if events:
            self.gaps.skipped(self.mark, [event.id for event in events], time.monotonic())
            self.mark = events[-1].id
        self._relay(late + events)
        return len(events)

    async def _connected_reader(self) -> AsyncConnection:
        """The tail's own connection, kept between polls: on PostgreSQL in autocommit, so a
        poll is one round trip per query, where a session from the pool would add the
        pre-ping, BEGIN and COMMIT, each waiting behind the fan-out on a busy event loop."""
        if self.reader is None:
            reader = await self.ctx.database.engine.connect()
            try:
                if self.ctx.database.dialect == "postgresql":
                    await reader.execution_options(isolation_level="AUTOCOMMIT")
            except BaseException:
                await _close_shielded(reader)
                raise
            self.reader = reader
        return self.reader

    async def _drop_reader(self) -> None:
        reader, self.reader = self.reader, None
        if reader is not None:
            await _close_shielded(reader)

    def _relay(self, events: list[OutboxEvent]) -> None:
        now = utcnow()
        for event in events:
            followers = self.followers.get(event.account_id)
            if not followers:
                continue
            self.stats.event_lag.observe(max(0.0, (now - event.created_at).total_seconds()))
            text = render(event)
            for connection in tuple(followers):
                connection.offer_event(event, text)

    async def reconcile_forever(self) -> None:
        while True:
            await asyncio.sleep(self.settings.stream_reconcile_s)
            try:
                await self.reconcile()
            except Exception as exc:
                log.warning("stream reconcile failed", error=str(exc))

    async def reconcile(self) -> None:
        accounts = list(self.followers)
        for start in range(0, len(accounts), 500):
            chunk = accounts[start : start + 500]
            async with self.ctx.database.session() as db:
                heads = await outbox.account_heads(db, chunk)
            for account_id, head in heads.items():
                for connection in tuple(self.followers.get(account_id, ())):
                    cursor = connection.accounts.get(account_id)
                    if cursor is not None and cursor.seen < head:
                        connection.offer_check(account_id, head)

    async def wake_on_order_changes(self) -> None:
        """Trading announces new, modified and canceled orders after commit: look at once."""
        async with self.ctx.bus.subscribe([MATCHER_CHANNEL]) as subscription:
            async for _ in subscription:
                self.wake.set()


class ConnectionSlots:
    """At most ``stream_max_connections_per_user`` connections per user, across processes.

    In Redis a sorted set per user (members: connection ids, scores: expiry), renewed by
    each process for its live connections, so a killed process's slots lapse within
    ``ttl_s``; in this process's memory without Redis, or while it is unreachable."""

    _CLAIM = """
    redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
    if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[3]) then return 0 end
    redis.call('ZADD', KEYS[1], ARGV[2], ARGV[4])
    redis.call('PEXPIRE', KEYS[1], ARGV[5])
    return 1
    """

    def __init__(self, ctx: AppContext, ttl_s: float) -> None:
        self.ctx = ctx
        self.ttl_s = ttl_s
        self.local: dict[uuid.UUID, set[str]] = defaultdict(set)

    def _key(self, user_id: uuid.UUID) -> str:
        return f"qd:stream:connections:{user_id}"

    async def claim(self, user_id: uuid.UUID, connection_id: str) -> bool:
        limit = self.ctx.settings.stream_max_connections_per_user
        redis = self.ctx.redis
        if redis is not None:
            now = time.time()
            try:
                claimed = await redis.eval(
                    self._CLAIM,
                    1,
                    self._key(user_id),
                    now,
                    now + self.ttl_s,
                    limit,
                    connection_id,
                    int(self.ttl_s * 1000),
                )
            except REDIS_OUTAGE_ERRORS:
                pass
            else:
                if claimed:
                    self.local[user_id].add(connection_id)
                return bool(claimed)
        mine = self.local[user_id]
        if len(mine) >= limit:
            return False
        mine.add(connection_id)
        return True

    async def renew(self, live: Iterable[tuple[uuid.UUID, str]]) -> None:
        """Push the expiry of each live (user, connection id) ``ttl_s`` ahead.

        One ZADD and one PEXPIRE per user, in pipelines of ``RENEW_USERS`` users: a
        pipeline's commands are packed and its replies parsed without a pause of the event
        loop, and the 2,000 commands of one pipeline for a user's 1,000 connections held it
        for 15-40 ms every renewal, which every tick in flight waited out (issue 13)."""
        redis = self.ctx.redis
        if redis is None:
            return
        expiry = time.time() + self.ttl_s
        members: dict[uuid.UUID, dict[str, float]] = defaultdict(dict)
        for user_id, connection_id in live:
            members[user_id][connection_id] = expiry
        users = list(members.items())
        ttl_ms = int(self.ttl_s * 1000)
        with contextlib.suppress(*REDIS_OUTAGE_ERRORS):
            for start in range(0, len(users), RENEW_USERS):
                async with redis.pipeline(transaction=False) as pipe:
                    for user_id, mapping in users[start : start + RENEW_USERS]:
                        pipe.zadd(self._key(user_id), mapping)
                        pipe.pexpire(self._key(user_id), ttl_ms)
                    await pipe.execute()

    async def release(self, user_id: uuid.UUID, connection_id: str) -> None:
        mine = self.local.get(user_id)
        if mine is not None:
            mine.discard(connection_id)
            if not mine:
                del self.local[user_id]
        if self.ctx.redis is not None:
            with contextlib.suppress(*REDIS_OUTAGE_ERRORS):
                await self.ctx.redis.zrem(self._key(user_id), connection_id)


@dataclass(frozen=True, slots=True)
class _Credential:
    kind: str  # "session" or "api_key"
    user_id: uuid.UUID
    ref: str


def _credential_of(identity: StreamIdentity) -> _Credential | None:
    p = identity.principal
    if p.session_id is not None:
        return _Credential("session", p.user_id, str(p.session_id))
    if identity.api_key_lookup is not None:
        return _Credential("api_key", p.user_id, identity.api_key_lookup)
    return None


class StreamService:
    def __init__(self, ctx: AppContext) -> None:
        self.ctx = ctx
        self.settings = ctx.settings
        self.connections: set[Connection] = set()
        self.status_followers: set[Connection] = set()
        self.stats = StreamStats(ctx, self.connections)
        self.ticks = TickHub(ctx, self.stats)
        self.signals = SignalHub(ctx, self.stats)
        self.tail = OutboxTail(ctx, self.stats)
        self.slots = ConnectionSlots(ctx, ttl_s=max(10.0, 5 * self.settings.stream_revalidate_s))
        self._op_limits = parse_many(self.settings.stream_subscribe_rate)
        self._op_limiter = MovingWindowRateLimiter(MemoryStorage())
        self._tasks: list[asyncio.Task[None]] = []
        self.stopping = False
        self._idle = asyncio.Event()  # set when the last connection has ended

    async def start(self) -> None:
        self._tasks = [
            asyncio.create_task(self.tail.run(), name="stream-tail"),
            asyncio.create_task(self.tail.reconcile_forever(), name="stream-reconcile"),
            asyncio.create_task(self.tail.wake_on_order_changes(), name="stream-wake"),
            asyncio.create_task(self._revalidate_forever(), name="stream-revalidate"),
            asyncio.create_task(self._prune_forever(), name="stream-prune"),
            asyncio.create_task(self._relay_halts(), name="stream-halts"),
        ]

    async def stop(self) -> None:
        self.stopping = True
        for connection in tuple(self.connections):
            connection.close_soon(CloseCode.SERVER_RESTART, "server restart: resume elsewhere")
        if self.connections:
            self._idle.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(5.0):
                    await self._idle.wait()
        await cancel_and_wait(self._tasks)
        await self.ticks.aclose()
        await self.signals.aclose()

    async def allow_op(self, connection_id: str) -> bool:
        for item in self._op_limits:
            if not await self._op_limiter.test(item, connection_id):
                return False
        for item in self._op_limits:
            await self._op_limiter.hit(item, connection_id)
        return True

    async def latest_quotes(self, keys: Sequence[str]) -> dict[str, dict[str, Any]]:
        return await self._latest(CACHE_PREFIX, keys)

    async def latest_books(self, keys: Sequence[str]) -> dict[str, dict[str, Any]]:
        """The cached books (``kite.feed``) of those of ``keys`` that have one."""
        return await self._latest(DEPTH_CACHE_PREFIX, keys)

    async def _latest(self, prefix: str, keys: Sequence[str]) -> dict[str, dict[str, Any]]:
        found: dict[str, dict[str, Any]] = {}
        for start in range(0, len(keys), 500):
            chunk = keys[start : start + 500]
            bodies = await self.ctx.cache.get_many([prefix + key for key in chunk])
            for key, body in zip(chunk, bodies, strict=True):
                if body is not None:
                    with contextlib.suppress(orjson.JSONDecodeError):
                        found[key] = orjson.loads(body)
        return found

    async def active_halts(self) -> list[dict[str, Any]]:
        snapshot = await kill_switch(self.ctx).snapshot()
        return [
            halt_document(str(h.id), h.scope.value, h.target or None, h.reason, h.halted_at)
            for h in snapshot.halts()
        ]

    async def _relay_halts(self) -> None:
        """The kill switch's announcements (``ops.killswitch``), to the status followers.

        Bus messages can be lost (a Redis outage): a client that must not miss one
        re-subscribes after a reconnect and gets the halts in force as a snapshot."""
        async with self.ctx.bus.subscribe([HALTS_CHANNEL]) as subscription:
            async for _, body in subscription:
                try:
                    message = orjson.loads(body)
                    event = str(message["type"]).removeprefix("trading.")
                    halt = halt_document(
                        message["halt_id"],
                        message["scope"],
                        message["target"],
                        message["reason"],
                        message["at"],
                    )
                except (orjson.JSONDecodeError, KeyError, TypeError):
                    log.warning("stream_bad_halt_message", exc_info=True)
                    continue
                text = halt_frame(event, halt)
                for connection in tuple(self.status_followers):
                    connection.send_control(text)

    # --- one connection --------------------------------------------------------------------
    async def serve(self, websocket: WebSocket) -> None:
        await websocket.accept()
        identity = await self._authenticate(websocket)
        if identity is None:
            return
        connection = Connection(self, websocket, identity[0])
        if not await self.slots.claim(connection.user_id, connection.id):
            limit = self.settings.stream_max_connections_per_user
            await _refuse(
                websocket,
                CloseCode.RATE_LIMITED,
                ErrorCode.LIMITS,
                f"at most {limit} stream connections per user",
            )
            self.stats.disconnects.labels(reason="connection_limit").inc()
            return
        self.connections.add(connection)
        try:
            connection.ack(identity[1], "auth")
            await connection.run()
        finally:
            self.connections.discard(connection)
            if not self.connections:
                self._idle.set()
            await self.slots.release(connection.user_id, connection.id)

    async def _authenticate(self, websocket: WebSocket) -> tuple[StreamIdentity, str | None] | None:
        cookie = websocket.cookies.get(ACCESS_COOKIE)
        if cookie:
            # A browser: the cookie came by itself, so the page's origin must be ours or
            # allowed (cross-site WebSocket hijacking), and a ticket is not needed.
            if not self._origin_allowed(websocket):
                await _refuse(
                    websocket, CloseCode.FORBIDDEN, ErrorCode.FORBIDDEN, "origin not allowed"
                )
                self.stats.disconnects.labels(reason="forbidden").inc()
                return None
            try:
                principal = await verify_access_token(self.ctx, cookie)
            except QuantdeskError:
                await self._auth_failed(websocket, "the session cookie is not valid")
                return None
            return StreamIdentity(principal), None
        try:
            async with asyncio.timeout(self.settings.stream_auth_timeout_s):
                message = await websocket.receive()
        except TimeoutError:
            await self._auth_failed(websocket, "no auth frame in time")
            return None
        if message["type"] == "websocket.disconnect":
            return None
        data = message.get("text") or message.get("bytes") or b""
        try:
            if len(data) > self.settings.stream_max_frame_bytes:
                raise ProtocolError(ErrorCode.AUTH, "the first frame must be auth")
            operation = parse_operation(data)
        except ProtocolError:
            await self._auth_failed(websocket, "the first frame must be auth")
            return None
        if not isinstance(operation, AuthOp):
            await self._auth_failed(websocket, "the first frame must be auth", operation.id)
            return None
        identity = await redeem_ticket(
            self.ctx.cache, operation.ticket, self.settings.stream_ticket_ttl_s
        )
        if identity is None or not await self._still_good(identity):
            await self._auth_failed(
                websocket, "the ticket is unknown, expired or used", operation.id
            )
            return None
        return identity, operation.id

    async def _auth_failed(
        self, websocket: WebSocket, message: str, op_id: str | None = None
    ) -> None:
        self.stats.disconnects.labels(reason="auth").inc()
        await _refuse(websocket, CloseCode.AUTH, ErrorCode.AUTH, message, op_id)

    def _origin_allowed(self, websocket: WebSocket) -> bool:
        origin = websocket.headers.get("origin")
        claimed = origin_of(origin) if origin else None
        if claimed is None:
            return False
        listed = [self.settings.public_base_url, *self.settings.cors_origins]
        allowed = {o for o in (origin_of(url) for url in listed) if o}
        host = websocket.headers.get("host")
        if host:
            scheme = "https" if websocket.url.scheme == "wss" else "http"
            allowed.add(f"{scheme}://{host}".lower())
        return claimed in allowed

    # --- revocation ------------------------------------------------------------------------
    async def _still_good(self, identity: StreamIdentity) -> bool:
        credential = _credential_of(identity)
        if credential is None:
            return False
        return await self._credential_good(credential)

    async def _credential_good(self, credential: _Credential) -> bool:
        try:
            if credential.kind == "session":
                return await session_is_active(
                    self.ctx, uuid.UUID(credential.ref), credential.user_id
                )
            record = await security_services(self.ctx).credentials.api_key(credential.ref)
        except QuantdeskError:
            return True  # the store is down: keep serving, check again on the next round
        if record is None or record.revoked or not record.owner_active:
            return False
        if record.user_id != credential.user_id:
            return False
        return record.expires_at is None or record.expires_at > time.time()

    async def _revalidate_forever(self) -> None:
        while True:
            await asyncio.sleep(self.settings.stream_revalidate_s)
            try:
                await self.revalidate()
            except Exception as exc:
                log.warning("stream revalidation failed", error=str(exc))

    async def revalidate(self) -> None:
        """Close every connection whose session or API key has been revoked, or whose user
        is gone (deleting or disabling a user revokes both)."""
        by_credential: dict[_Credential | None, list[Connection]] = defaultdict(list)
        for connection in tuple(self.connections):
            by_credential[_credential_of(connection.identity)].append(connection)
        for credential, connections in by_credential.items():
            if credential is not None and await self._credential_good(credential):
                continue
            for connection in connections:
                connection.close_soon(CloseCode.AUTH, "the credential was revoked")
        await self.slots.renew((c.user_id, c.id) for c in self.connections if c.closed is None)

    # --- retention -------------------------------------------------------------------------
    async def _prune_forever(self) -> None:
        lease = lease_for(self.ctx, PRUNE_LEASE)
        try:
            while True:
                with contextlib.suppress(Exception):
                    if await lease.hold():
                        days = self.settings.stream_outbox_retention_days
                        before = utcnow() - dt.timedelta(days=days)
                        async with self.ctx.database.session() as db:
                            pruned = await outbox.prune(db, before)
                        if pruned:
                            log.info("stream outbox pruned", events=pruned)
                await asyncio.sleep(PRUNE_EVERY_S)
        finally:
            await lease.release()


async def _refuse(
    websocket: WebSocket, code: int, error: ErrorCode, message: str, op_id: str | None = None
) -> None:
    if websocket.client_state is not WebSocketState.CONNECTED:
        return
    with contextlib.suppress(Exception):
        async with asyncio.timeout(2.0):
            await websocket.send_text(error_frame(error, message, op_id))
            await websocket.close(code, message[:120])


def stream_service(ctx: AppContext) -> StreamService | None:
    service = ctx.extensions.get(EXTENSION_KEY)
    return service if isinstance(service, StreamService) else None


@contextlib.asynccontextmanager
async def stream_lifespan(ctx: AppContext) -> AsyncIterator[None]:
    service = ctx.extensions[EXTENSION_KEY] = StreamService(ctx)
    await service.start()
    try:
        yield
    finally:
        await service.stop()
        ctx.extensions.pop(EXTENSION_KEY, None)


def _decoded(body: bytes) -> dict[str, Any] | None:
    try:
        quote = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    return quote if isinstance(quote, dict) else None


def _rendered(
    rendered: dict[TickMode, OutFrame], quote: dict[str, Any], mode: TickMode
) -> OutFrame:
    """The quote's frame in ``mode``, rendered once per fan-out."""
    out = rendered.get(mode)
    if out is None:
        out = rendered[mode] = OutFrame(tick_frame(quote, mode))
    return out


__all__ = ["StreamService", "frame", "stream_lifespan", "stream_service"]
