"""API keys for programs: ``qd_<lookup>_<secret>``, shown once, stored as a hash.

The lookup part (48 random bits, hex) finds the row and is what listings show; the secret
part carries 256 random bits, so a SHA-256 hash is a safe way to store it (a slow hash
protects low-entropy secrets; this one is not).  The recognisable ``qd_`` prefix lets secret
scanners and our log redaction spot a leaked key.

A key's scopes are capped by its owner's current role on every use, so demoting a user
demotes their keys.  A verified key is remembered for a few seconds (Redis when
configured); revoking a key, disabling or demoting its owner drops that memory at once.
"""

from __future__ import annotations

import datetime as dt
import hmac
import secrets
import uuid
from dataclasses import dataclass

import orjson
from sqlalchemy import select, update

from quantdesk.platform.context import AppContext
from quantdesk.platform.db import utcnow
from quantdesk.platform.exceptions import Unauthenticated
from quantdesk.security.principal import ROLE_SCOPES, Principal, Role, Scope
from quantdesk.security.tokens import hash_secret_token
from quantdesk.users.models import ApiKey, User

API_KEY_PREFIX = "qd_"
LOOKUP_HEX_CHARS = 12
CACHE_TTL_S = 10.0
# last_used_at is written at most this often per key: a busy program must not turn every
# request into a database write.
LAST_USED_RESOLUTION = dt.timedelta(minutes=1)


@dataclass(frozen=True, slots=True)
class NewApiKey:
    key: str
    lookup: str
    secret_hash: str


def generate_api_key() -> NewApiKey:
    lookup = secrets.token_hex(LOOKUP_HEX_CHARS // 2)
    key = f"{API_KEY_PREFIX}{lookup}_{secrets.token_urlsafe(32)}"
    return NewApiKey(key, lookup, hash_secret_token(key))


def parse_lookup(key: str) -> str | None:
    if not key.startswith(API_KEY_PREFIX):
        return None
    lookup, sep, secret = key[len(API_KEY_PREFIX) :].partition("_")
    if not sep or len(lookup) != LOOKUP_HEX_CHARS or len(secret) < 32:
        return None
    try:
        int(lookup, 16)
    except ValueError:
        return None
    return lookup


def display_prefix(lookup: str) -> str:
    return f"{API_KEY_PREFIX}{lookup}_"


def _cache_key(lookup: str) -> str:
    return f"apikey:{lookup}"


async def forget_api_keys(ctx: AppContext, lookups: list[str]) -> None:
    for lookup in lookups:
        await ctx.cache.delete(_cache_key(lookup))


def _invalid() -> Unauthenticated:
    error = Unauthenticated("the API key is invalid, expired or revoked")
    error.headers["WWW-Authenticate"] = 'Bearer realm="quantdesk", error="invalid_token"'
    return error


async def _load(ctx: AppContext, lookup: str) -> dict[str, object] | None:
    cached = await ctx.cache.get(_cache_key(lookup))
    if cached is not None:
        record: dict[str, object] = orjson.loads(cached)
        return record or None
    async with ctx.database.session() as db:
        row = (
            await db.execute(
                select(ApiKey, User.role, User.is_active)
                .join(User, User.id == ApiKey.user_id)
                .where(ApiKey.lookup == lookup)
            )
        ).first()
    if row is None:
        await ctx.cache.set(_cache_key(lookup), b"{}", CACHE_TTL_S)
        return None
    key, role, active = row
    record = {
        "id": str(key.id),
        "user_id": str(key.user_id),
        "secret_hash": key.secret_hash,
        "scopes": key.scopes,
        "expires_at": key.expires_at.timestamp() if key.expires_at else None,
        "revoked": key.revoked_at is not None,
        "last_used_at": key.last_used_at.timestamp() if key.last_used_at else None,
        "role": role,
        "active": bool(active),
    }
    await ctx.cache.set(_cache_key(lookup), orjson.dumps(record), CACHE_TTL_S)
    return record


async def authenticate_api_key(ctx: AppContext, key: str) -> Principal:
    lookup = parse_lookup(key)
    if lookup is None:
        raise _invalid()
    record = await _load(ctx, lookup)
    if record is None or not hmac.compare_digest(
        str(record["secret_hash"]), hash_secret_token(key)
    ):
        raise _invalid()
    now = utcnow()
    expires = record["expires_at"]
    if record["revoked"] or not record["active"]:
        raise _invalid()
    if isinstance(expires, float | int) and expires <= now.timestamp():
        raise _invalid()
    role = Role(str(record["role"]))
    scopes = frozenset(Scope(name) for name in str(record["scopes"]).split()) & ROLE_SCOPES[role]
    key_id = uuid.UUID(str(record["id"]))
    await _touch(ctx, lookup, key_id, record.get("last_used_at"), now)
    return Principal(uuid.UUID(str(record["user_id"])), role, scopes, api_key_id=key_id)


async def _touch(
    ctx: AppContext, lookup: str, key_id: uuid.UUID, last_used: object, now: dt.datetime
) -> None:
    if isinstance(last_used, float | int) and now.timestamp() - last_used < (
        LAST_USED_RESOLUTION.total_seconds()
    ):
        return
    marker = f"apikey-touched:{lookup}"
    if await ctx.cache.get(marker) is not None:
        return
    await ctx.cache.set(marker, b"1", LAST_USED_RESOLUTION.total_seconds())
    async with ctx.database.session() as db:
        await db.execute(update(ApiKey).where(ApiKey.id == key_id).values(last_used_at=now))
    await ctx.cache.delete(_cache_key(lookup))
