"""Trading part two (issue 12): each fill's charges itemised; orders gain their class
(bracket, OCO, OTO, mleg), a parent, an mleg leg's place and ratio, and a trailing stop's
trail and high-water mark; ``orders.type`` widens for ``trailing_stop``.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-03
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from quantdesk.platform.db import ExactDecimal

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("fills", schema=None) as batch_op:
        batch_op.add_column(sa.Column("charges", sa.Text(), server_default="{}", nullable=False))
    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.alter_column(
            "type",
            existing_type=sa.String(length=10),
            type_=sa.String(length=16),
            existing_nullable=False,
        )
        batch_op.add_column(
            sa.Column("order_class", sa.String(length=8), server_default="simple", nullable=False)
        )
        batch_op.add_column(sa.Column("parent_id", sa.Uuid(), nullable=True))
        batch_op.add_column(sa.Column("leg", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("ratio", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("trail_price", ExactDecimal(), nullable=True))
        batch_op.add_column(sa.Column("trail_percent", ExactDecimal(), nullable=True))
        batch_op.add_column(sa.Column("hwm", ExactDecimal(), nullable=True))
        batch_op.create_index("ix_orders_parent_id", ["parent_id"], unique=False)
        batch_op.create_foreign_key(
            batch_op.f("fk_orders_parent_id_orders"),
            "orders",
            ["parent_id"],
            ["id"],
            ondelete="CASCADE",
        )


def downgrade() -> None:
    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("fk_orders_parent_id_orders"), type_="foreignkey")
        batch_op.drop_index("ix_orders_parent_id")
        for column in ("hwm", "trail_percent", "trail_price", "ratio", "leg", "parent_id"):
            batch_op.drop_column(column)
        batch_op.drop_column("order_class")
        batch_op.alter_column(
            "type",
            existing_type=sa.String(length=16),
            type_=sa.String(length=10),
            existing_nullable=False,
        )
    with op.batch_alter_table("fills", schema=None) as batch_op:
        batch_op.drop_column("charges")
