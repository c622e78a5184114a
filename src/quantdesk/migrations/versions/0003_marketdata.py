"""Market data: the instrument master and the bar store.

On PostgreSQL with the TimescaleDB extension available, ``bars`` becomes a hypertable
partitioned on ``ts`` (7-day chunks suit 1-minute bars: about 2,700 rows per instrument per
chunk).  Without the extension it stays a plain table; nothing else depends on it.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from quantdesk.platform.db import ExactDecimal, UTCDateTime

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "instruments",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("exchange", sa.String(length=8), nullable=False),
        sa.Column("symbol", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("type", sa.String(length=8), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("lot_size", ExactDecimal(), nullable=False),
        sa.Column("tick_size", ExactDecimal(), nullable=False),
        sa.Column("multiplier", ExactDecimal(), nullable=False),
        sa.Column("underlying", sa.String(length=64), nullable=True),
        sa.Column("expiry", sa.Date(), nullable=True),
        sa.Column("strike", ExactDecimal(), nullable=True),
        sa.Column("option_type", sa.String(length=4), nullable=True),
        sa.Column("isin", sa.String(length=12), nullable=True),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("provider_token", sa.String(length=32), nullable=True),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.CheckConstraint(
            "type IN ('equity', 'etf', 'index', 'future', 'option')", name="ck_instruments_type"
        ),
        sa.CheckConstraint(
            "option_type IS NULL OR option_type IN ('call', 'put')",
            name="ck_instruments_option_type",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_instruments"),
        sa.UniqueConstraint("exchange", "symbol", name="uq_instruments_exchange_symbol"),
    )
    op.create_index("ix_instruments_symbol", "instruments", ["symbol"])
    op.create_index("ix_instruments_underlying_expiry", "instruments", ["underlying", "expiry"])

    op.create_table(
        "bars",
        sa.Column("instrument_id", sa.Integer(), nullable=False),
        sa.Column("timeframe", sa.String(length=3), nullable=False),
        sa.Column("ts", UTCDateTime(), nullable=False),
        sa.Column("open", ExactDecimal(), nullable=False),
        sa.Column("high", ExactDecimal(), nullable=False),
        sa.Column("low", ExactDecimal(), nullable=False),
        sa.Column("close", ExactDecimal(), nullable=False),
        sa.Column("volume", ExactDecimal(), nullable=False),
        sa.Column("oi", ExactDecimal(), nullable=True),
        sa.PrimaryKeyConstraint("instrument_id", "timeframe", "ts", name="pk_bars"),
        sqlite_with_rowid=False,
    )
    _make_hypertable_when_available()


def _make_hypertable_when_available() -> None:
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        return
    installed = bind.execute(
        sa.text("SELECT 1 FROM pg_extension WHERE extname = 'timescaledb'")
    ).scalar()
    if not installed:
        # CREATE EXTENSION only succeeds when the server preloads the library, so ask for
        # both rather than letting a half-configured server fail the migration. The role
        # quantdesk runs as is usually its database's owner, not a superuser: it may not read
        # shared_preload_libraries (pg_settings then hides the row) nor create the extension,
        # and either way the bars stay a plain table.
        available = bind.execute(
            sa.text("SELECT 1 FROM pg_available_extensions WHERE name = 'timescaledb'")
        ).scalar()
        preloaded = bind.execute(
            sa.text("SELECT setting FROM pg_settings WHERE name = 'shared_preload_libraries'")
        ).scalar()
        if not available or "timescaledb" not in (preloaded or ""):
            return
        try:
            with bind.begin_nested():
                bind.execute(sa.text("CREATE EXTENSION IF NOT EXISTS timescaledb"))
        except sa.exc.DBAPIError:
            return
    op.execute(
        "SELECT create_hypertable('bars', 'ts', chunk_time_interval => INTERVAL '7 days', "
        "if_not_exists => TRUE, migrate_data => TRUE)"
    )


def downgrade() -> None:
    op.drop_table("bars")
    op.drop_index("ix_instruments_underlying_expiry", table_name="instruments")
    op.drop_index("ix_instruments_symbol", table_name="instruments")
    op.drop_table("instruments")
