"""Market-data tables: the instrument master, the bar store and official exchange calendars.

``bars`` is keyed by ``(instrument_id, timeframe, ts)`` so a re-load of the same bars is an
upsert, never a duplicate.  On SQLite it is a ``WITHOUT ROWID`` table: the rows live in the
primary-key B-tree itself, so a range query for one instrument reads consecutive pages and
there is no second index to maintain on bulk loads.  On PostgreSQL the table becomes a
TimescaleDB hypertable when the extension is installed (see migration 0003).
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    Date,
    Index,
    Integer,
    PrimaryKeyConstraint,
    String,
    Time,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from quantdesk.platform.db import Base, ExactDecimal, UTCDateTime, utcnow


class InstrumentRow(Base):
    __tablename__ = "instruments"
    __table_args__ = (
        UniqueConstraint("exchange", "symbol"),
        Index("ix_instruments_symbol", "symbol"),
        Index("ix_instruments_underlying_expiry", "underlying", "expiry"),
        CheckConstraint("type IN ('equity', 'etf', 'index', 'future', 'option')", name="type"),
        CheckConstraint(
            "option_type IS NULL OR option_type IN ('call', 'put')", name="option_type"
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    exchange: Mapped[str] = mapped_column(String(8))
    symbol: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(200))
    type: Mapped[str] = mapped_column(String(8))
    currency: Mapped[str] = mapped_column(String(3))
    lot_size: Mapped[Decimal] = mapped_column(ExactDecimal)
    tick_size: Mapped[Decimal] = mapped_column(ExactDecimal)
    multiplier: Mapped[Decimal] = mapped_column(ExactDecimal)
    underlying: Mapped[str | None] = mapped_column(String(64))
    expiry: Mapped[dt.date | None] = mapped_column(Date)
    strike: Mapped[Decimal | None] = mapped_column(ExactDecimal)
    option_type: Mapped[str | None] = mapped_column(String(4))
    isin: Mapped[str | None] = mapped_column(String(12))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    provider_token: Mapped[str | None] = mapped_column(String(32))
    sector: Mapped[str | None] = mapped_column(String(60))
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class BarRow(Base):
    __tablename__ = "bars"
    __table_args__ = (
        PrimaryKeyConstraint("instrument_id", "timeframe", "ts"),
        {"sqlite_with_rowid": False},
    )

    # No foreign key to instruments, on purpose: PostgreSQL checks a foreign key with one
    # lookup per inserted row, which more than doubled the time of a million-row COPY
    # (13.8 s against 6.1 s on the benchmark machine).  Every writer resolves the id from the
    # master in the same transaction (``BarStore``), and instruments are deactivated, never
    # deleted, so there is nothing for a cascade to do.
    instrument_id: Mapped[int] = mapped_column(Integer)
    timeframe: Mapped[str] = mapped_column(String(3))
    ts: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    open: Mapped[Decimal] = mapped_column(ExactDecimal)
    high: Mapped[Decimal] = mapped_column(ExactDecimal)
    low: Mapped[Decimal] = mapped_column(ExactDecimal)
    close: Mapped[Decimal] = mapped_column(ExactDecimal)
    volume: Mapped[Decimal] = mapped_column(ExactDecimal)
    oi: Mapped[Decimal | None] = mapped_column(ExactDecimal)


class CalendarDayRow(Base):
    """A day of an exchange's official holiday list, imported by an admin.

    An imported (exchange, year) replaces our provisional or package view of that year; a
    re-import replaces the year's rows in one transaction.
    """

    __tablename__ = "calendar_days"
    __table_args__ = (
        UniqueConstraint("exchange", "date", "kind", "opens"),
        Index("ix_calendar_days_exchange_year", "exchange", "year"),
        CheckConstraint("kind IN ('holiday', 'special', 'regular')", name="kind"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    exchange: Mapped[str] = mapped_column(String(8))
    year: Mapped[int] = mapped_column(Integer)
    date: Mapped[dt.date] = mapped_column(Date)
    kind: Mapped[str] = mapped_column(String(8))
    name: Mapped[str] = mapped_column(String(200))
    opens: Mapped[dt.time | None] = mapped_column(Time)
    closes: Mapped[dt.time | None] = mapped_column(Time)
    source: Mapped[str] = mapped_column(String(200))
    imported_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class CorporateActionRow(Base):
    """A split, bonus or dividend of an instrument, effective from its ex-date.

    Recorded by an admin (no provider delivers them yet) before the ex-date; the matcher's
    clock applies it to the paper accounts' holdings as the ex-date begins
    (``trading.lifecycle``).  Split: ``new`` shares for every ``old``; bonus: ``bonus`` new
    shares for every ``held``; dividend: ``per_share`` in the instrument's currency.
    """

    __tablename__ = "corporate_actions"
    __table_args__ = (
        UniqueConstraint("instrument", "kind", "ex_date"),
        Index("ix_corporate_actions_ex_date", "ex_date"),
        CheckConstraint("kind IN ('split', 'bonus', 'dividend')", name="kind"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    instrument: Mapped[str] = mapped_column(String(80))
    kind: Mapped[str] = mapped_column(String(8))
    ex_date: Mapped[dt.date] = mapped_column(Date)
    old: Mapped[Decimal | None] = mapped_column(ExactDecimal)
    new: Mapped[Decimal | None] = mapped_column(ExactDecimal)
    bonus: Mapped[Decimal | None] = mapped_column(ExactDecimal)
    held: Mapped[Decimal | None] = mapped_column(ExactDecimal)
    per_share: Mapped[Decimal | None] = mapped_column(ExactDecimal)
    # Pays a fractional entitlement in cash at this price per share (else it is dropped).
    fraction_price: Mapped[Decimal | None] = mapped_column(ExactDecimal)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
