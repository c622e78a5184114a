"""Official exchange calendars: the holiday lists an admin imports (``quantdesk calendar
import``), which replace a provisional or package year of that exchange.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from quantdesk.platform.db import UTCDateTime

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "calendar_days",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("exchange", sa.String(length=8), nullable=False),
        sa.Column("year", sa.Integer(), nullable=False),
        sa.Column("date", sa.Date(), nullable=False),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("opens", sa.Time(), nullable=True),
        sa.Column("closes", sa.Time(), nullable=True),
        sa.Column("source", sa.String(length=200), nullable=False),
        sa.Column("imported_at", UTCDateTime(), nullable=False),
        sa.CheckConstraint(
            "kind IN ('holiday', 'special', 'regular')", name="ck_calendar_days_kind"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_calendar_days"),
        sa.UniqueConstraint(
            "exchange", "date", "kind", "opens", name="uq_calendar_days_exchange_date_kind_opens"
        ),
    )
    op.create_index("ix_calendar_days_exchange_year", "calendar_days", ["exchange", "year"])


def downgrade() -> None:
    op.drop_index("ix_calendar_days_exchange_year", table_name="calendar_days")
    op.drop_table("calendar_days")
