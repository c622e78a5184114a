"""Stream tickets: a single-use, short-lived proof of identity for the WebSocket's first frame.

A client holding a bearer token or API key mints one with ``POST /api/v1/stream/tickets``
and sends it as ``{"op": "auth", "ticket": ...}``.  No credential ever travels in a URL
(where proxies and access logs keep it), and a ticket that leaks is worthless after one use
or 30 seconds.

Kept in the cache (Redis when configured, so a ticket minted through one process is good on
any), under the SHA-256 of the ticket, never the ticket itself.  Single use without a
read-then-delete race: redeeming increments a claim counter (atomic in Redis and on the
event loop) and only the caller that sees 1 wins.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
import uuid
from dataclasses import dataclass

import orjson

from quantdesk.platform.cache import Cache
from quantdesk.security.principal import Principal, Role, Scope

TICKET_PREFIX = "qdst_"


@dataclass(frozen=True, slots=True)
class StreamIdentity:
    """Who a stream connection is, and the credential whose revocation must end it.

    ``api_key_lookup`` is the public lookup part of the API key (never its secret), so the
    stream can ask whether the key is still good."""

    principal: Principal
    api_key_lookup: str | None = None

    def to_json(self) -> bytes:
        p = self.principal
        return orjson.dumps(
            {
                "user_id": str(p.user_id),
                "role": p.role.value,
                "scopes": sorted(s.value for s in p.scopes),
                "session_id": None if p.session_id is None else str(p.session_id),
                "api_key_id": None if p.api_key_id is None else str(p.api_key_id),
                "api_key_lookup": self.api_key_lookup,
            }
        )

    @classmethod
    def from_json(cls, body: bytes) -> StreamIdentity:
        d = orjson.loads(body)
        principal = Principal(
            user_id=uuid.UUID(d["user_id"]),
            role=Role(d["role"]),
            scopes=frozenset(Scope(s) for s in d["scopes"]),
            session_id=None if d["session_id"] is None else uuid.UUID(d["session_id"]),
            api_key_id=None if d["api_key_id"] is None else uuid.UUID(d["api_key_id"]),
        )
        return cls(principal, d.get("api_key_lookup"))


def _digest(ticket: str) -> str:
    return hashlib.sha256(ticket.encode()).hexdigest()


async def mint_ticket(
    cache: Cache, identity: StreamIdentity, ttl_s: float, now: dt.datetime
) -> tuple[str, dt.datetime]:
    ticket = TICKET_PREFIX + secrets.token_urlsafe(32)
    await cache.set(f"stream:ticket:{_digest(ticket)}", identity.to_json(), ttl_s)
    return ticket, now + dt.timedelta(seconds=ttl_s)


async def redeem_ticket(cache: Cache, ticket: str, ttl_s: float) -> StreamIdentity | None:
    """The identity behind ``ticket`` if it is live and unused; it is used up either way."""
    if not ticket.startswith(TICKET_PREFIX) or len(ticket) > 128:
        return None
    digest = _digest(ticket)
    body = await cache.get(f"stream:ticket:{digest}")
    if body is None:
        return None
    if await cache.incr(f"stream:ticket-claim:{digest}", ttl_s * 2) != 1:
        return None
    await cache.delete(f"stream:ticket:{digest}")
    return StreamIdentity.from_json(body)
