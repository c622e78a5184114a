"""Cursor pagination: one opaque cursor codec and one page shape for every listing.

Every list endpoint pages by *keyset* (``WHERE (sort key) > (last row's key)``), never by
offset, so pages stay stable while rows are inserted and a deep page costs what the first
one does.  The cursor carries the last row's sort key as a few strings, and the name of the
listing that issued it, as URL-safe base64 of a JSON array.

The cursor is opaque to clients but not signed: it only positions a keyset query that the
repository still filters by owner and criteria, so a hand-made cursor can reach nothing
that paging could not.  What the codec does guarantee is that anything it did not issue for
*this* listing -- garbage, a truncated or edited cursor, another listing's cursor, a cursor
whose key does not parse -- is one and the same 422 problem (``invalid_cursor``), never a
500 or a silently wrong page.

Written by hand (some twenty lines) because the libraries that offer cursor pagination
(fastapi-pagination, sqlakeyset) bring their own query builders and response shapes; ours
are the repositories' plain ``select`` statements and the ``Page`` below.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

import orjson
from pydantic import BaseModel, Field

from quantdesk.platform.exceptions import InvalidInput

T = TypeVar("T")
R = TypeVar("R")

INVALID_CURSOR = "the cursor is not one this API issued; start again without it"


def invalid_cursor() -> InvalidInput:
    """The one error for every cursor the API cannot use (a 422 problem naming ``cursor``)."""
    return InvalidInput(INVALID_CURSOR, field="cursor")


@dataclass(frozen=True, slots=True)
class CursorCodec:
    """Cursors of one listing: ``arity`` strings of the last row's sort key.

    ``listing`` goes into the cursor so that a cursor from ``/admin/users`` handed to
    another listing with the same arity is refused instead of positioning the wrong query.
    """

    listing: str
    arity: int

    def encode(self, *parts: str) -> str:
        if len(parts) != self.arity:
            raise ValueError(f"{self.listing} cursors have {self.arity} parts, not {len(parts)}")
        raw = orjson.dumps([self.listing, *parts])
        return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")

    def decode(self, cursor: str) -> tuple[str, ...]:
        """The parts ``encode`` was given; ``invalid_cursor()`` for anything else."""
        try:
            raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
            decoded = orjson.loads(raw)
        except (ValueError, binascii.Error):  # orjson.JSONDecodeError is a ValueError
            raise invalid_cursor() from None
        if (
            not isinstance(decoded, list)
            or len(decoded) != self.arity + 1
            or not all(isinstance(part, str) for part in decoded)
            or decoded[0] != self.listing
        ):
            raise invalid_cursor()
        return tuple(decoded[1:])

    def decode_as(self, cursor: str, parse: Callable[..., T]) -> T:
        """``parse(*parts)``, with a ``ValueError``/``TypeError`` from it (a part that is not a
        timestamp, a UUID, a number) answered as ``invalid_cursor()`` too."""
        parts = self.decode(cursor)
        try:
            return parse(*parts)
        except (ValueError, TypeError):
            raise invalid_cursor() from None


def split_page(
    rows: Sequence[R], limit: int, cursor_of: Callable[[R], str]
) -> tuple[list[R], str | None]:
    """The first ``limit`` of ``rows`` and the cursor after them, or None on the last page.

    Repositories fetch ``limit + 1`` rows: the extra row only says that another page
    exists, without a second ``COUNT`` query.
    """
    if len(rows) <= limit:
        return list(rows), None
    page = list(rows[:limit])
    return page, cursor_of(page[-1])


class Page(BaseModel, Generic[T]):
    """One page of a listing.  Subclass it per item type (``class UserPage(Page[UserOut])``)
    so the OpenAPI schema, and a generated client, get a readable name."""

    items: list[T]
    next_cursor: str | None = Field(
        description="Pass as ``cursor`` for the next page; null on the last page."
    )
