"""The internal publish/subscribe bus: in-process queues, or Redis pub/sub across processes.

Messages are bytes (callers encode with orjson).  Subscribers that fall behind lose the
oldest messages rather than blocking publishers: a slow WebSocket client must never stall
the tick simulator or the matching engine.

With Redis, a process's own messages reach its own subscribers at publish time, not through
Redis: the way there and back cost a tick two more turns of the event loop, each behind a
slice of some fan-out when the loop is busy with a thousand WebSocket clients (issue 13:
from a quote's publish to the start of its fan-out, median 4.7-11 ms before, 0.6-3.5 ms
after, in the stream benchmark's one-process run).  Redis still sends them back to this
process's subscriptions, so each subscription expects the echo of what it was handed
locally and drops it.  Echoes are recognised by content (channel and bytes), not by a tag
on the message, so that the bytes on Redis stay what every release publishes and reads (a
rolling update runs two releases side by side); a message from another process with the
same bytes as one of ours changes nothing, since each expected echo accounts for one copy
and the subscriber gets as many copies as were sent.  Each subscriber still gets one
process's messages in the order they were published; a message of this process can now
overtake one that another process published a moment before it, which the bus never
promised (it carries latest values and notifications).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import defaultdict, deque
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import asynccontextmanager
from typing import Any, Protocol, TypeVar

from redis.asyncio import Redis
from redis.asyncio.client import PubSub

from quantdesk.platform.cache import Cache, RedisCache
from quantdesk.platform.logging import get_logger
from quantdesk.platform.redisguard import REDIS_OUTAGE_ERRORS, RETRY_AFTER_S, RedisGuard
from quantdesk.platform.tasks import cancel_and_wait

log = get_logger("quantdesk.platform.bus")

Message = tuple[str, bytes]


class Subscription(Protocol):
    def __aiter__(self) -> AsyncIterator[Message]: ...
    async def get(self, wait_s: float | None = None) -> Message | None: ...
    def ready(self) -> list[Message]:
        """The messages already here, oldest first, without waiting."""
        ...


class Bus(Protocol):
    async def publish(self, channel: str, message: bytes) -> None: ...
    async def publish_stored(
        self, cache: Cache, stored: Sequence[tuple[str, bytes]], messages: Sequence[Message]
    ) -> None:
        """Store ``stored`` in ``cache``, then publish ``messages``: latest values (quotes,
        books) that a subscriber reads from the cache after subscribing, so a value it did
        not get live is already in the cache when it looks."""
        ...

    def subscribe(
        self, channels: Sequence[str]
    ) -> contextlib.AbstractAsyncContextManager[Subscription]: ...
    async def aclose(self) -> None: ...


class _QueueSubscription:
    def __init__(self, maxsize: int) -> None:
        self.queue: asyncio.Queue[Message] = asyncio.Queue(maxsize)

    def offer(self, message: Message) -> None:
        if self.queue.full():
            with contextlib.suppress(asyncio.QueueEmpty):
                self.queue.get_nowait()
        self.queue.put_nowait(message)

    async def get(self, wait_s: float | None = None) -> Message | None:
        # asyncio.timeout, not wait_for: on 3.11 wait_for can swallow a cancellation
        try:
            async with asyncio.timeout(wait_s):
                return await self.queue.get()
        except TimeoutError:
            return None

    def ready(self) -> list[Message]:
        queue = self.queue
        return [queue.get_nowait() for _ in range(queue.qsize())]

    async def __aiter__(self) -> AsyncIterator[Message]:
        while True:
            yield await self.queue.get()


_S = TypeVar("_S", bound=_QueueSubscription)


@contextlib.contextmanager
def _registered(
    subscribers: defaultdict[str, set[_S]], channels: Sequence[str], subscription: _S
) -> Iterator[None]:
    for channel in channels:
        subscribers[channel].add(subscription)
    try:
        yield
    finally:
        for channel in channels:
            subscribers[channel].discard(subscription)
            if not subscribers[channel]:
                del subscribers[channel]


async def _store_then_publish(
    bus: Bus, cache: Cache, stored: Sequence[tuple[str, bytes]], messages: Sequence[Message]
) -> None:
    await cache.set_many(stored)
    for channel, message in messages:
        await bus.publish(channel, message)


class MemoryBus:
    def __init__(self, queue_size: int = 10_000) -> None:
        self._subscribers: defaultdict[str, set[_QueueSubscription]] = defaultdict(set)
        self._queue_size = queue_size

    async def publish(self, channel: str, message: bytes) -> None:
        for subscription in tuple(self._subscribers.get(channel, ())):
            subscription.offer((channel, message))

    async def publish_stored(
        self, cache: Cache, stored: Sequence[tuple[str, bytes]], messages: Sequence[Message]
    ) -> None:
        await _store_then_publish(self, cache, stored, messages)

    @asynccontextmanager
    async def subscribe(self, channels: Sequence[str]) -> AsyncIterator[Subscription]:
        subscription = _QueueSubscription(self._queue_size)
        with _registered(self._subscribers, channels, subscription):
            yield subscription

    async def aclose(self) -> None:
        self._subscribers.clear()


CONFIRM_S = 2.0
# How long a subscription waits for the echo of a message it was handed locally.  An echo
# comes within milliseconds, or never (the PUBLISH failed, or the subscription's Redis
# connection was down); one later than this is delivered a second time, so the window is
# generous: an expected echo that never comes costs only that a message with the very same
# bytes from another process within the window is taken for it (quotes never repeat: each
# carries its own ``source_id``).
ECHO_WAIT_S = 10.0


class _RedisSubscription(_QueueSubscription):
    """A subscription that gets this process's messages locally and the others' from Redis."""

    def __init__(self, maxsize: int) -> None:
        super().__init__(maxsize)
        # Per message, the deadlines of the echoes expected (several, if the same bytes
        # were published again), and every expectation in order of its deadline, to expire.
        self._echoes: dict[Message, deque[float]] = {}
        self._deadlines: deque[tuple[float, Message]] = deque()
        self._max_expected = maxsize

    def expect_echo(self, message: Message, now: float) -> None:
        self._expire(now)
        if len(self._deadlines) >= self._max_expected:
            # Bounded, like the queue: a Redis connection that swallows every echo without
            # failing must not grow this without end.
            self._forget(*self._deadlines[0])
        deadline = now + ECHO_WAIT_S
        self._echoes.setdefault(message, deque()).append(deadline)
        self._deadlines.append((deadline, message))

    def from_redis(self, message: Message, now: float) -> None:
        self._expire(now)
        expected = self._echoes.get(message)
        if expected is None:
            self.offer(message)
            return
        # This echo answers the oldest expectation (any would do: they are of the same
        # bytes); ``_deadlines`` lets go of it when it comes to expire.
        expected.popleft()
        if not expected:
            del self._echoes[message]

    def _expire(self, now: float) -> None:
        while self._deadlines and self._deadlines[0][0] <= now:
            self._forget(*self._deadlines[0])

    def _forget(self, deadline: float, message: Message) -> None:
        self._deadlines.popleft()
        expected = self._echoes.get(message)
        # Still waiting for this one only if its deadline is the oldest left: an echo
        # already answered it otherwise.
        if expected and expected[0] <= deadline:
            expected.popleft()
            if not expected:
                del self._echoes[message]


def _message(raw: dict[str, Any], prefix_len: int) -> Message:
    name = raw["channel"]
    name = name.decode() if isinstance(name, bytes) else str(name)
    return name[prefix_len:], bytes(raw["data"])


async def _confirmed(pubsub: PubSub, subscription: _RedisSubscription, prefix_len: int) -> None:
    """Until Redis has processed the SUBSCRIBE just sent: it answers one connection's commands
    in order, so its PONG to a PING sent afterwards means the channels are live.  (The
    command's own reply is a message of its own, which redis-py does not wait for.)  Messages
    that arrive meanwhile are kept."""
    await pubsub.ping()
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(CONFIRM_S):
            while True:
                raw = await pubsub.get_message(timeout=CONFIRM_S)
                if raw is None:
                    continue
                if raw.get("type") == "pong":
                    return
                if raw.get("type") == "message":
                    subscription.from_redis(_message(raw, prefix_len), time.monotonic())
    log.warning("bus subscription not confirmed", within_s=CONFIRM_S)


class RedisBus:
    """Pub/sub across processes through Redis.

    A publish hands the message to this process's subscribers at once and then to Redis,
    for the other processes (see the module's docstring).  Messages on the bus are
    ephemeral (quotes, notifications; what must not be lost goes through the outbox), so
    while Redis is unreachable a publish reaches this process's own subscribers only,
    instead of failing its caller, and each subscription re-subscribes by itself once Redis
    is back.
    """

    def __init__(
        self,
        redis: Redis,
        guard: RedisGuard | None = None,
        prefix: str = "qd:bus:",
        queue_size: int = 10_000,
    ) -> None:
        self._redis = redis
        self._guard = guard or RedisGuard()
        self._prefix = prefix
        self._queue_size = queue_size
        self._subscribers: defaultdict[str, set[_RedisSubscription]] = defaultdict(set)

    async def publish(self, channel: str, message: bytes) -> None:
        item = (channel, message)
        local = self._hand_locally(item)

        async def shared() -> None:
            # Expected before the PUBLISH leaves: its echo cannot come sooner.
            now = time.monotonic()
            for subscription in local:
                subscription.expect_echo(item, now)
            await self._redis.publish(self._prefix + channel, message)

        async def delivered_already() -> None:
            return None

        await self._guard.call("bus", shared, delivered_already)

    async def publish_stored(
        self, cache: Cache, stored: Sequence[tuple[str, bytes]], messages: Sequence[Message]
    ) -> None:
        """The writes and the PUBLISHes in one pipeline, which Redis runs in order (so
        another process's subscriber finds the values stored), and this process's
        subscribers handed the messages before its reply, as :meth:`publish` does: the
        cache reads this process's writes back until Redis acknowledges them
        (``RedisCache.writing``).  Waiting for the write before the publish cost a tick
        a turn of a busy event loop (issue 13: the write's wait was p50 0.6-0.8 ms, p99
        10-15 ms, in the stream benchmark's one-process run).
        """
        if not (isinstance(cache, RedisCache) and cache.client is self._redis):
            await _store_then_publish(self, cache, stored, messages)
            return
        with cache.writing(stored):
            handed = [(item, self._hand_locally(item)) for item in messages]

            async def shared() -> None:
                now = time.monotonic()
                for item, local in handed:
                    for subscription in local:
                        subscription.expect_echo(item, now)
                async with self._redis.pipeline(transaction=False) as pipe:
                    cache.queue_sets(pipe, stored)
                    for channel, message in messages:
                        pipe.publish(self._prefix + channel, message)
                    await pipe.execute()

            await self._guard.call("bus", shared, lambda: cache.set_locally(stored))

    def _hand_locally(self, item: Message) -> tuple[_RedisSubscription, ...]:
        local = tuple(self._subscribers.get(item[0], ()))
        for subscription in local:
            subscription.offer(item)
        return local

    @asynccontextmanager
    async def subscribe(self, channels: Sequence[str]) -> AsyncIterator[Subscription]:
        names = [self._prefix + c for c in channels]
        prefix_len = len(self._prefix)
        subscription = _RedisSubscription(self._queue_size)
        with _registered(self._subscribers, channels, subscription):
            pubsub = self._redis.pubsub(ignore_subscribe_messages=True)
            try:
                # Subscribed before returning, so nothing published after this call is missed.
                await pubsub.subscribe(*names)
                await _confirmed(pubsub, subscription, prefix_len)
            except REDIS_OUTAGE_ERRORS as exc:
                self._guard.failed("bus", exc)

            async def pump() -> None:
                nonlocal pubsub
                while True:
                    try:
                        if not pubsub.subscribed:
                            await pubsub.subscribe(*names)
                        async for raw in pubsub.listen():
                            if raw.get("type") == "message":
                                message = _message(raw, prefix_len)
                                subscription.from_redis(message, time.monotonic())
                    except REDIS_OUTAGE_ERRORS as exc:
                        self._guard.failed("bus", exc)
                        await _close_quietly(pubsub)
                        await asyncio.sleep(RETRY_AFTER_S)
                        pubsub = self._redis.pubsub(ignore_subscribe_messages=True)

            task = asyncio.create_task(pump())
            try:
                yield subscription
            finally:
                await cancel_and_wait(task)
                with contextlib.suppress(*REDIS_OUTAGE_ERRORS):
                    await pubsub.unsubscribe()
                await _close_quietly(pubsub)

    async def aclose(self) -> None:
        return None


async def _close_quietly(pubsub: PubSub) -> None:
    with contextlib.suppress(*REDIS_OUTAGE_ERRORS):
        await pubsub.aclose()
