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
    decision = await security_services(ctx).limiter.hit(limit_class, key)
    remember_decision(client, decision)
    if decision.allowed:
        return decision
    raise await _refusal(ctx, client, decision, key, principal.user_id if principal else user_id)


async def refuse_if_exhausted(
    ctx: AppContext, client: ClientInfo, limit_class: str, key: str
) -> None:
    """Raise ``RateLimited`` when ``key`` has no budget left in ``limit_class``; count nothing."""
    decision = await security_services(ctx).limiter.exhausted(limit_class, key)
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
