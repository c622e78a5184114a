"""The kill switch's table: one row per halt, kept after it is lifted (the audit trail).

A halt is active while ``resumed_at`` is NULL.  Rows are never deleted, so the table answers
"who stopped what, when, why, and who let it go again" on its own; each halt and resume is
also written to the security event log.
"""

from __future__ import annotations

import datetime as dt
import uuid

from sqlalchemy import CheckConstraint, ForeignKey, Index, String, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from quantdesk.platform.db import Base, UTCDateTime, utcnow


class TradingHalt(Base):
    __tablename__ = "trading_halts"
    __table_args__ = (
        CheckConstraint("scope IN ('all', 'exchange', 'instrument')", name="scope"),
        # The hot query: the active halts (resumed_at IS NULL), read once per cache period.
        Index("ix_trading_halts_resumed_at", "resumed_at"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    scope: Mapped[str] = mapped_column(String(16))
    # '' for the whole system, the exchange code, or the canonical instrument key.
    target: Mapped[str] = mapped_column(String(80), default="")
    reason: Mapped[str] = mapped_column(String(200))
    halted_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    # NULL when halted from the command line (the operator on the server, no user).
    halted_by: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    resumed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    resumed_by: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL")
    )
