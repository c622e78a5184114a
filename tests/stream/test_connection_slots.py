"""Connection slots across processes: each process renews its live connections' slots in
Redis, so a killed process's slots lapse and a live one's never do.  Needs Redis: runs in
the PostgreSQL + Redis pass."""

from __future__ import annotations

import time
import uuid

import pytest
from fastapi import FastAPI

from quantdesk.platform.context import AppContext
from quantdesk.stream.service import RENEW_USERS, ConnectionSlots

pytestmark = pytest.mark.postgres_only


async def test_a_renewal_moves_every_live_slot_and_only_those(app: FastAPI) -> None:
    ctx: AppContext = app.state.ctx
    assert ctx.redis is not None
    slots = ConnectionSlots(ctx, ttl_s=10.0)
    # More users than one renewal pipeline takes, and one user with many connections.
    users = [uuid.uuid4() for _ in range(RENEW_USERS + 20)]
    busy = users[0]
    live = [(busy, f"busy-{n}") for n in range(50)] + [(user, "only") for user in users[1:]]
    ctx.settings.stream_max_connections_per_user = 100
    for user_id, connection_id in [*live, (busy, "gone")]:
        assert await slots.claim(user_id, connection_id)
    claimed_until = time.time() + 10.0

    slots.ttl_s = 600.0
    renewed_from = time.time() + 600.0
    await slots.renew(live)

    for user_id, connection_id in [(busy, "busy-0"), (busy, "busy-49"), live[1], live[-1]]:
        score = await ctx.redis.zscore(slots._key(user_id), connection_id)
        assert score is not None
        assert renewed_from <= score <= time.time() + 600.0
        assert 590_000 < await ctx.redis.pttl(slots._key(user_id)) <= 600_000
    # A connection no longer live here is left to lapse.
    gone = await ctx.redis.zscore(slots._key(busy), "gone")
    assert gone is not None
    assert gone <= claimed_until
    assert len(await ctx.redis.zrange(slots._key(busy), 0, -1)) == 51
