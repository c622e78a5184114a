"""Is a sign-in session still good?  Asked on every request that carries an access token.

The database is the truth (read through the ``CredentialStore`` the app installed); the
cache (Redis when configured, so every process sees a revocation at once) answers most
requests.  A live session is remembered for a short while only; a revoked one for as long as
any access token of it can still be unexpired, after which the token itself is dead and the
marker is no longer needed.

A live entry is read again ``REFRESH_AFTER_S`` after it was read, beside the request that
finds it so (``platform.refresh_ahead``): a session in use never misses the cache, and the
bound on an unseen revocation stays ``ACTIVE_CACHE_TTL_S``.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable

from quantdesk.platform.context import AppContext
from quantdesk.platform.db import utcnow
from quantdesk.platform.refresh_ahead import refresh_soon, stamped, unstamped
from quantdesk.security.services import security_services

# How long another process may keep trusting a session it saw live without Redis (and the
# longest a revocation can go unseen while Redis is down: docs/operations.md).
ACTIVE_CACHE_TTL_S = 30.0
REFRESH_AFTER_S = 25.0
_REVOKED = b"0"  # an active session is cached as its owner's id (stamped)


def _key(session_id: uuid.UUID) -> str:
    return f"session:{session_id}"


def _revoked_ttl(ctx: AppContext) -> float:
    return float(ctx.settings.access_token_ttl_s + 120)


async def session_is_active(ctx: AppContext, session_id: uuid.UUID, user_id: uuid.UUID) -> bool:
    """True when the session is live and belongs to ``user_id``."""
    owner = user_id.bytes
    cached = await ctx.cache.get(_key(session_id))
    if cached == _REVOKED:
        return False
    if cached is None:
        return await _read(ctx, session_id) == owner
    cached_owner, due = unstamped(cached)
    if due:
        refresh_soon(ctx, _key(session_id), lambda: _read(ctx, session_id))
    return cached_owner == owner


async def _read(ctx: AppContext, session_id: uuid.UUID) -> bytes | None:
    """The session's owner if it is live (cached as such), else ``None`` (cached revoked)."""
    record = await security_services(ctx).credentials.session(session_id, now=utcnow())
    if record is not None and record.active:
        # A revocation marked while this read was under way wins: the read may predate its
        # commit, and writing "live" over the marker would undo a logout for 30 s.
        if await ctx.cache.get(_key(session_id)) == _REVOKED:
            return None
        owner = record.user_id.bytes
        await ctx.cache.set(_key(session_id), stamped(owner, REFRESH_AFTER_S), ACTIVE_CACHE_TTL_S)
        return owner
    await ctx.cache.set(_key(session_id), _REVOKED, _revoked_ttl(ctx))
    return None


async def forget_sessions(ctx: AppContext, session_ids: Iterable[uuid.UUID]) -> None:
    """Mark sessions revoked in the cache; call after the revocation is committed."""
    items = [(_key(session_id), _REVOKED) for session_id in session_ids]
    if items:
        await ctx.cache.set_many(items, _revoked_ttl(ctx))
