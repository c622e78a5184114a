"""Real concurrent requests against the app, and what came back.

``await burst(client, [Call("POST", "/api/v1/auth/refresh", json=...)] * 8)`` sends the calls
at the same moment, each its own request through the whole ASGI stack (middleware, auth,
one unit of work per request, a connection of its own from the pool), and returns every
outcome -- status, body, headers, latency -- in the order the calls were given.

Concurrency is real where it matters for races: the requests interleave at every await, so
on PostgreSQL their transactions overlap on separate connections (row locks decide who
waits) and on SQLite they queue for the write lock the way the server's requests do.  A
barrier releases all of them together once every one is ready, so the first call is not
finished before the last one is scheduled.  Works with any ``httpx.AsyncClient``: the
``client`` fixture (ASGI in process) or a client of a real server.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx


@dataclass(frozen=True)
class Call:
    """One request to send: ``client.request(method, url, json=..., headers=..., params=...)``."""

    method: str
    url: str
    json: Any = None
    headers: Mapping[str, str] = field(default_factory=dict)
    params: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Outcome:
    call: Call
    status: int
    body: Any  # decoded JSON (problem+json too), else the text
    headers: httpx.Headers
    latency_s: float


@dataclass(frozen=True)
class Burst:
    """The outcomes of one burst, in the order the calls were given."""

    outcomes: list[Outcome]

    @property
    def statuses(self) -> list[int]:
        return [outcome.status for outcome in self.outcomes]

    def status_counts(self) -> Counter[int]:
        return Counter(self.statuses)

    def with_status(self, status: int) -> list[Outcome]:
        return [outcome for outcome in self.outcomes if outcome.status == status]

    def only(self, status: int) -> Outcome:
        """The one outcome with ``status``; fails (naming every status) unless exactly one."""
        matching = self.with_status(status)
        assert len(matching) == 1, f"expected one {status}, got {self.statuses}"
        return matching[0]

    @property
    def max_latency_s(self) -> float:
        return max(outcome.latency_s for outcome in self.outcomes)


def _body(response: httpx.Response) -> Any:
    content_type = response.headers.get("content-type", "")
    if "json" in content_type and response.content:
        return response.json()
    return response.text


async def burst(
    client: httpx.AsyncClient, calls: Sequence[Call], *, timeout_s: float = 60.0
) -> Burst:
    """Send every call at once; wait for all of them (``timeout_s`` bounds the whole burst,
    so a deadlock fails the test instead of hanging the suite)."""
    if not calls:
        return Burst([])
    ready = asyncio.Barrier(len(calls))

    async def send(call: Call) -> Outcome:
        await ready.wait()
        started = time.perf_counter()
        response = await client.request(
            call.method,
            call.url,
            json=call.json,
            headers=dict(call.headers),
            params=dict(call.params),
        )
        return Outcome(
            call=call,
            status=response.status_code,
            body=_body(response),
            headers=response.headers,
            latency_s=time.perf_counter() - started,
        )

    async with asyncio.timeout(timeout_s):
        outcomes = await asyncio.gather(*(send(call) for call in calls))
    return Burst(list(outcomes))


async def repeat(client: httpx.AsyncClient, call: Call, times: int) -> Burst:
    """The same request ``times`` times at once (one token, one idempotency key, ...)."""
    return await burst(client, [call] * times)
