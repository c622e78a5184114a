"""The signed-in user's profile (``GET /api/v1/users/me``), remembered for a few seconds.

Why: clients ask for ``/users/me`` all the time (the dashboard on every page, programs to
check their key), and reading the row is a unit of work of its own: on SQLite nine driver
calls through aiosqlite's thread, about five times the cost of the rest of the request
(authentication included).  So the fields ``/users/me`` shows are kept in the app cache
for ``PROFILE_TTL_S``, keyed by the user id, with the e-mail address still encrypted (the
cache may be Redis, which must hold no plaintext personal data); it is decrypted once per
snapshot in the process that answers, and the answer kept there (``_render``).

Nothing decides access from this snapshot: authentication checks the session (or the API
key record and its owner's current role and status) on every request, as before.  A change
of a shown field (MFA on or off, role, status, erasure) calls ``forget_profile`` in the
request that makes it, which leaves a marker rather than deleting the entry: until the
marker expires, readers go to the database and cache nothing, so the requests that follow
a change see it, and one that read the row while the change was being committed puts the
old profile back for no longer than ``PROFILE_TTL_S`` (the cache has no compare-and-set).
Changes made by another process without Redis (``quantdesk admin`` on a single node) show
after at most ``PROFILE_TTL_S``, well within the 30 s in which such a process's session
revocations reach the server (``security.sessions``).
"""

from __future__ import annotations

import datetime as dt
import uuid

import orjson

from quantdesk.platform.context import AppContext
from quantdesk.platform.exceptions import NotFound
from quantdesk.platform.refresh_ahead import refresh_soon, stamped, unstamped
from quantdesk.security.principal import Role
from quantdesk.security.services import security_services
from quantdesk.users import schemas
from quantdesk.users.models import EMAIL_FIELD, User
from quantdesk.users.repository import UserRepository

PROFILE_TTL_S = 30.0
REFRESH_AFTER_S = 25.0
RENDERED_MAX = 10_000
_CHANGED = b"changed"
_RENDERED = "user_profiles_rendered"  # ctx.extensions: (user, snapshot) -> its JSON


def _key(user_id: uuid.UUID) -> str:
    return f"user-profile:{user_id}"


def _snapshot(user: User) -> bytes:
    return orjson.dumps(
        {
            "email": user.email_encrypted,
            "role": user.role,
            "is_active": user.is_active,
            "mfa_enabled": user.mfa_enabled,
            "created_at": user.created_at.isoformat(),
        }
    )


def _render(ctx: AppContext, user_id: uuid.UUID, snapshot: bytes) -> bytes:
    """The JSON ``GET /users/me`` answers for ``snapshot``, rendered once per snapshot: the
    address's decryption and the model's validation and encoding were a third of the work
    of a cached request.  The renderings are this process's, dropped together when
    ``RENDERED_MAX`` are held (a changed profile is a new snapshot, so never a stale one)."""
    rendered: dict[tuple[uuid.UUID, bytes], bytes] = ctx.extensions.setdefault(_RENDERED, {})
    body = rendered.get((user_id, snapshot))
    if body is not None:
        return body
    document = orjson.loads(snapshot)
    ciphertext = document["email"]
    email = security_services(ctx).pii.decrypt(ciphertext, field=EMAIL_FIELD) if ciphertext else ""
    body = (
        schemas.UserOut(
            id=user_id,
            email=email,
            role=Role(document["role"]),
            is_active=bool(document["is_active"]),
            mfa_enabled=bool(document["mfa_enabled"]),
            created_at=dt.datetime.fromisoformat(document["created_at"]),
        )
        .model_dump_json()
        .encode()
    )
    if len(rendered) >= RENDERED_MAX:
        rendered.clear()
    rendered[(user_id, snapshot)] = body
    return body


async def profile_json(ctx: AppContext, user_id: uuid.UUID) -> bytes:
    """What ``GET /users/me`` shows of ``user_id`` (``schemas.UserOut`` as JSON): from the
    cache, else from the row.

    The unit of work is opened here, on a miss only, rather than by the ``DbSession``
    dependency: an unused session still costs a begin/commit/close cycle through
    SQLAlchemy's greenlet bridge, a fifth of a cached ``/users/me``.
    """
    key = _key(user_id)
    cached = await ctx.cache.get(key)
    if cached is not None and cached != _CHANGED:
        snapshot, due = unstamped(cached)
        if due:
            refresh_soon(ctx, key, lambda: _refresh(ctx, user_id))
        return _render(ctx, user_id, snapshot)
    snapshot = await _read(ctx, user_id)
    if cached is None:
        await ctx.cache.set(key, stamped(snapshot, REFRESH_AFTER_S), PROFILE_TTL_S)
    return _render(ctx, user_id, snapshot)


async def _read(ctx: AppContext, user_id: uuid.UUID) -> bytes:
    async with ctx.database.session() as db:
        user = await UserRepository(db).get(user_id)
        if user is None:
            raise NotFound("no such user")
        return _snapshot(user)


async def _refresh(ctx: AppContext, user_id: uuid.UUID) -> None:
    snapshot = await _read(ctx, user_id)
    # A change marked meanwhile (``forget_profile``) wins: this read may predate it.
    if await ctx.cache.get(_key(user_id)) not in (None, _CHANGED):
        await ctx.cache.set(_key(user_id), stamped(snapshot, REFRESH_AFTER_S), PROFILE_TTL_S)


async def forget_profile(ctx: AppContext, user_id: uuid.UUID) -> None:
    """Call when a field ``/users/me`` shows changes (before or after the commit)."""
    await ctx.cache.set(_key(user_id), _CHANGED, PROFILE_TTL_S)
