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
        try:
            return await asyncio.wait_for(self.queue.get(), wait_s)
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


class RedisBus:
    def __init__(self, redis: Redis, prefix: str = "qd:bus:", queue_size: int = 10_000) -> None:
        self._redis = redis
        self._prefix = prefix
        self._queue_size = queue_size

    async def publish(self, channel: str, message: bytes) -> None:
        await self._redis.publish(self._prefix + channel, message)

    @asynccontextmanager
    async def subscribe(self, channels: Sequence[str]) -> AsyncIterator[Subscription]:
        pubsub = self._redis.pubsub(ignore_subscribe_messages=True)
        await pubsub.subscribe(*(self._prefix + c for c in channels))
        subscription = _QueueSubscription(self._queue_size)
        prefix_len = len(self._prefix)

        async def pump() -> None:
            async for raw in pubsub.listen():
                if raw.get("type") == "message":
                    name = raw["channel"]
                    name = name.decode() if isinstance(name, bytes) else str(name)
                    subscription.offer((name[prefix_len:], bytes(raw["data"])))

        task = asyncio.create_task(pump())
        try:
            yield subscription
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
            await pubsub.unsubscribe()
            await pubsub.aclose()  # type: ignore[no-untyped-call]

    async def aclose(self) -> None:
        return None
