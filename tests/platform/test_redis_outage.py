"""Redis killed and restarted under load: no 5xx but 503, and recovery without a restart.

Issue 20 item 2: with Redis killed, every route (login and register too) answered 500 until
it came back.  Now the cache, the bus and the rate limits fall back to per-process state
(``platform.redisguard``), counted in ``quantdesk_redis_fallbacks_total``, and go back to
Redis by themselves once it answers again.  This test owns its Redis server (the suite's
shared one keeps serving the other tests) and runs in the PostgreSQL + Redis pass.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator
from contextlib import AsyncExitStack
from dataclasses import dataclass, field

import httpx
import pytest
import redis as redis_sync

from quantdesk.app import create_app
from quantdesk.platform.context import AppContext
from quantdesk.settings import Settings
from tests.support.servers import RedisServer

pytestmark = pytest.mark.postgres_only

WORKERS = 6
PAUSE_S = 0.02  # between one worker's requests: a bounded load, a few hundred requests
HEALTHY_S = 0.6
OUTAGE_S = 1.5
RECOVERED_S = 2.0
# One retry interval of the guard (1 s) plus slack for a loaded machine.
RECOVERY_DEADLINE_S = 5.0
PASSWORD = "a long and unusual passphrase"


@pytest.fixture
def own_redis() -> Iterator[RedisServer]:
    server = RedisServer()
    server.start()
    yield server
    server.stop()


@dataclass
class Load:
    phase: str = "healthy"
    seen: dict[str, list[int]] = field(default_factory=dict)

    def record(self, status: int) -> None:
        self.seen.setdefault(self.phase, []).append(status)


def _fallbacks(ctx: AppContext, use: str) -> float:
    value = ctx.metrics.registry.get_sample_value("quantdesk_redis_fallbacks_total", {"use": use})
    return value or 0.0


async def test_redis_killed_and_restarted_under_load(
    settings: Settings, own_redis: RedisServer
) -> None:
    tuned = settings.model_copy(
        update={"redis_url": own_redis.url(0), "rate_limit_login_account": "100000/minute"}
    )
    application = create_app(tuned)
    ctx: AppContext = application.state.ctx
    async with AsyncExitStack() as stack:
        await stack.enter_async_context(application.router.lifespan_context(application))
        quotes = await stack.enter_async_context(ctx.bus.subscribe(["probe"]))
        transport = httpx.ASGITransport(app=application, client=("203.0.113.10", 50000))
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            accounts = []
            for n in range(WORKERS):
                email = f"load-{n}-{uuid.uuid4().hex[:8]}@example.com"
                body = {"email": email, "password": PASSWORD}
                assert (await client.post("/api/v1/auth/register", json=body)).status_code == 201
                login = await client.post("/api/v1/auth/login", json=body)
                accounts.append((body, {"Authorization": f"Bearer {login.json()['access_token']}"}))
            created = await client.post(
                "/api/v1/api-keys",
                headers=accounts[0][1],
                json={"name": "bot", "scopes": ["read"]},
            )
            api_key = {"Authorization": f"Bearer {created.json()['key']}"}

            load = Load()
            stop = asyncio.Event()
            recovered = asyncio.Event()
            assert ctx.redis_guard is not None
            ctx.redis_guard.on_recovery(recovered.set)

            async def worker(n: int) -> None:
                credentials, bearer = accounts[n]
                calls = [
                    lambda: client.get("/api/v1/users/me", headers=bearer),
                    lambda: client.post("/api/v1/auth/login", json=credentials),
                    lambda: client.get("/api/v1/users/me", headers=api_key),
                    lambda: client.post(
                        "/api/v1/auth/register",
                        json={
                            "email": f"r-{uuid.uuid4().hex[:12]}@example.com",
                            "password": PASSWORD,
                        },
                    ),
                    lambda: client.get("/api/v1/users/me/sessions", headers=bearer),
                ]
                turn = n
                while not stop.is_set():
                    response = await calls[turn % len(calls)]()
                    load.record(response.status_code)
                    turn += 1
                    await asyncio.sleep(PAUSE_S)

            tasks = [asyncio.create_task(worker(n)) for n in range(WORKERS)]
            await asyncio.sleep(HEALTHY_S)
            assert own_redis.process is not None
            own_redis.process.kill()  # SIGKILL: no goodbye to the clients
            own_redis.process.wait()
            load.phase = "outage"
            # The bus still reaches this process's subscribers while Redis is down.
            await ctx.bus.publish("probe", b"during")
            assert await quotes.get(1.0) == ("probe", b"during")
            await asyncio.sleep(OUTAGE_S)
            load.phase = "restarting"
            own_redis.start()  # the same port; nothing about the app is restarted
            load.phase = "recovered"
            # The guard tries Redis again up to RETRY_AFTER_S after its last failed probe,
            # which may have come just before the restart: wait for that probe (bounded)
            # rather than for a fixed time, or the snapshot can precede it.
            await asyncio.wait_for(recovered.wait(), RECOVERY_DEADLINE_S)
            fallbacks_after_recovery = _fallbacks(ctx, "rate_limit")
            await asyncio.sleep(RECOVERED_S / 2)
            stop.set()
            await asyncio.gather(*tasks)
            # ... and after it.  (A process's own messages reach its subscribers without
            # Redis, so re-subscription, which only another process's messages show, is
            # tested in tests/platform/test_bus_redis.py.)
            await ctx.bus.publish("probe", b"after")
            assert await quotes.get(1.0) == ("probe", b"after")

            every = [status for statuses in load.seen.values() for status in statuses]
            assert len(every) < 2000  # the load stays bounded
            server_errors = sorted({s for s in every if s >= 500 and s != 503})
            assert server_errors == [], load.seen
            # Degraded, not refused: the outage was served by the per-process fallbacks.
            assert set(load.seen["outage"]) <= {200, 201}, load.seen["outage"]
            assert len(load.seen["outage"]) >= WORKERS
            assert _fallbacks(ctx, "rate_limit") > 0
            assert _fallbacks(ctx, "cache") > 0
            assert set(load.seen["recovered"]) <= {200, 201}
            # Back on Redis by itself: no fallback once the guard saw Redis answer again,
            # and the budgets are counted in the restarted server again.
            assert _fallbacks(ctx, "rate_limit") == fallbacks_after_recovery
            probe = redis_sync.Redis.from_url(own_redis.url(0))
            try:
                assert probe.keys("qd:ratelimit*")
            finally:
                probe.close()
            started = time.perf_counter()
            ready = await client.get("/health/ready")
            assert ready.status_code == 200, ready.text
            assert time.perf_counter() - started < 2.0
