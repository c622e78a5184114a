"""The internal publish/subscribe bus: in-process queues, or Redis pub/sub across processes.

Messages are bytes (callers encode with orjson).  Subscribers that fall behind lose the
oldest messages rather than blocking publishers: a slow WebSocket client must never stall
the tick simulator or the matching engine.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import defaultdict
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Protocol

from redis.asyncio import Redis
from redis.asyncio.client import PubSub

from quantdesk.platform.logging import get_logger
from quantdesk.platform.redisguard import REDIS_OUTAGE_ERRORS, RETRY_AFTER_S, RedisGuard
from quantdesk.platform.tasks import cancel_and_wait

log = get_logger("quantdesk.platform.bus")

Message = tuple[str, bytes]


class Subscription(Protocol):
    def __aiter__(self) -> AsyncIterator[Message]: ...
    async def get(self, wait_s: float | None = None) -> Message | None: ...


class Bus(Protocol):
    async def publish(self, channel: str, message: bytes) -> None: ...
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

    async def __aiter__(self) -> AsyncIterator[Message]:
        while True:
            yield await self.queue.get()


class MemoryBus:
    def __init__(self, queue_size: int = 10_000) -> None:
        self._subscribers: defaultdict[str, set[_QueueSubscription]] = defaultdict(set)
        self._queue_size = queue_size

    async def publish(self, channel: str, message: bytes) -> None:
        for subscription in tuple(self._subscribers.get(channel, ())):
            subscription.offer((channel, message))

    @asynccontextmanager
    async def subscribe(self, channels: Sequence[str]) -> AsyncIterator[Subscription]:
        subscription = _QueueSubscription(self._queue_size)
        for channel in channels:
            self._subscribers[channel].add(subscription)
        try:
            yield subscription
        finally:
            for channel in channels:
                self._subscribers[channel].discard(subscription)
                if not self._subscribers[channel]:
                    del self._subscribers[channel]

    async def aclose(self) -> None:
        self._subscribers.clear()


CONFIRM_S = 2.0


async def _confirmed(pubsub: PubSub, subscription: _QueueSubscription, prefix_len: int) -> None:
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
                    name = raw["channel"]
                    name = name.decode() if isinstance(name, bytes) else str(name)
                    subscription.offer((name[prefix_len:], bytes(raw["data"])))
    log.warning("bus subscription not confirmed", within_s=CONFIRM_S)


class RedisBus:
    """Pub/sub across processes through Redis.

    Messages on the bus are ephemeral (quotes, notifications; what must not be lost goes
    through the outbox), so while Redis is unreachable a publish reaches this process's own
    subscribers only, instead of failing its caller, and each subscription re-subscribes by
    itself once Redis is back.
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
        # This process's subscriptions, for delivery while Redis is down.
        self._local = MemoryBus(queue_size)

    async def publish(self, channel: str, message: bytes) -> None:
        async def shared() -> None:
            await self._redis.publish(self._prefix + channel, message)

        await self._guard.call("bus", shared, lambda: self._local.publish(channel, message))

    @asynccontextmanager
    async def subscribe(self, channels: Sequence[str]) -> AsyncIterator[Subscription]:
        names = [self._prefix + c for c in channels]
        prefix_len = len(self._prefix)
        async with self._local.subscribe(channels) as local:
            subscription = local
            assert isinstance(subscription, _QueueSubscription)  # noqa: S101 - MemoryBus's own
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
                                name = raw["channel"]
                                name = name.decode() if isinstance(name, bytes) else str(name)
                                subscription.offer((name[prefix_len:], bytes(raw["data"])))
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
