"""Signals' tables: trained models (versioned artifacts) and the jobs that train, evaluate
and backtest them.

A model row is immutable once written: retraining a name on an instrument adds that
pair's next ``version``.  Its artifact is skops bytes with their SHA-256
(``research.artifacts``), next to everything needed to reproduce and judge it: the spec,
the feature list, the training window, the out-of-sample metrics and the hash of the bars
it was trained on.

A job row is the status of one background run (queued, running, done, failed) with its
progress; a finished job keeps its result (metrics, or a backtest's equity curve, fills,
trades and measures) and, for a backtest, its tear sheet (SVG).
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from sqlalchemy import (
    JSON,
    CheckConstraint,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
    Uuid,
)
from sqlalchemy.orm import Mapped, mapped_column

from quantdesk.platform.db import Base, UTCDateTime, utcnow


class SignalModelRow(Base):
    __tablename__ = "signal_models"
    __table_args__ = (
        UniqueConstraint("owner_id", "name", "instrument", "version"),
        Index("ix_signal_models_owner_created", "owner_id", "created_at"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    owner_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(80))
    version: Mapped[int] = mapped_column(Integer)
    instrument: Mapped[str] = mapped_column(String(80))
    timeframe: Mapped[str] = mapped_column(String(4))
    kind: Mapped[str] = mapped_column(String(32))
    spec: Mapped[dict[str, Any]] = mapped_column(JSON)
    features: Mapped[list[str]] = mapped_column(JSON)
    metrics: Mapped[dict[str, Any]] = mapped_column(JSON)
    folds: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    window_start: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    window_end: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    rows: Mapped[int] = mapped_column(Integer)
    data_hash: Mapped[str] = mapped_column(String(64))
    artifact_format: Mapped[str] = mapped_column(String(16))
    artifact_digest: Mapped[str] = mapped_column(String(64))
    artifact: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class SignalJobRow(Base):
    __tablename__ = "signal_jobs"
    __table_args__ = (
        CheckConstraint("kind IN ('train', 'backtest')", name="kind"),
        CheckConstraint("status IN ('queued', 'running', 'done', 'failed')", name="status"),
        Index("ix_signal_jobs_owner_created", "owner_id", "created_at"),
        Index("ix_signal_jobs_status", "status"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    owner_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16), default="queued")
    done: Mapped[int] = mapped_column(Integer, default=0)
    total: Mapped[int] = mapped_column(Integer, default=0)
    progress: Mapped[float] = mapped_column(Float, default=0.0)
    params: Mapped[dict[str, Any]] = mapped_column(JSON)
    result: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    picture: Mapped[str | None] = mapped_column(Text)
    error: Mapped[str | None] = mapped_column(Text)
    model_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("signal_models.id", ondelete="SET NULL")
    )
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    started_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    finished_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
