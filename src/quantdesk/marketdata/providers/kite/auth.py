"""Kite Connect's login flow and the stored access token.

The flow (Kite Connect v3, "User login flow"):

1. the user opens ``https://kite.zerodha.com/connect/login?v=3&api_key=<key>`` and logs in;
2. Kite redirects to the app's registered redirect URL with ``?request_token=...&action=login
   &status=success``; the user pastes the ``request_token`` (or the whole URL) into
   ``quantdesk kite login``;
3. we ``POST /session/token`` (form: ``api_key``, ``request_token``, ``checksum`` =
   hex SHA-256 of ``api_key + request_token + api_secret``) and get the session, whose
   ``access_token`` authenticates every request as ``Authorization: token key:token``.

The access token lives until about 06:00 IST the next morning (Kite flushes every session
then), or until Kite refuses it earlier (``TokenException``, HTTP 403: the user logged out or
logged in elsewhere).  Only the CLI takes a request token: our own API never carries one in
a URL.  Nothing here logs a token, a checksum or the secret.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final, Protocol
from urllib.parse import parse_qs, urlencode, urlsplit
from zoneinfo import ZoneInfo

import httpx
from sqlalchemy import select

from quantdesk.marketdata.providers.http_client import loads_exact
from quantdesk.marketdata.providers.kite.models import KiteSessionRow
from quantdesk.platform.db import Database, utcnow
from quantdesk.platform.exceptions import InvalidInput, ServiceUnavailable, UpstreamError
from quantdesk.security.pii import PiiCipher, PiiDecryptionError

IST: Final = ZoneInfo("Asia/Kolkata")
KITE_LOGIN_URL: Final = "https://kite.zerodha.com/connect/login"
KITE_API_URL: Final = "https://api.kite.trade"
KITE_VERSION: Final = "3"
TOKEN_FIELD: Final = "kite.access_token"  # noqa: S105 - a field name, no secret
# Kite flushes sessions at about 06:00 IST; we stop trusting a token at that minute.
EXPIRY_TIME: Final = dt.time(6, 0)
_REQUEST_TOKEN: Final = re.compile(r"^[A-Za-z0-9]{8,64}$")


def login_url(api_key: str, base: str = KITE_LOGIN_URL) -> str:
    """Where the user logs in to Kite to start a session for ``api_key``."""
    return f"{base}?{urlencode({'v': KITE_VERSION, 'api_key': api_key})}"


def checksum(api_key: str, request_token: str, api_secret: str) -> str:
    """Kite's session checksum: hex SHA-256 of api_key + request_token + api_secret."""
    return hashlib.sha256((api_key + request_token + api_secret).encode()).hexdigest()


def request_token_from(text: str) -> str:
    """The request token from what the user pasted: the token, or the whole redirect URL."""
    candidate = text.strip()
    if "request_token=" in candidate:
        query = parse_qs(urlsplit(candidate).query)
        if query.get("status", ["success"])[-1] != "success":
            raise InvalidInput("the redirect URL says the Kite login did not succeed")
        candidate = query.get("request_token", [""])[-1]
    if not _REQUEST_TOKEN.match(candidate):
        raise InvalidInput("that does not look like a Kite request_token (letters and digits)")
    return candidate


def token_expiry(login_time: dt.datetime) -> dt.datetime:
    """The first 06:00 IST after ``login_time`` (UTC), when Kite flushes the session."""
    local = login_time.astimezone(IST)
    expiry = dt.datetime.combine(local.date(), EXPIRY_TIME, tzinfo=IST)
    if expiry <= local:
        expiry += dt.timedelta(days=1)
    return expiry.astimezone(dt.UTC)


def api_key_hash(api_key: str) -> str:
    return hashlib.sha256(api_key.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class KiteSession:
    """The part of ``POST /session/token``'s answer quantdesk keeps."""

    user_id: str
    access_token: str
    login_time: dt.datetime  # UTC

    @property
    def expires_at(self) -> dt.datetime:
        return token_expiry(self.login_time)

    def __repr__(self) -> str:  # never print the token
        return f"KiteSession(user_id={self.user_id!r}, login_time={self.login_time.isoformat()})"


def _login_time(value: object) -> dt.datetime:
    # "2021-06-08 09:16:03", exchange (IST) time.
    if isinstance(value, str):
        try:
            naive = dt.datetime.strptime(value.strip(), "%Y-%m-%d %H:%M:%S")
        except ValueError:
            pass
        else:
            return naive.replace(tzinfo=IST).astimezone(dt.UTC)
    return utcnow()


def session_from_payload(payload: Any) -> KiteSession:
    """The session in a ``{"status": "success", "data": {...}}`` envelope."""
    data = payload.get("data") if isinstance(payload, dict) else None
    if not isinstance(payload, dict) or payload.get("status") != "success":
        raise UpstreamError("kite: /session/token did not answer success", provider="kite")
    if not isinstance(data, dict) or not isinstance(data.get("access_token"), str):
        raise UpstreamError(
            "kite: /session/token answered without an access_token", provider="kite"
        )
    return KiteSession(
        user_id=str(data.get("user_id") or ""),
        access_token=data["access_token"],
        login_time=_login_time(data.get("login_time")),
    )


async def exchange_request_token(
    api_key: str,
    api_secret: str,
    request_token: str,
    *,
    base_url: str = KITE_API_URL,
    transport: httpx.AsyncBaseTransport | None = None,
    timeout_s: float = 10.0,
) -> KiteSession:
    """``POST /session/token``: trade a one-time request token for the day's session.

    Not retried: a request token is good for one exchange only, so a retry after a lost
    answer could only fail; the user logs in again instead.
    """
    form = {
        "api_key": api_key,
        "request_token": request_token,
        "checksum": checksum(api_key, request_token, api_secret),
    }
    async with httpx.AsyncClient(
        base_url=base_url,
        headers={"X-Kite-Version": KITE_VERSION},
        timeout=timeout_s,
        transport=transport,
        follow_redirects=False,
    ) as client:
        try:
            response = await client.post("/session/token", data=form)
        except httpx.HTTPError as exc:
            raise ServiceUnavailable(
                f"kite: /session/token unreachable ({type(exc).__name__})",
                dependency="provider:kite",
            ) from None
    try:
        payload = loads_exact(response.content)
    except ValueError:
        payload = None
    if response.status_code != 200:
        message = payload.get("message") if isinstance(payload, dict) else None
        kind = payload.get("error_type") if isinstance(payload, dict) else None
        raise UpstreamError(
            f"kite refused the login (HTTP {response.status_code} {kind or ''}: "
            f"{str(message or response.reason_phrase)[:200]})",
            provider="kite",
            upstream_status=response.status_code,
        )
    return session_from_payload(payload)


@dataclass(frozen=True, slots=True)
class TokenStatus:
    """What ``GET /api/v1/providers/kite/status`` and ``quantdesk kite status`` say."""

    configured: bool
    valid: bool
    state: str  # valid | expired | rejected | missing | unconfigured | unreadable
    login_time: dt.datetime | None = None
    expires_at: dt.datetime | None = None
    reason: str | None = None


class KiteTokenStore:
    """The configured API key's session row: save after login, read, mark refused."""

    def __init__(self, database: Database, cipher: PiiCipher, api_key: str) -> None:
        self._database = database
        self._cipher = cipher
        self._key_hash = api_key_hash(api_key)

    async def save(self, session: KiteSession) -> None:
        sealed = self._cipher.encrypt(session.access_token, field=TOKEN_FIELD)
        async with self._database.session(immediate=True) as db:
            row = await db.scalar(
                select(KiteSessionRow)
                .where(KiteSessionRow.api_key_hash == self._key_hash)
                .with_for_update()
            )
            if row is None:
                row = KiteSessionRow(api_key_hash=self._key_hash)
                db.add(row)
            row.user_id = session.user_id[:32]
            row.access_token_encrypted = sealed
            row.login_time = session.login_time
            row.expires_at = session.expires_at
            row.invalidated_at = None
            row.invalid_reason = None
            row.updated_at = utcnow()

    async def _row(self) -> KiteSessionRow | None:
        async with self._database.session() as db:
            return await db.scalar(
                select(KiteSessionRow).where(KiteSessionRow.api_key_hash == self._key_hash)
            )

    async def access_token(self, now: dt.datetime | None = None) -> str | None:
        """The stored token while it is valid (not expired, not refused); else ``None``."""
        row = await self._row()
        if row is None or row.invalidated_at is not None:
            return None
        if (now or utcnow()) >= row.expires_at:
            return None
        try:
            return self._cipher.decrypt(row.access_token_encrypted, field=TOKEN_FIELD)
        except PiiDecryptionError:
            return None

    async def reject(self, reason: str, token: str | None = None) -> None:
        """Kite refused the token: mark it so nobody retries it until the next login.

        With ``token`` given, only if it is still the stored one (a fresh login that raced
        with the refusal of yesterday's token is not undone).
        """
        async with self._database.session(immediate=True) as db:
            row = await db.scalar(
                select(KiteSessionRow)
                .where(KiteSessionRow.api_key_hash == self._key_hash)
                .with_for_update()
            )
            if row is None or row.invalidated_at is not None:
                return
            if token is not None:
                try:
                    stored = self._cipher.decrypt(row.access_token_encrypted, field=TOKEN_FIELD)
                except PiiDecryptionError:
                    stored = None
                if stored != token:
                    return
            row.invalidated_at = utcnow()
            row.invalid_reason = reason[:200]
            row.updated_at = row.invalidated_at

    async def status(self, now: dt.datetime | None = None) -> TokenStatus:
        row = await self._row()
        if row is None:
            return TokenStatus(True, False, "missing", reason="run `quantdesk kite login`")
        moment = now or utcnow()

        def status(state: str, reason: str | None = None) -> TokenStatus:
            valid = state == "valid"
            return TokenStatus(True, valid, state, row.login_time, row.expires_at, reason)

        if row.invalidated_at is not None:
            return status("rejected", row.invalid_reason)
        if moment >= row.expires_at:
            return status("expired", "Kite sessions end at 06:00 IST; run `quantdesk kite login`")
        try:
            self._cipher.decrypt(row.access_token_encrypted, field=TOKEN_FIELD)
        except PiiDecryptionError:
            return status(
                "unreadable", "the stored token does not decrypt with the configured keys"
            )
        return status("valid")


class TokenStore(Protocol):
    """What ``TokenSource`` needs of a store (``KiteTokenStore``; tests use a dict)."""

    async def access_token(self, now: dt.datetime | None = None) -> str | None: ...
    async def reject(self, reason: str, token: str | None = None) -> None: ...


class TokenSource:
    """The current access token for the HTTP client and the ticker, re-read every
    ``ttl_s`` seconds so a ``quantdesk kite login`` reaches running servers within it."""

    def __init__(
        self,
        store: TokenStore,
        ttl_s: float = 15.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.store = store
        self._ttl = ttl_s
        self._clock = clock
        self._token: str | None = None
        self._read_at: float | None = None

    async def current(self) -> str | None:
        now = self._clock()
        if self._read_at is None or now - self._read_at >= self._ttl:
            self._token = await self.store.access_token()
            self._read_at = now
        return self._token

    async def refused(self, token: str, reason: str) -> None:
        """Kite answered TokenException for ``token``: mark it and forget it."""
        await self.store.reject(reason, token)
        if self._token == token:
            self._token = None
        self._read_at = self._clock()

    def forget(self) -> None:
        self._read_at = None
