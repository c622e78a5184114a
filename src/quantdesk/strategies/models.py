"""Saved strategies: a user's multi-leg strategy on instruments of the master.

A leg names its instrument by key (``NFO:NIFTY26DEC24000CE``), a signed quantity in lots
(negative: short), an entry price and, for options, the implied volatility to value it with
when no quote gives one.  ``order_id`` links a leg to the paper order that placed it: the
leg then follows that order's fills (quantity filled and average price) instead of the
entry typed in.  ``version`` counts edits (optimistic concurrency on PUT).
"""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal

from sqlalchemy import JSON, Float, ForeignKey, Index, Integer, String, Text, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from quantdesk.platform.db import Base, ExactDecimal, UTCDateTime, utcnow


class SavedStrategyRow(Base):
    __tablename__ = "saved_strategies"
    __table_args__ = (Index("ix_saved_strategies_owner_created", "owner_id", "created_at"),)

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    owner_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(120))
    tags: Mapped[list[str]] = mapped_column(JSON)
    notes: Mapped[str] = mapped_column(Text, default="")
    version: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class SavedStrategyLegRow(Base):
    __tablename__ = "saved_strategy_legs"

    strategy_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("saved_strategies.id", ondelete="CASCADE"), primary_key=True
    )
    position: Mapped[int] = mapped_column(Integer, primary_key=True)
    instrument: Mapped[str] = mapped_column(String(80))
    quantity: Mapped[Decimal] = mapped_column(ExactDecimal)
    entry_price: Mapped[Decimal] = mapped_column(ExactDecimal)
    iv: Mapped[float | None] = mapped_column(Float)
    order_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("orders.id", ondelete="SET NULL"))
