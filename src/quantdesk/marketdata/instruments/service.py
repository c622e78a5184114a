"""The instrument master: validation, idempotent upserts, lookup, search and option chains.

``InstrumentService(session)`` works inside the caller's unit of work: it only flushes, so an
import that fails half-way leaves nothing behind when the session rolls back.

The master is market-wide reference data, not user-owned, so queries take no owner.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sqlalchemy import Select, and_, insert, or_, select, tuple_, update
from sqlalchemy.ext.asyncio import AsyncSession

from quantdesk.marketdata.domain import (
    Exchange,
    Instrument,
    InstrumentType,
    OptionType,
    make_key,
    parse_key,
)
from quantdesk.marketdata.models import InstrumentRow
from quantdesk.platform.db import utcnow
from quantdesk.platform.exceptions import InvalidInput, NotFound
from quantdesk.platform.pagination import CursorCodec, split_page

# Row values compared on re-import; ``id`` and ``updated_at`` are ours, not the source's.
_FIELDS = (
    "exchange",
    "symbol",
    "name",
    "type",
    "currency",
    "lot_size",
    "tick_size",
    "multiplier",
    "underlying",
    "expiry",
    "strike",
    "option_type",
    "isin",
    "active",
    "provider_token",
    "sector",
)
# Small enough for SQLite's bound-parameter limit with two parameters per key.
_LOOKUP_CHUNK = 500


@dataclass(frozen=True, slots=True)
class UpsertCounts:
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0

    @property
    def total(self) -> int:
        return self.inserted + self.updated + self.unchanged


@dataclass(frozen=True, slots=True)
class InstrumentFilter:
    """Search criteria; every field narrows the result (``None`` means any)."""

    q: str | None = None
    exchange: Exchange | None = None
    type: InstrumentType | None = None
    underlying: str | None = None
    expiry: dt.date | None = None
    active: bool | None = True


@dataclass(frozen=True, slots=True)
class InstrumentPage:
    items: list[Instrument]
    next_cursor: str | None


def instrument_problems(instrument: Instrument) -> list[str]:
    """Why ``instrument`` cannot enter the master (empty when it can)."""
    problems: list[str] = []
    try:
        parse_key(instrument.key)
    except ValueError as exc:
        problems.append(str(exc))
    if not instrument.name.strip():
        problems.append("name is empty")
    if len(instrument.currency) != 3 or not instrument.currency.isalpha():
        problems.append(f"currency {instrument.currency!r} is not an ISO 4217 code")
    for field in ("lot_size", "tick_size", "multiplier"):
        value: Decimal = getattr(instrument, field)
        if not value.is_finite() or value <= 0:
            problems.append(f"{field} must be positive, got {value}")
    if instrument.isin is not None and not (
        len(instrument.isin) == 12 and instrument.isin.isalnum()
    ):
        problems.append(f"isin {instrument.isin!r} is not 12 letters and digits")
    if len(instrument.name) > 200:
        problems.append("name is longer than 200 characters")
    if instrument.underlying is not None and len(instrument.underlying) > 64:
        problems.append("underlying is longer than 64 characters")
    if instrument.provider_token is not None and len(instrument.provider_token) > 32:
        problems.append("provider_token is longer than 32 characters")
    if instrument.sector is not None and not 0 < len(instrument.sector) <= 60:
        problems.append("sector must have 1 to 60 characters")
    derivative = instrument.type in (InstrumentType.FUTURE, InstrumentType.OPTION)
    if derivative and instrument.expiry is None:
        problems.append(f"{instrument.type.value} contracts need an expiry")
    if derivative and not instrument.underlying:
        problems.append(f"{instrument.type.value} contracts need an underlying")
    if instrument.type is InstrumentType.OPTION:
        if instrument.strike is None or not instrument.strike.is_finite() or instrument.strike <= 0:
            problems.append("an option needs a positive strike")
        if instrument.option_type is None:
            problems.append("an option needs an option type (call or put)")
    elif instrument.option_type is not None:
        problems.append(f"only options have an option type, not a {instrument.type.value}")
    return problems


def to_domain(row: InstrumentRow | Any) -> Instrument:
    """Map a row (ORM object or Core row with the same attribute names) to the domain type."""
    return Instrument(
        exchange=Exchange(row.exchange),
        symbol=row.symbol,
        name=row.name,
        type=InstrumentType(row.type),
        currency=row.currency,
        lot_size=row.lot_size,
        tick_size=row.tick_size,
        multiplier=row.multiplier,
        underlying=row.underlying,
        expiry=row.expiry,
        strike=row.strike,
        option_type=OptionType(row.option_type) if row.option_type else None,
        isin=row.isin,
        active=row.active,
        provider_token=row.provider_token,
        sector=row.sector,
    )


def _values(instrument: Instrument) -> dict[str, Any]:
    return {
        "exchange": instrument.exchange.value,
        "symbol": instrument.symbol.upper(),
        "name": instrument.name,
        "type": instrument.type.value,
        "currency": instrument.currency.upper(),
        "lot_size": instrument.lot_size,
        "tick_size": instrument.tick_size,
        "multiplier": instrument.multiplier,
        "underlying": instrument.underlying.upper() if instrument.underlying else None,
        "expiry": instrument.expiry,
        "strike": instrument.strike,
        "option_type": instrument.option_type.value if instrument.option_type else None,
        "isin": instrument.isin,
        "active": instrument.active,
        "provider_token": instrument.provider_token,
        "sector": instrument.sector,
    }


# Search results in (symbol, exchange) order.
INSTRUMENT_CURSOR = CursorCodec("instruments", 2)


def _like_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


class InstrumentService:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def upsert_many(self, instruments: Iterable[Instrument]) -> UpsertCounts:
        """Insert new instruments and update changed ones; the same input twice is a no-op.

        Raises ``InvalidInput`` (nothing written) if any instrument is invalid.
        """
        by_key: dict[tuple[str, str], dict[str, Any]] = {}
        for index, instrument in enumerate(instruments):
            problems = instrument_problems(instrument)
            if problems:
                raise InvalidInput(
                    f"instrument {index} ({instrument.key}): {'; '.join(problems)}",
                    index=index,
                    key=instrument.key,
                )
            values = _values(instrument)
            by_key[(values["exchange"], values["symbol"])] = values
        existing = await self._existing(list(by_key))
        now = utcnow()
        new_rows: list[dict[str, Any]] = []
        changed_rows: list[dict[str, Any]] = []
        for composite, values in by_key.items():
            current = existing.get(composite)
            if current is not None and values["sector"] is None:
                # A source that says nothing of sectors (Kite's dump) keeps the stored one.
                values = {**values, "sector": current["sector"]}
            if current is None:
                new_rows.append({**values, "updated_at": now})
            elif any(current[field] != values[field] for field in _FIELDS):
                changed_rows.append({**values, "updated_at": now, "id": current["id"]})
        # ORM bulk statements: one executemany each, no per-object bookkeeping.
        if new_rows:
            await self.session.execute(insert(InstrumentRow), new_rows)
        if changed_rows:
            await self.session.execute(update(InstrumentRow), changed_rows)
        await self.session.flush()
        unchanged = len(by_key) - len(new_rows) - len(changed_rows)
        return UpsertCounts(len(new_rows), len(changed_rows), unchanged)

    async def _existing(
        self, composites: Sequence[tuple[str, str]]
    ) -> dict[tuple[str, str], dict[str, Any]]:
        table = InstrumentRow.__table__
        found: dict[tuple[str, str], dict[str, Any]] = {}
        for start in range(0, len(composites), _LOOKUP_CHUNK):
            chunk = composites[start : start + _LOOKUP_CHUNK]
            result = await self.session.execute(
                select(table).where(tuple_(table.c.exchange, table.c.symbol).in_(chunk))
            )
            for row in result.mappings():
                found[(row["exchange"], row["symbol"])] = dict(row)
        return found

    async def get_row(self, key: str) -> InstrumentRow:
        exchange, symbol = _parse_or_422(key)
        row = await self.session.scalar(
            select(InstrumentRow).where(
                InstrumentRow.exchange == exchange.value, InstrumentRow.symbol == symbol
            )
        )
        if row is None:
            raise NotFound(f"no instrument {make_key(exchange, symbol)}", key=key)
        return row

    async def get(self, key: str) -> Instrument:
        return to_domain(await self.get_row(key))

    async def get_rows(self, keys: Sequence[str]) -> dict[str, InstrumentRow]:
        """Rows for the keys that exist, by canonical key (unknown keys are simply absent)."""
        composites = [_parse_or_422(key) for key in keys]
        found: dict[str, InstrumentRow] = {}
        for start in range(0, len(composites), _LOOKUP_CHUNK):
            chunk = [(e.value, s) for e, s in composites[start : start + _LOOKUP_CHUNK]]
            rows = await self.session.scalars(
                select(InstrumentRow).where(
                    tuple_(InstrumentRow.exchange, InstrumentRow.symbol).in_(chunk)
                )
            )
            for row in rows:
                found[make_key(row.exchange, row.symbol)] = row
        return found

    async def search(
        self, criteria: InstrumentFilter, *, limit: int = 50, cursor: str | None = None
    ) -> InstrumentPage:
        """Instruments matching ``criteria`` ordered by (symbol, exchange), one page at a time.

        ``q`` matches a symbol prefix or any part of the name, case-insensitively; a ``q`` with
        a colon (``NSE:REL``) is an exchange plus a symbol prefix.
        """
        statement = self._filtered(criteria)
        if cursor:
            after_symbol, after_exchange = INSTRUMENT_CURSOR.decode(cursor)
            statement = statement.where(
                or_(
                    InstrumentRow.symbol > after_symbol,
                    and_(
                        InstrumentRow.symbol == after_symbol,
                        InstrumentRow.exchange > after_exchange,
                    ),
                )
            )
        statement = statement.order_by(InstrumentRow.symbol, InstrumentRow.exchange)
        rows, next_cursor = split_page(
            list(await self.session.scalars(statement.limit(limit + 1))),
            limit,
            lambda last: INSTRUMENT_CURSOR.encode(last.symbol, last.exchange),
        )
        return InstrumentPage([to_domain(row) for row in rows], next_cursor)

    def _filtered(self, criteria: InstrumentFilter) -> Select[InstrumentRow]:
        statement = select(InstrumentRow)
        if criteria.q and criteria.q.strip():
            text = criteria.q.strip()
            if ":" in text:
                exchange_part, _, symbol_part = text.partition(":")
                statement = statement.where(
                    InstrumentRow.exchange == exchange_part.strip().upper(),
                    InstrumentRow.symbol.like(_like_escape(symbol_part.upper()) + "%", escape="\\"),
                )
            else:
                escaped = _like_escape(text)
                statement = statement.where(
                    or_(
                        InstrumentRow.symbol.like(escaped.upper() + "%", escape="\\"),
                        InstrumentRow.name.ilike("%" + escaped + "%", escape="\\"),
                    )
                )
        if criteria.exchange is not None:
            statement = statement.where(InstrumentRow.exchange == criteria.exchange.value)
        if criteria.type is not None:
            statement = statement.where(InstrumentRow.type == criteria.type.value)
        if criteria.underlying:
            statement = statement.where(InstrumentRow.underlying == criteria.underlying.upper())
        if criteria.expiry is not None:
            statement = statement.where(InstrumentRow.expiry == criteria.expiry)
        if criteria.active is not None:
            statement = statement.where(InstrumentRow.active == criteria.active)
        return statement

    async def chain(
        self, underlying: str, expiry: dt.date, exchange: Exchange | None = None
    ) -> list[Instrument]:
        """Every option on ``underlying`` expiring on ``expiry``, by strike then call before put."""
        statement = select(InstrumentRow).where(
            InstrumentRow.underlying == underlying.upper(),
            InstrumentRow.expiry == expiry,
            InstrumentRow.type == InstrumentType.OPTION.value,
        )
        if exchange is not None:
            statement = statement.where(InstrumentRow.exchange == exchange.value)
        rows = [to_domain(row) for row in await self.session.scalars(statement)]
        # Sorted here, not in SQL: strikes are TEXT on SQLite, where ORDER BY would be lexical.
        rows.sort(key=lambda i: (i.strike or Decimal(0), i.option_type != OptionType.CALL, i.key))
        return rows

    async def near_future(
        self, underlying: str, exchange: Exchange, on_or_after: dt.date
    ) -> Instrument | None:
        """The active future on ``underlying`` listed on ``exchange`` that expires first on or
        after ``on_or_after``: the price an MCX option (an option on that future) or a
        currency option follows when there is no cash instrument."""
        statement = (
            select(InstrumentRow)
            .where(
                InstrumentRow.underlying == underlying.upper(),
                InstrumentRow.exchange == exchange.value,
                InstrumentRow.type == InstrumentType.FUTURE.value,
                InstrumentRow.active.is_(True),
                InstrumentRow.expiry >= on_or_after,
            )
            .order_by(InstrumentRow.expiry, InstrumentRow.symbol)
            .limit(1)
        )
        row = await self.session.scalar(statement)
        return None if row is None else to_domain(row)

    async def expiries(
        self, underlying: str, *, since: dt.date | None = None, exchange: Exchange | None = None
    ) -> list[dt.date]:
        """Distinct expiries of listed derivatives on ``underlying``, ascending."""
        statement = select(InstrumentRow.expiry).where(
            InstrumentRow.underlying == underlying.upper(), InstrumentRow.expiry.is_not(None)
        )
        if since is not None:
            statement = statement.where(InstrumentRow.expiry >= since)
        if exchange is not None:
            statement = statement.where(InstrumentRow.exchange == exchange.value)
        dates = await self.session.scalars(statement.distinct().order_by(InstrumentRow.expiry))
        return [value for value in dates if value is not None]


def _parse_or_422(key: str) -> tuple[Exchange, str]:
    try:
        return parse_key(key)
    except ValueError as exc:
        raise InvalidInput(str(exc), field="key") from None
