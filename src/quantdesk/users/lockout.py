"""Counting failed authentication attempts per account, and locking the account out.

Password failures at sign-in and at re-authentication, and wrong second-factor codes, all
count towards one progressive lockout: ``lockout_threshold`` failures lock the account for
``lockout_base_s``, doubling with every further lockout up to ``lockout_max_s``.  The count
lives on the user row, changed under that row's lock, so concurrent guesses cannot overtake
it.  Addresses without an account are counted the same way in the cache ("phantom"
accounts), so a lockout answer does not reveal whether an account exists.
"""

from __future__ import annotations

import datetime as dt
import uuid

import orjson
from sqlalchemy.ext.asyncio import AsyncSession

from quantdesk.platform.client import ClientInfo
from quantdesk.platform.context import AppContext
from quantdesk.platform.db import utcnow
from quantdesk.platform.exceptions import RateLimited
from quantdesk.security.audit import SecurityEventType, record_security_event
from quantdesk.users.models import User
from quantdesk.users.repository import UserRepository


class AccountLocked(RateLimited):
    type_slug = "account-locked"
    title = "Account temporarily locked"


def lockout_duration(ctx: AppContext, lockouts: int) -> dt.timedelta:
    """15 minutes, doubling with every further lockout, capped (settings)."""
    seconds = ctx.settings.lockout_base_s * 2 ** max(0, lockouts - 1)
    return dt.timedelta(seconds=min(seconds, ctx.settings.lockout_max_s))


def locked_error(until: dt.datetime) -> AccountLocked:
    retry_after = max(1, int((until - utcnow()).total_seconds()))
    return AccountLocked(
        "too many failed sign-in attempts; try again later", retry_after=retry_after
    )


def _phantom_key(index: str) -> str:
    return f"login-failures:{index}"


async def phantom_state(ctx: AppContext, index: str) -> dict[str, float]:
    raw = await ctx.cache.get(_phantom_key(index))
    state: dict[str, float] = orjson.loads(raw) if raw else {}
    return state


async def phantom_failure(ctx: AppContext, index: str) -> None:
    """Count failures for an address with no account, exactly like a real one is counted."""
    state = await phantom_state(ctx, index)
    failures = state.get("failures", 0) + 1
    lockouts = state.get("lockouts", 0)
    locked_until = state.get("locked_until", 0.0)
    if failures >= ctx.settings.lockout_threshold:
        lockouts += 1
        failures = 0
        locked_until = (utcnow() + lockout_duration(ctx, int(lockouts))).timestamp()
    document = {"failures": failures, "lockouts": lockouts, "locked_until": locked_until}
    await ctx.cache.set(
        _phantom_key(index), orjson.dumps(document), float(ctx.settings.lockout_max_s * 2)
    )


async def register_failure(
    ctx: AppContext, client: ClientInfo | None, user_id: uuid.UUID, *, reason: str
) -> None:
    """One failed attempt on an existing account, in its own committed unit of work.

    For callers without a unit of work of their own (sign-in); a request that has one
    counts with ``count_failure`` in it instead, so that it is the only writer.
    """
    async with ctx.database.session(immediate=True) as db:
        user = await UserRepository(db).get(user_id, for_update=True)
        if user is None:
            return
        await count_failure(ctx, db, client, user, reason=reason)


async def count_failure(
    ctx: AppContext, db: AsyncSession, client: ClientInfo | None, user: User, *, reason: str
) -> None:
    """Count one failure on ``user`` (locked by the caller) in ``db``; lock out at the threshold.

    The caller commits ``db`` before it answers the failure, so the count and its events
    outlive the error response.
    """
    user.failed_logins += 1
    await record_security_event(
        ctx,
        SecurityEventType.LOGIN_FAILED,
        user_id=user.id,
        client=client,
        details={"reason": reason, "failures": user.failed_logins},
        session=db,
    )
    if user.failed_logins >= ctx.settings.lockout_threshold:
        user.lockouts += 1
        user.failed_logins = 0
        duration = lockout_duration(ctx, user.lockouts)
        user.locked_until = utcnow() + duration
        await record_security_event(
            ctx,
            SecurityEventType.LOCKED_OUT,
            user_id=user.id,
            client=client,
            details={"lockouts": user.lockouts, "seconds": int(duration.total_seconds())},
            session=db,
        )
