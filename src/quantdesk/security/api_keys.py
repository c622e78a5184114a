"""API keys for programs: ``qd_<lookup>_<secret>``, shown once, stored as a hash.

The lookup part (48 random bits, hex) finds the row and is what listings show; the secret
part carries 256 random bits, so a SHA-256 hash is a safe way to store it (a slow hash
protects low-entropy secrets; this one is not).  The recognisable ``qd_`` prefix lets secret
scanners and our log redaction spot a leaked key.

A key's scopes are capped by its owner's current role on every use, so demoting a user
demotes their keys.  A verified key is remembered for a few seconds (Redis when
configured), read again ahead of that beside a request while the key is in use
(``platform.refresh_ahead``); revoking a key, disabling or demoting its owner drops that
memory at once.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hmac
import secrets
from dataclasses import dataclass

import orjson

from quantdesk.platform.context import AppContext
from quantdesk.platform.db import utcnow
from quantdesk.platform.exceptions import Unauthenticated
from quantdesk.platform.refresh_ahead import refresh_soon, stamped, unstamped
from quantdesk.security.credentials import ApiKeyRecord
from quantdesk.security.principal import ROLE_SCOPES, Principal, Scope
from quantdesk.security.services import security_services
from quantdesk.security.tokens import hash_secret_token

API_KEY_PREFIX = "qd_"
LOOKUP_HEX_CHARS = 12
CACHE_TTL_S = 10.0
REFRESH_AFTER_S = 8.5
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


async def _load(ctx: AppContext, lookup: str) -> ApiKeyRecord | None:
    cached = await ctx.cache.get(_cache_key(lookup))
    if cached is not None:
        body, due = unstamped(cached)
        if due:
            refresh_soon(ctx, _cache_key(lookup), lambda: _read(ctx, lookup))
        document = orjson.loads(body)
        if not document:
            return None
        with contextlib.suppress(KeyError, ValueError, TypeError):
            return ApiKeyRecord.from_json(document)
        # A record cached in another shape (a process of the previous release): read again.
    return await _read(ctx, lookup)


async def _read(ctx: AppContext, lookup: str) -> ApiKeyRecord | None:
    record = await security_services(ctx).credentials.api_key(lookup)
    body = orjson.dumps(record.to_json()) if record is not None else b"{}"
    await ctx.cache.set(_cache_key(lookup), stamped(body, REFRESH_AFTER_S), CACHE_TTL_S)
    return record


async def authenticate_api_key(ctx: AppContext, key: str) -> Principal:
    lookup = parse_lookup(key)
    if lookup is None:
        raise _invalid()
    record = await _load(ctx, lookup)
    if record is None or not hmac.compare_digest(record.secret_hash, hash_secret_token(key)):
        raise _invalid()
    now = utcnow()
    if record.revoked or not record.owner_active:
        raise _invalid()
    if record.expires_at is not None and record.expires_at <= now.timestamp():
        raise _invalid()
    # Every key reads: a key that may trade or administer must see what it acts on.  Nothing
    # else is implied: an admin key does not trade, a trade key does not administer
    # (docs/security.md, "API keys").
    granted = {Scope(name) for name in record.scopes.split()} | {Scope.READ}
    scopes = frozenset(granted) & ROLE_SCOPES[record.role]
    await _touch(ctx, lookup, record, now)
    return Principal(record.user_id, record.role, scopes, api_key_id=record.id)


async def _touch(ctx: AppContext, lookup: str, record: ApiKeyRecord, now: dt.datetime) -> None:
    last_used = record.last_used_at
    if last_used is not None and now.timestamp() - last_used < (
        LAST_USED_RESOLUTION.total_seconds()
    ):
        return
    marker = f"apikey-touched:{lookup}"
    if await ctx.cache.get(marker) is not None:
        return
    await ctx.cache.set(marker, b"1", LAST_USED_RESOLUTION.total_seconds())
    await security_services(ctx).credentials.touch_api_key(record.id, now)
    await ctx.cache.delete(_cache_key(lookup))
