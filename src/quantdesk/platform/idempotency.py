"""``Idempotency-Key`` for POSTs that create money-moving objects.

A client that did not get an answer (a timeout, a dropped connection) retries with the same
key and gets the answer the first request got, instead of a second order or transfer.  A
router uses it in one line::

    @router.post("/orders", status_code=201, response_model=OrderOut)
    async def place_order(
        body: OrderIn, principal: RequireTrader, db: DbSession, idempotency: Idempotent
    ) -> Response:
        return await idempotency(principal.user_id, lambda: service.place(db, principal, body))

Semantics (after draft-ietf-httpapi-idempotency-key-header and Stripe's API, whose choices
we follow where the draft leaves them open):

* Keys are per user: two users may use the same key.  A key is 1-255 visible ASCII
  characters; the draft's structured-field form (``"key"``, quoted) and a bare key are the
  same key.  A malformed key is 400.  Without a key the request simply runs
  (``IdempotencyRequired`` makes the key mandatory: 400 without one, as in the draft).
* The same key with the same request (method, path, query and JSON body, compared after
  parsing, so key order and whitespace do not matter) replays the stored status and body,
  byte for byte, with ``Idempotent-Replayed: true``, for 24 hours.  After that the key is
  forgotten and a request with it runs again.
* The same key with a different request is a 422 problem (the draft's choice) and runs
  nothing.
* Requests with one key that arrive together produce one object.  They are serialised on
  the key: on PostgreSQL by a transaction-scoped advisory lock on (user, key); on SQLite
  by the write lock every POST's unit of work takes at its first statement
  (``platform/context.py``).  The later request waits for the first to commit and then
  replays its answer.  (The draft suggests 409 for a request whose key is still in
  flight; waiting gives the caller the real answer instead, and both databases behave the
  same.  The wait is bounded by the statement timeout or SQLite's busy timeout, past
  which the request is a 503 the client retries.)
* The stored answer is written in the same transaction as the object the request created:
  there is never an object without its answer, nor an answer without its object.
* A request that fails (Stripe's rule: an answer is stored once the endpoint has started):
  a 4xx domain error raised by the endpoint -- insufficient funds, an unknown instrument
  -- is stored and replayed like a success, so a retry can never turn "refused" into
  "done" behind the client's back; whatever the endpoint wrote before failing is rolled
  back to a savepoint first.  Not stored, so a retry with the key runs again: errors
  before the endpoint runs (authentication, request validation, a malformed or
  mismatched key), 429 (rate limited: retry later is the answer) and 5xx (the unit of
  work rolled back, so nothing happened).

Hand-written (about a hundred lines) because the idempotency packages for FastAPI keep
their records in Redis or memory, outside the transaction that creates the object, which
is exactly the gap that lets a crash or a race produce an object without its record.
"""

from __future__ import annotations

import hashlib
import re
import uuid
from collections.abc import Awaitable, Callable
from typing import Annotated

import orjson
from fastapi import Depends, Header, Request
from pydantic import BaseModel
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.responses import Response

from quantdesk.platform.context import DbSession
from quantdesk.platform.db import utcnow
from quantdesk.platform.errors import handle_domain_error
from quantdesk.platform.exceptions import BadRequest, InvalidInput, QuantdeskError
from quantdesk.platform.models import TTL, IdempotencyRecord, IdempotencyRepository

__all__ = [
    "HEADER",
    "REPLAYED_HEADER",
    "TTL",
    "Idempotency",
    "IdempotencyRequired",
    "Idempotent",
    "parse_key",
    "request_fingerprint",
]

HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"
_KEY = re.compile(r"[\x21-\x7e][\x20-\x7e]{0,254}")
_JSON = "application/json"


def parse_key(value: str) -> str:
    """The key of an ``Idempotency-Key`` header value (RFC 8941 string or bare token)."""
    if len(value) >= 2 and value[0] == value[-1] == '"':
        value = value[1:-1]
    if not _KEY.fullmatch(value):
        raise BadRequest(
            f"the {HEADER} header must be 1 to 255 visible ASCII characters", field=HEADER
        )
    return value


async def request_fingerprint(request: Request) -> str:
    """What makes two requests "the same request" for one key."""
    raw = await request.body()  # cached by FastAPI, which has already read it
    try:
        body = orjson.dumps(orjson.loads(raw), option=orjson.OPT_SORT_KEYS) if raw else b""
    except orjson.JSONDecodeError:
        body = raw
    digest = hashlib.sha256()
    for part in (request.method.encode(), request.url.path.encode(), request.url.query.encode()):
        digest.update(part + b"\0")
    digest.update(body)
    return digest.hexdigest()


async def _lock(db: AsyncSession, owner_id: uuid.UUID, key: str) -> None:
    # SQLite needs nothing here: the POST's unit of work already holds the database's single
    # write lock (BEGIN IMMEDIATE), so a second request with this key cannot even read yet.
    if db.get_bind().dialect.name == "postgresql":
        await db.execute(
            text("SELECT pg_advisory_xact_lock(hashtextextended(:lock, 0))"),
            {"lock": f"idempotency:{owner_id}:{key}"},
        )


def _stored(record: IdempotencyRecord) -> Response:
    return Response(
        content=record.body,
        status_code=record.status_code,
        media_type=record.media_type,
        headers={REPLAYED_HEADER: "true"},
    )


class Idempotency:
    """The request's key (or None) and the unit of work the answer is stored in."""

    def __init__(self, request: Request, db: AsyncSession, key: str | None) -> None:
        self.request = request
        self.db = db
        self.key = key

    async def __call__(
        self,
        owner_id: uuid.UUID,
        create: Callable[[], Awaitable[BaseModel]],
        *,
        status_code: int = 201,
    ) -> Response:
        """Run ``create`` once per (owner, key) and answer with its JSON, or replay."""
        if self.key is None:
            return _json(await create(), status_code)
        fingerprint = await request_fingerprint(self.request)
        records = IdempotencyRepository(self.db)
        now = utcnow()
        await _lock(self.db, owner_id, self.key)
        await records.forget_expired(owner_id, now)
        record = await records.get(owner_id, self.key)
        if record is not None:
            if record.fingerprint != fingerprint:
                raise InvalidInput(
                    f"this {HEADER} was already used with a different request; "
                    "use a new key for a new request",
                    field=HEADER,
                )
            return _stored(record)
        try:
            async with self.db.begin_nested():
                response = _json(await create(), status_code)
        except QuantdeskError as exc:
            if not 400 <= exc.status < 500 or exc.status == 429:
                raise
            response = await handle_domain_error(self.request, exc)
        self.db.add(
            IdempotencyRecord(
                user_id=owner_id,
                key=self.key,
                fingerprint=fingerprint,
                status_code=response.status_code,
                media_type=response.media_type or _JSON,
                body=bytes(response.body).decode(),
                created_at=now,
            )
        )
        await self.db.flush()
        return response


def _json(result: BaseModel, status_code: int) -> Response:
    # Serialised once, here, so that a replay is byte for byte what the first caller got.
    return Response(
        content=orjson.dumps(result.model_dump(mode="json")),
        status_code=status_code,
        media_type=_JSON,
    )


_KEY_DOC = (
    "Makes this POST safe to retry: the same key with the same request replays the first "
    "answer for 24 hours; the same key with a different request is 422."
)


async def get_idempotency(
    request: Request,
    db: DbSession,
    key: Annotated[str | None, Header(alias=HEADER, description=_KEY_DOC)] = None,
) -> Idempotency:
    return Idempotency(request, db, parse_key(key) if key is not None else None)


async def require_idempotency(
    request: Request,
    db: DbSession,
    key: Annotated[str, Header(alias=HEADER, description=_KEY_DOC)] = "",
) -> Idempotency:
    if not key:
        raise BadRequest(f"this request needs an {HEADER} header", field=HEADER)
    return Idempotency(request, db, parse_key(key))


Idempotent = Annotated[Idempotency, Depends(get_idempotency)]
IdempotencyRequired = Annotated[Idempotency, Depends(require_idempotency)]
