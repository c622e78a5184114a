"""Portfolios (issue 14): portfolios, their accounts and transactions, and FX rates
(``portfolios/models.py``).

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-03
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from quantdesk.platform.db import ExactDecimal, UTCDateTime

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "portfolio_fx_rates",
        sa.Column("base", sa.String(length=3), nullable=False),
        sa.Column("quote", sa.String(length=3), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("rate", ExactDecimal(), nullable=False),
        sa.Column("source", sa.String(length=40), nullable=False),
        sa.PrimaryKeyConstraint("base", "quote", "day", name=op.f("pk_portfolio_fx_rates")),
    )
    op.create_table(
        "portfolios",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("lot_method", sa.String(length=8), nullable=False),
        sa.Column("jurisdiction", sa.String(length=2), nullable=False),
        sa.Column("txn_seq", sa.BigInteger(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.CheckConstraint(
            "lot_method IN ('fifo', 'lifo', 'hifo', 'average')",
            name=op.f("ck_portfolios_lot_method"),
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_portfolios_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_portfolios")),
    )
    with op.batch_alter_table("portfolios", schema=None) as batch_op:
        batch_op.create_index(
            "ix_portfolios_user_id_created_at", ["user_id", "created_at", "id"], unique=False
        )

    op.create_table(
        "portfolio_accounts",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("portfolio_id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("lot_method", sa.String(length=8), nullable=True),
        sa.Column("trading_account_id", sa.Uuid(), nullable=True),
        sa.Column("last_fill_id", sa.BigInteger(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.CheckConstraint(
            "kind IN ('broker', 'demat', 'paper')", name=op.f("ck_portfolio_accounts_kind")
        ),
        sa.ForeignKeyConstraint(
            ["portfolio_id"],
            ["portfolios.id"],
            name=op.f("fk_portfolio_accounts_portfolio_id_portfolios"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["trading_account_id"],
            ["trading_accounts.id"],
            name=op.f("fk_portfolio_accounts_trading_account_id_trading_accounts"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_portfolio_accounts")),
        sa.UniqueConstraint(
            "portfolio_id", "name", name=op.f("uq_portfolio_accounts_portfolio_id_name")
        ),
    )
    with op.batch_alter_table("portfolio_accounts", schema=None) as batch_op:
        batch_op.create_index(
            "ix_portfolio_accounts_trading_account_id", ["trading_account_id"], unique=False
        )

    op.create_table(
        "portfolio_transactions",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("portfolio_id", sa.Uuid(), nullable=False),
        sa.Column("account_id", sa.Uuid(), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("type", sa.String(length=20), nullable=False),
        sa.Column("trade_date", sa.Date(), nullable=False),
        sa.Column("settlement_date", sa.Date(), nullable=True),
        sa.Column("instrument", sa.String(length=80), nullable=True),
        sa.Column("instrument_type", sa.String(length=8), nullable=False),
        sa.Column("quantity", ExactDecimal(), nullable=False),
        sa.Column("price", ExactDecimal(), nullable=False),
        sa.Column("fees", ExactDecimal(), nullable=False),
        sa.Column("amount", ExactDecimal(), nullable=True),
        sa.Column("tax", ExactDecimal(), nullable=False),
        sa.Column("ratio", ExactDecimal(), nullable=True),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("fx_rate", ExactDecimal(), nullable=False),
        sa.Column("multiplier", ExactDecimal(), nullable=False),
        sa.Column("to_account_id", sa.Uuid(), nullable=True),
        sa.Column("new_instrument", sa.String(length=80), nullable=True),
        sa.Column("lots", sa.Text(), nullable=True),
        sa.Column("note", sa.String(length=500), nullable=False),
        sa.Column("source", sa.String(length=12), nullable=False),
        sa.Column("external_id", sa.String(length=120), nullable=True),
        sa.Column("fingerprint", sa.String(length=64), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["portfolio_accounts.id"],
            name=op.f("fk_portfolio_transactions_account_id_portfolio_accounts"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["portfolio_id"],
            ["portfolios.id"],
            name=op.f("fk_portfolio_transactions_portfolio_id_portfolios"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["to_account_id"],
            ["portfolio_accounts.id"],
            name=op.f("fk_portfolio_transactions_to_account_id_portfolio_accounts"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_portfolio_transactions")),
        sa.UniqueConstraint(
            "portfolio_id",
            "external_id",
            name=op.f("uq_portfolio_transactions_portfolio_id_external_id"),
        ),
    )
    with op.batch_alter_table("portfolio_transactions", schema=None) as batch_op:
        batch_op.create_index(
            "ix_portfolio_transactions_portfolio_id_date",
            ["portfolio_id", "trade_date", "seq"],
            unique=False,
        )
        batch_op.create_index(
            "ix_portfolio_transactions_portfolio_id_fingerprint",
            ["portfolio_id", "fingerprint"],
            unique=False,
        )


def downgrade() -> None:
    with op.batch_alter_table("portfolio_transactions", schema=None) as batch_op:
        batch_op.drop_index("ix_portfolio_transactions_portfolio_id_fingerprint")
        batch_op.drop_index("ix_portfolio_transactions_portfolio_id_date")
    op.drop_table("portfolio_transactions")
    with op.batch_alter_table("portfolio_accounts", schema=None) as batch_op:
        batch_op.drop_index("ix_portfolio_accounts_trading_account_id")
    op.drop_table("portfolio_accounts")
    with op.batch_alter_table("portfolios", schema=None) as batch_op:
        batch_op.drop_index("ix_portfolios_user_id_created_at")
    op.drop_table("portfolios")
    op.drop_table("portfolio_fx_rates")
