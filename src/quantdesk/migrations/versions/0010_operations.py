"""Operations (issue 16): the trading kill switch's halts (``ops/models.py``).

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-03
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from quantdesk.platform.db import UTCDateTime

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "trading_halts",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("scope", sa.String(length=16), nullable=False),
        sa.Column("target", sa.String(length=80), nullable=False),
        sa.Column("reason", sa.String(length=200), nullable=False),
        sa.Column("halted_at", UTCDateTime(), nullable=False),
        sa.Column("halted_by", sa.Uuid(), nullable=True),
        sa.Column("resumed_at", UTCDateTime(), nullable=True),
        sa.Column("resumed_by", sa.Uuid(), nullable=True),
        sa.CheckConstraint(
            "scope IN ('all', 'exchange', 'instrument')", name=op.f("ck_trading_halts_scope")
        ),
        sa.ForeignKeyConstraint(
            ["halted_by"],
            ["users.id"],
            name=op.f("fk_trading_halts_halted_by_users"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["resumed_by"],
            ["users.id"],
            name=op.f("fk_trading_halts_resumed_by_users"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_trading_halts")),
    )
    with op.batch_alter_table("trading_halts", schema=None) as batch_op:
        batch_op.create_index("ix_trading_halts_resumed_at", ["resumed_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("trading_halts", schema=None) as batch_op:
        batch_op.drop_index("ix_trading_halts_resumed_at")
    op.drop_table("trading_halts")
