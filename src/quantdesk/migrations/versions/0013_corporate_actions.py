"""Corporate actions (issue 12): splits, bonuses and dividends by ex-date
(``marketdata/models.py``), and which account holdings each has been applied to
(``trading/models.py``), so the matcher applies each once.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-04
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from quantdesk.platform.db import ExactDecimal, UTCDateTime

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "corporate_actions",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("instrument", sa.String(length=80), nullable=False),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("ex_date", sa.Date(), nullable=False),
        sa.Column("old", ExactDecimal(), nullable=True),
        sa.Column("new", ExactDecimal(), nullable=True),
        sa.Column("bonus", ExactDecimal(), nullable=True),
        sa.Column("held", ExactDecimal(), nullable=True),
        sa.Column("per_share", ExactDecimal(), nullable=True),
        sa.Column("fraction_price", ExactDecimal(), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.CheckConstraint(
            "kind IN ('split', 'bonus', 'dividend')", name=op.f("ck_corporate_actions_kind")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_corporate_actions")),
        sa.UniqueConstraint(
            "instrument",
            "kind",
            "ex_date",
            name=op.f("uq_corporate_actions_instrument_kind_ex_date"),
        ),
    )
    with op.batch_alter_table("corporate_actions", schema=None) as batch_op:
        batch_op.create_index("ix_corporate_actions_ex_date", ["ex_date"], unique=False)

    op.create_table(
        "corporate_actions_applied",
        sa.Column("action_id", sa.Integer(), nullable=False),
        sa.Column("account_id", sa.Uuid(), nullable=False),
        sa.Column("product", sa.String(length=4), nullable=False),
        sa.Column("applied_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["trading_accounts.id"],
            name=op.f("fk_corporate_actions_applied_account_id_trading_accounts"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["action_id"],
            ["corporate_actions.id"],
            name=op.f("fk_corporate_actions_applied_action_id_corporate_actions"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "action_id", "account_id", "product", name=op.f("pk_corporate_actions_applied")
        ),
    )


def downgrade() -> None:
    op.drop_table("corporate_actions_applied")
    with op.batch_alter_table("corporate_actions", schema=None) as batch_op:
        batch_op.drop_index("ix_corporate_actions_ex_date")

    op.drop_table("corporate_actions")
