"""Tables of paper trading: accounts, the double-entry journal, orders, fills, positions and
the outbox of trading events.

Money is ``ExactDecimal`` everywhere.  The account row caches the journal's balances (and a
``version`` that every change bumps); the journal (``ledger_entries`` + ``ledger_postings``)
is the truth they are checked against (``quantdesk admin verify-ledger``).

Fill idempotency: ``fills.execution_id`` is unique, and the engine derives it from the order
and the quote or trade that caused the fill, so a fill computed twice (a restart, a second
matcher) is stored once.
"""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Date,
    ForeignKey,
    Index,
    Integer,
    PrimaryKeyConstraint,
    String,
    Text,
    UniqueConstraint,
    Uuid,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from quantdesk.platform.db import Base, ExactDecimal, UTCDateTime, utcnow

# An auto-incrementing 64-bit key on PostgreSQL; SQLite only auto-increments INTEGER keys.
SerialKey = BigInteger().with_variant(Integer, "sqlite")
ZERO = Decimal(0)


# SQLite keeps exact decimals as TEXT (``ExactDecimal``): the checks compare numbers, not
# strings, on both databases.
class TradingAccount(Base):
    __tablename__ = "trading_accounts"
    __table_args__ = (
        CheckConstraint("currency IN ('INR', 'USD')", name="currency"),
        CheckConstraint("CAST(cash AS NUMERIC) >= 0", name="cash_not_negative"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    user_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(100))
    currency: Mapped[str] = mapped_column(String(3))
    starting_cash: Mapped[Decimal] = mapped_column(ExactDecimal)
    fill_model: Mapped[str] = mapped_column(String(32), default="best_price")
    fill_seed: Mapped[int] = mapped_column(BigInteger, default=0)
    # Balances of the journal's books, cached (checked against the journal by verify-ledger).
    cash: Mapped[Decimal] = mapped_column(ExactDecimal, default=ZERO)
    reserved: Mapped[Decimal] = mapped_column(ExactDecimal, default=ZERO)
    margin: Mapped[Decimal] = mapped_column(ExactDecimal, default=ZERO)
    positions_cost: Mapped[Decimal] = mapped_column(ExactDecimal, default=ZERO)
    capital: Mapped[Decimal] = mapped_column(ExactDecimal, default=ZERO)
    realised_pnl: Mapped[Decimal] = mapped_column(ExactDecimal, default=ZERO)
    fees: Mapped[Decimal] = mapped_column(ExactDecimal, default=ZERO)
    # The last event sequence number given out for this account (strictly increasing).
    event_seq: Mapped[int] = mapped_column(BigInteger, default=0)
    version: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    reset_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)


class LedgerEntry(Base):
    """One balanced journal entry: its postings sum to zero."""

    __tablename__ = "ledger_entries"
    __table_args__ = (Index("ix_ledger_entries_account_id_id", "account_id", "id"),)

    id: Mapped[int] = mapped_column(SerialKey, primary_key=True, autoincrement=True)
    account_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("trading_accounts.id", ondelete="CASCADE")
    )
    kind: Mapped[str] = mapped_column(String(24))
    reference: Mapped[str | None] = mapped_column(String(64))
    memo: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    # Within this package: lets the unit of work insert an entry and its postings in one
    # flush (no round trip to learn the entry's id first).
    postings: Mapped[list[LedgerPosting]] = relationship(lazy="raise", passive_deletes=True)


class LedgerPosting(Base):
    """One line of an entry: a signed amount on one book (debit positive, credit negative)."""

    __tablename__ = "ledger_postings"
    __table_args__ = (Index("ix_ledger_postings_account_id_book", "account_id", "book"),)

    id: Mapped[int] = mapped_column(SerialKey, primary_key=True, autoincrement=True)
    entry_id: Mapped[int] = mapped_column(
        ForeignKey("ledger_entries.id", ondelete="CASCADE"), index=True
    )
    account_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("trading_accounts.id", ondelete="CASCADE")
    )
    book: Mapped[str] = mapped_column(String(16))
    amount: Mapped[Decimal] = mapped_column(ExactDecimal)


class OrderRow(Base):
    __tablename__ = "orders"
    __table_args__ = (
        UniqueConstraint("account_id", "client_order_id"),
        Index("ix_orders_account_id_created_at", "account_id", "created_at", "id"),
        Index("ix_orders_status_instrument", "status", "instrument"),
        Index("ix_orders_parent_id", "parent_id"),
        CheckConstraint(
            "CAST(filled_quantity AS NUMERIC) >= 0 AND "
            "CAST(filled_quantity AS NUMERIC) <= CAST(quantity AS NUMERIC)",
            name="filled",
        ),
        CheckConstraint("CAST(reserved AS NUMERIC) >= 0", name="reserved_not_negative"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    account_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("trading_accounts.id", ondelete="CASCADE")
    )
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    client_order_id: Mapped[str | None] = mapped_column(String(64))
    # What makes a retry with the same client_order_id "the same order".
    fingerprint: Mapped[str] = mapped_column(String(64))
    instrument: Mapped[str] = mapped_column(String(80))
    side: Mapped[str] = mapped_column(String(4))
    type: Mapped[str] = mapped_column(String(16))
    # simple | bracket | oco | oto | mleg: a group's members share it (docs/trading.md).
    order_class: Mapped[str] = mapped_column(String(8), default="simple", server_default="simple")
    # A bracket's or OTO's exits hang from the entry, an OCO's stop-loss from its
    # take-profit, an mleg order's legs from the combination, a slice from its plan.
    parent_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("orders.id", ondelete="CASCADE"))
    # A leg of an mleg order: its place (0-based) and ratio; its quantity is the
    # combination's quantity x ratio.
    leg: Mapped[int | None] = mapped_column(Integer)
    ratio: Mapped[int | None] = mapped_column(Integer)
    time_in_force: Mapped[str] = mapped_column(String(3))
    product: Mapped[str] = mapped_column(String(4))
    quantity: Mapped[Decimal] = mapped_column(ExactDecimal)
    limit_price: Mapped[Decimal | None] = mapped_column(ExactDecimal)
    stop_price: Mapped[Decimal | None] = mapped_column(ExactDecimal)
    # A trailing stop: its trail (one of the two) and high-water mark (the low for a buy);
    # stop_price is the stop as last moved (stored with each move).
    trail_price: Mapped[Decimal | None] = mapped_column(ExactDecimal)
    trail_percent: Mapped[Decimal | None] = mapped_column(ExactDecimal)
    hwm: Mapped[Decimal | None] = mapped_column(ExactDecimal)
    status: Mapped[str] = mapped_column(String(20))
    filled_quantity: Mapped[Decimal] = mapped_column(ExactDecimal, default=ZERO)
    # Σ price·quantity of the fills: the average fill price is this over filled_quantity.
    filled_value: Mapped[Decimal] = mapped_column(ExactDecimal, default=ZERO)
    triggered: Mapped[bool] = mapped_column(Boolean, default=False)
    # Cash set aside for the unfilled part (moved back to cash as it fills or ends).
    reserved: Mapped[Decimal] = mapped_column(ExactDecimal, default=ZERO)
    # The price the reservation was computed at (limit price, or last price + band).
    reserve_price: Mapped[Decimal | None] = mapped_column(ExactDecimal)
    after_market: Mapped[bool] = mapped_column(Boolean, default=False)
    # An after-market order is not matched before this; a DAY order expires at expires_at.
    active_from: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    expires_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    reason: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    version: Mapped[int] = mapped_column(Integer, default=1)


class OrderEventRow(Base):
    """Every transition of an order, with the account's event sequence number."""

    __tablename__ = "order_events"
    __table_args__ = (Index("ix_order_events_order_id_id", "order_id", "id"),)

    id: Mapped[int] = mapped_column(SerialKey, primary_key=True, autoincrement=True)
    order_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("orders.id", ondelete="CASCADE"))
    account_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("trading_accounts.id", ondelete="CASCADE")
    )
    seq: Mapped[int] = mapped_column(BigInteger)
    kind: Mapped[str] = mapped_column(String(24))
    status: Mapped[str] = mapped_column(String(20))
    reason: Mapped[str | None] = mapped_column(String(200))
    execution_id: Mapped[str | None] = mapped_column(String(80))
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    # Never loaded (``order_id`` is set directly): declared so that one flush inserts new
    # orders before their events, which lets a batch of placements share one flush.
    order: Mapped[OrderRow] = relationship(lazy="raise", viewonly=False)


class FillRow(Base):
    __tablename__ = "fills"
    __table_args__ = (
        UniqueConstraint("execution_id"),
        Index("ix_fills_account_id_id", "account_id", "id"),
        Index("ix_fills_order_id", "order_id"),
    )

    id: Mapped[int] = mapped_column(SerialKey, primary_key=True, autoincrement=True)
    execution_id: Mapped[str] = mapped_column(String(80))
    order_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("orders.id", ondelete="CASCADE"))
    account_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("trading_accounts.id", ondelete="CASCADE")
    )
    instrument: Mapped[str] = mapped_column(String(80))
    side: Mapped[str] = mapped_column(String(4))
    product: Mapped[str] = mapped_column(String(4))
    price: Mapped[Decimal] = mapped_column(ExactDecimal)
    quantity: Mapped[Decimal] = mapped_column(ExactDecimal)
    fee: Mapped[Decimal] = mapped_column(ExactDecimal, default=ZERO)
    # The fee itemised: {"brokerage": "20", "stt": "12.5", ...} (JSON of exact decimals).
    charges: Mapped[str] = mapped_column(Text, default="{}", server_default="{}")
    realised_pnl: Mapped[Decimal] = mapped_column(ExactDecimal, default=ZERO)
    liquidity: Mapped[str] = mapped_column(String(5))
    source_id: Mapped[str] = mapped_column(String(64))
    ts: Mapped[dt.datetime] = mapped_column(UTCDateTime)


class PositionRow(Base):
    """Net position per (account, instrument, product); ``cost`` is its exact cost basis."""

    __tablename__ = "positions"
    __table_args__ = (
        PrimaryKeyConstraint("account_id", "instrument", "product"),
        CheckConstraint("CAST(margin AS NUMERIC) >= 0", name="margin_not_negative"),
    )

    account_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("trading_accounts.id", ondelete="CASCADE")
    )
    instrument: Mapped[str] = mapped_column(String(80))
    product: Mapped[str] = mapped_column(String(4))
    quantity: Mapped[Decimal] = mapped_column(ExactDecimal, default=ZERO)
    # Signed: quantity x average price x multiplier (futures: at the last settlement price).
    cost: Mapped[Decimal] = mapped_column(ExactDecimal, default=ZERO)
    realised_pnl: Mapped[Decimal] = mapped_column(ExactDecimal, default=ZERO)
    margin: Mapped[Decimal] = mapped_column(ExactDecimal, default=ZERO)
    multiplier: Mapped[Decimal] = mapped_column(ExactDecimal, default=Decimal(1))
    is_future: Mapped[bool] = mapped_column(Boolean, default=False)
    # Futures: the session date of the last daily settlement (marked to market into cash).
    settled_on: Mapped[dt.date | None] = mapped_column(Date)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class TradingEvent(Base):
    """The outbox: every state change, written in the transaction that made it, in the
    account's sequence, for the stream to deliver (``published_at`` once it has)."""

    __tablename__ = "trading_events"
    __table_args__ = (
        UniqueConstraint("account_id", "seq"),
        Index("ix_trading_events_published_at_id", "published_at", "id"),
    )

    id: Mapped[int] = mapped_column(SerialKey, primary_key=True, autoincrement=True)
    account_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("trading_accounts.id", ondelete="CASCADE")
    )
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    seq: Mapped[int] = mapped_column(BigInteger)
    type: Mapped[str] = mapped_column(String(24))
    payload: Mapped[str] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    published_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)


class CorporateActionApplied(Base):
    """A corporate action applied to one account's holding (once: the key says so)."""

    __tablename__ = "corporate_actions_applied"
    __table_args__ = (PrimaryKeyConstraint("action_id", "account_id", "product"),)

    action_id: Mapped[int] = mapped_column(ForeignKey("corporate_actions.id", ondelete="CASCADE"))
    account_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("trading_accounts.id", ondelete="CASCADE")
    )
    product: Mapped[str] = mapped_column(String(4))
    applied_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
