"""Tables of portfolios: portfolios, their accounts, their transactions, FX rates.

Lots, holdings, gains and returns are not stored: they are recomputed from the transactions
(``accounting``), so an edit can never leave a stale lot behind.  Every change of a
portfolio's transactions locks the portfolio row and bumps its ``version``; a transaction
carries its own ``version`` for optimistic edits (a stale one is a 409).
"""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal

from sqlalchemy import (
    BigInteger,
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
from sqlalchemy.orm import Mapped, mapped_column

from quantdesk.platform.db import Base, ExactDecimal, UTCDateTime, utcnow

ZERO = Decimal(0)
ONE = Decimal(1)


class PortfolioRow(Base):
    __tablename__ = "portfolios"
    __table_args__ = (
        CheckConstraint("lot_method IN ('fifo', 'lifo', 'hifo', 'average')", name="lot_method"),
        Index("ix_portfolios_user_id_created_at", "user_id", "created_at", "id"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(100))
    currency: Mapped[str] = mapped_column(String(3))
    lot_method: Mapped[str] = mapped_column(String(8))
    # Holding-period threshold and financial year of the gains report: IN or US.
    jurisdiction: Mapped[str] = mapped_column(String(2))
    # The last transaction sequence number given out (insertion order within a day).
    txn_seq: Mapped[int] = mapped_column(BigInteger, default=0)
    version: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class PortfolioAccountRow(Base):
    """A broker account, a demat, or a paper account linked to a trading account (whose
    fills become this account's transactions by themselves)."""

    __tablename__ = "portfolio_accounts"
    __table_args__ = (
        CheckConstraint("kind IN ('broker', 'demat', 'paper')", name="kind"),
        UniqueConstraint("portfolio_id", "name"),
        Index("ix_portfolio_accounts_trading_account_id", "trading_account_id"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    portfolio_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("portfolios.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(100))
    kind: Mapped[str] = mapped_column(String(8))
    lot_method: Mapped[str | None] = mapped_column(String(8))
    trading_account_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("trading_accounts.id", ondelete="SET NULL")
    )
    # The last fill of the trading account already imported (fills.id grows).
    last_fill_id: Mapped[int] = mapped_column(BigInteger, default=0)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class PortfolioTransactionRow(Base):
    __tablename__ = "portfolio_transactions"
    __table_args__ = (
        Index("ix_portfolio_transactions_portfolio_id_date", "portfolio_id", "trade_date", "seq"),
        Index("ix_portfolio_transactions_portfolio_id_fingerprint", "portfolio_id", "fingerprint"),
        UniqueConstraint("portfolio_id", "external_id"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    portfolio_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("portfolios.id", ondelete="CASCADE"))
    account_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("portfolio_accounts.id", ondelete="CASCADE")
    )
    seq: Mapped[int] = mapped_column(BigInteger)
    type: Mapped[str] = mapped_column(String(20))
    trade_date: Mapped[dt.date] = mapped_column(Date)
    settlement_date: Mapped[dt.date | None] = mapped_column(Date)
    instrument: Mapped[str | None] = mapped_column(String(80))
    instrument_type: Mapped[str] = mapped_column(String(8), default="equity")
    quantity: Mapped[Decimal] = mapped_column(ExactDecimal, default=ZERO)
    price: Mapped[Decimal] = mapped_column(ExactDecimal, default=ZERO)
    fees: Mapped[Decimal] = mapped_column(ExactDecimal, default=ZERO)
    amount: Mapped[Decimal | None] = mapped_column(ExactDecimal)
    tax: Mapped[Decimal] = mapped_column(ExactDecimal, default=ZERO)
    ratio: Mapped[Decimal | None] = mapped_column(ExactDecimal)
    currency: Mapped[str] = mapped_column(String(3))
    fx_rate: Mapped[Decimal] = mapped_column(ExactDecimal, default=ONE)
    multiplier: Mapped[Decimal] = mapped_column(ExactDecimal, default=ONE)
    to_account_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("portfolio_accounts.id", ondelete="CASCADE")
    )
    new_instrument: Mapped[str | None] = mapped_column(String(80))
    # Specific identification: JSON [{"lot_id": ..., "quantity": "..."}].
    lots: Mapped[str | None] = mapped_column(Text)
    note: Mapped[str] = mapped_column(String(500), default="")
    source: Mapped[str] = mapped_column(String(12), default="api")
    # The source's own id (a Zerodha trade id, a paper fill's execution id): never twice.
    external_id: Mapped[str | None] = mapped_column(String(120))
    # What makes two transactions "the same" for an import's duplicate check.
    fingerprint: Mapped[str] = mapped_column(String(64))
    version: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class FxRateRow(Base):
    """One day's rate: 1 ``base`` = ``rate`` ``quote`` (USD/INR 84.2: base USD, quote INR)."""

    __tablename__ = "portfolio_fx_rates"
    __table_args__ = (PrimaryKeyConstraint("base", "quote", "day"),)

    base: Mapped[str] = mapped_column(String(3))
    quote: Mapped[str] = mapped_column(String(3))
    day: Mapped[dt.date] = mapped_column(Date)
    rate: Mapped[Decimal] = mapped_column(ExactDecimal)
    source: Mapped[str] = mapped_column(String(40), default="manual")
