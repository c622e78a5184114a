"""Signals, saved strategies and backtests (issue 18): trained models, their jobs
(``signals/models.py``) and saved multi-leg strategies (``strategies/models.py``).

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-03
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from quantdesk.platform.db import ExactDecimal, UTCDateTime

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _owner(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        ["owner_id"], ["users.id"], name=op.f(f"fk_{table}_owner_id_users"), ondelete="CASCADE"
    )


def upgrade() -> None:
    op.create_table(
        "signal_models",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("owner_id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(length=80), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("instrument", sa.String(length=80), nullable=False),
        sa.Column("timeframe", sa.String(length=4), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("spec", sa.JSON(), nullable=False),
        sa.Column("features", sa.JSON(), nullable=False),
        sa.Column("metrics", sa.JSON(), nullable=False),
        sa.Column("folds", sa.JSON(), nullable=False),
        sa.Column("window_start", UTCDateTime(), nullable=False),
        sa.Column("window_end", UTCDateTime(), nullable=False),
        sa.Column("rows", sa.Integer(), nullable=False),
        sa.Column("data_hash", sa.String(length=64), nullable=False),
        sa.Column("artifact_format", sa.String(length=16), nullable=False),
        sa.Column("artifact_digest", sa.String(length=64), nullable=False),
        sa.Column("artifact", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        _owner("signal_models"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_signal_models")),
        sa.UniqueConstraint(
            "owner_id",
            "name",
            "instrument",
            "version",
            name=op.f("uq_signal_models_owner_id_name_instrument_version"),
        ),
    )
    with op.batch_alter_table("signal_models", schema=None) as batch_op:
        batch_op.create_index(
            "ix_signal_models_owner_created", ["owner_id", "created_at"], unique=False
        )
    op.create_table(
        "signal_jobs",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("owner_id", sa.Uuid(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("done", sa.Integer(), nullable=False),
        sa.Column("total", sa.Integer(), nullable=False),
        sa.Column("progress", sa.Float(), nullable=False),
        sa.Column("params", sa.JSON(), nullable=False),
        sa.Column("result", sa.JSON(), nullable=True),
        sa.Column("picture", sa.Text(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("model_id", sa.Uuid(), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("started_at", UTCDateTime(), nullable=True),
        sa.Column("finished_at", UTCDateTime(), nullable=True),
        sa.CheckConstraint("kind IN ('train', 'backtest')", name=op.f("ck_signal_jobs_kind")),
        sa.CheckConstraint(
            "status IN ('queued', 'running', 'done', 'failed')", name=op.f("ck_signal_jobs_status")
        ),
        _owner("signal_jobs"),
        sa.ForeignKeyConstraint(
            ["model_id"],
            ["signal_models.id"],
            name=op.f("fk_signal_jobs_model_id_signal_models"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_signal_jobs")),
    )
    with op.batch_alter_table("signal_jobs", schema=None) as batch_op:
        batch_op.create_index(
            "ix_signal_jobs_owner_created", ["owner_id", "created_at"], unique=False
        )
        batch_op.create_index("ix_signal_jobs_status", ["status"], unique=False)
    op.create_table(
        "saved_strategies",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("owner_id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(length=120), nullable=False),
        sa.Column("tags", sa.JSON(), nullable=False),
        sa.Column("notes", sa.Text(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        _owner("saved_strategies"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_saved_strategies")),
    )
    with op.batch_alter_table("saved_strategies", schema=None) as batch_op:
        batch_op.create_index(
            "ix_saved_strategies_owner_created", ["owner_id", "created_at"], unique=False
        )
    op.create_table(
        "saved_strategy_legs",
        sa.Column("strategy_id", sa.Uuid(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("instrument", sa.String(length=80), nullable=False),
        sa.Column("quantity", ExactDecimal(), nullable=False),
        sa.Column("entry_price", ExactDecimal(), nullable=False),
        sa.Column("iv", sa.Float(), nullable=True),
        sa.Column("order_id", sa.Uuid(), nullable=True),
        sa.ForeignKeyConstraint(
            ["order_id"],
            ["orders.id"],
            name=op.f("fk_saved_strategy_legs_order_id_orders"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["strategy_id"],
            ["saved_strategies.id"],
            name=op.f("fk_saved_strategy_legs_strategy_id_saved_strategies"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("strategy_id", "position", name=op.f("pk_saved_strategy_legs")),
    )


def downgrade() -> None:
    op.drop_table("saved_strategy_legs")
    with op.batch_alter_table("saved_strategies", schema=None) as batch_op:
        batch_op.drop_index("ix_saved_strategies_owner_created")
    op.drop_table("saved_strategies")
    with op.batch_alter_table("signal_jobs", schema=None) as batch_op:
        batch_op.drop_index("ix_signal_jobs_status")
        batch_op.drop_index("ix_signal_jobs_owner_created")
    op.drop_table("signal_jobs")
    with op.batch_alter_table("signal_models", schema=None) as batch_op:
        batch_op.drop_index("ix_signal_models_owner_created")
    op.drop_table("signal_models")
