"""Rate limits applied to requests: the decision, the headers, the 429 and the audit trail.

The limiter itself is ``platform.ratelimit``; this module ties it to a request: the
decision is kept in the request's ``ClientInfo.notes`` (its scope state) so
``security.http`` can put the ``RateLimit-*`` headers on the response, a refusal becomes
``RateLimited`` (429 problem+json with ``Retry-After``), and refusals are security events,
written once per key and window so that a flood of refused requests cannot become a flood
of database rows.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from quantdesk.platform.client import ClientInfo
from quantdesk.platform.context import AppContext
from quantdesk.platform.exceptions import RateLimited
from quantdesk.platform.ratelimit import RateLimitDecision
from quantdesk.security.audit import SecurityEventType, record_security_event
from quantdesk.security.principal import Principal
from quantdesk.security.services import security_services

SCOPE_STATE_KEY = "ratelimit"


def remember_decision(client: ClientInfo, decision: RateLimitDecision) -> None:
    """Keep the tightest decision of this request for the response headers."""
    state = client.notes
    current = state.get(SCOPE_STATE_KEY)
    if not isinstance(current, RateLimitDecision) or decision.remaining <= current.remaining:
        state[SCOPE_STATE_KEY] = decision


async def enforce_rate_limit(
    ctx: AppContext,
    client: ClientInfo,
    limit_class: str,
    key: str,
    *,
    principal: Principal | None = None,
    user_id: uuid.UUID | None = None,
) -> RateLimitDecision:
    decisions = await enforce_rate_limits(
        ctx, client, [(limit_class, key)], principal=principal, user_id=user_id
    )
    return decisions[0]


async def enforce_rate_limits(
    ctx: AppContext,
    client: ClientInfo,
    counted: Sequence[tuple[str, str]],
    *,
    tested: Sequence[tuple[str, str]] = (),
    principal: Principal | None = None,
    user_id: uuid.UUID | None = None,
) -> list[RateLimitDecision]:
    """Several classes decided as one (``RateLimiter.hit_many``): counted in all, or a 429
    counted in none."""
    decisions = await security_services(ctx).limiter.hit_many(counted, tested=tested)
    for decision in decisions:
        remember_decision(client, decision)
    if decisions and not decisions[0].allowed:
        refused = decisions[0]
        key = next(k for c, k in (*tested, *counted) if c == refused.limit_class)
        raise await _refusal(ctx, client, refused, key, principal.user_id if principal else user_id)
    return decisions


async def refuse_if_known_exhausted(
    ctx: AppContext, client: ClientInfo, limit_class: str, key: str
) -> None:
    """Raise ``RateLimited`` when ``key`` has no budget left in ``limit_class`` as far as this
    process knows without a round trip (``RateLimiter.known_refusal``); count nothing."""
    decision = security_services(ctx).limiter.known_refusal(limit_class, key)
    if decision is not None:
        remember_decision(client, decision)
        raise await _refusal(ctx, client, decision, key, None)


async def _refusal(
    ctx: AppContext,
    client: ClientInfo,
    decision: RateLimitDecision,
    key: str,
    user_id: uuid.UUID | None,
) -> RateLimited:
    limit_class = decision.limit_class
    await _audit_once(ctx, client, decision, key, user_id)
    error = RateLimited(
        f"too many requests ({limit_class}); retry in {max(1, decision.reset_after_s)} s",
        retry_after=max(1, decision.reset_after_s),
        limit=limit_class,
    )
    error.headers.update(decision.headers())
    return error


async def _audit_once(
    ctx: AppContext,
    client: ClientInfo,
    decision: RateLimitDecision,
    key: str,
    user_id: uuid.UUID | None,
) -> None:
    marker = f"ratelimit-audited:{decision.limit_class}:{key}"
    if await ctx.cache.get(marker) is not None:
        return
    await ctx.cache.set(marker, b"1", float(max(1, decision.reset_after_s)))
    await record_security_event(
        ctx,
        SecurityEventType.RATE_LIMITED,
        user_id=user_id,
        client=client,
        details={"limit": decision.limit_class, "path": client.path},
    )
