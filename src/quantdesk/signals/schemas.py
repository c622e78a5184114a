"""API shapes of signals: training and backtest requests, jobs, models, signal series."""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from quantdesk.marketdata.domain import Timeframe
from quantdesk.platform.pagination import Page
from quantdesk.signals.models import SignalJobRow, SignalModelRow
from quantdesk.signals.research.estimators import MODEL_KINDS
from quantdesk.signals.research.features import FEATURES

Money = Annotated[Decimal, Field(gt=0, max_digits=20, decimal_places=4)]
Units = Annotated[Decimal, Field(gt=0, max_digits=20, decimal_places=8)]
InstrumentKey = Annotated[str, Field(min_length=3, max_length=80, pattern=r"^[A-Za-z]+:.+$")]
RESERVED_NAMES = frozenset({"models", "jobs", "backtests"})


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class TrainIn(_Strict):
    """Train one model per instrument, each validated walk-forward on its own bars."""

    name: str = Field(min_length=1, max_length=80, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
    instruments: list[InstrumentKey] = Field(min_length=1)
    timeframe: Timeframe = Timeframe.D1
    start: dt.datetime | None = Field(default=None, description="First bar (inclusive)")
    end: dt.datetime | None = Field(default=None, description="Last bar (exclusive)")
    model: Literal["logistic", "random_forest", "gradient_boosting"] = "logistic"
    params: dict[str, float | int] = Field(default_factory=dict)
    features: list[str] = Field(default_factory=lambda: list(FEATURES), min_length=1)
    label: Literal["forward_return", "triple_barrier"] = "forward_return"
    horizon: int = Field(default=1, ge=1, le=250)
    pt: float = Field(default=1.0, ge=0, le=20)
    sl: float = Field(default=1.0, ge=0, le=20)
    scheme: Literal["walk_forward", "purged_kfold"] = "walk_forward"
    window: Literal["expanding", "rolling"] = "expanding"
    n_splits: int = Field(default=5, ge=2, le=50)
    train_size: int | None = Field(default=None, ge=20)
    gap: int = Field(default=0, ge=0, le=1000)
    embargo_pct: float = Field(default=0.01, ge=0, lt=0.5)
    threshold: float = Field(default=0.5, ge=0.5, lt=1)
    allow_short: bool = False
    seed: int = Field(default=0, ge=0, le=2**31 - 1)
    capital: Money = Field(
        default=Decimal(1_000_000),
        description="Notional the costs are priced on (the charges of trading it once).",
    )
    product: Literal["cnc", "mis", "nrml"] = "cnc"

    @field_validator("name")
    @classmethod
    def _not_reserved(cls, name: str) -> str:
        if name in RESERVED_NAMES:
            raise ValueError(f"{name!r} is reserved")
        return name

    @field_validator("features")
    @classmethod
    def _known(cls, names: list[str]) -> list[str]:
        unknown = sorted(set(names) - set(FEATURES))
        if unknown:
            raise ValueError(f"unknown features {unknown}; available: {', '.join(FEATURES)}")
        return names


class BacktestIn(_Strict):
    """Backtest a trained model's signal on the paper-trading engine (a grid of
    ``thresholds`` and instruments runs as independent tasks), or hold a saved strategy's
    legs through the window (``strategy_id``)."""

    model_id: uuid.UUID | None = None
    strategy_id: uuid.UUID | None = Field(
        default=None, description="A saved strategy: each leg bought or sold at the open of "
        "its second bar in [start, end) and closed at the open of its last",
    )  # fmt: skip
    instruments: list[InstrumentKey] | None = Field(
        default=None, description="Default: the model's own instrument"
    )
    start: dt.datetime | None = Field(
        default=None, description="Default: the first bar after the model's training window "
        "(the model kept was fitted on every bar of it)",
    )  # fmt: skip
    end: dt.datetime | None = None
    quantity: Units = Field(default=Decimal(1), description="Units held when the signal is on")
    capital: Money = Decimal(1_000_000)
    thresholds: list[float] | None = Field(default=None, min_length=1, max_length=20)
    allow_short: bool | None = None
    fill_model: Literal["best_price", "one_tick_slippage"] = "best_price"
    half_spread_ticks: int = Field(default=0, ge=0, le=100)
    charges: bool = Field(default=True, description="Price each fill with the charge tables")
    product: Literal["cnc", "mis", "nrml"] = "cnc"
    order_type: Literal["market", "limit", "stop"] = Field(
        default="market", description="Entries and exits (a signal's, or a saved "
        "strategy's legs'): market orders (filled at the next bar's open), or DAY limit or "
        "stop-market orders priced off the signal bar's close",
    )  # fmt: skip
    limit_offset_bps: Annotated[Decimal, Field(ge=-1000, le=1000, max_digits=8,
                                               decimal_places=2)] = Field(
        default=Decimal(0), description="Limit orders: basis points of the close in the "
        "order's favour (a buy below the close, a sell above; negative crosses it)",
    )  # fmt: skip
    stop_offset_bps: Annotated[Decimal, Field(ge=0, le=1000, max_digits=8,
                                              decimal_places=2)] = Field(
        default=Decimal(0), description="Stop orders: basis points of the close against "
        "the order (a buy triggers at or above close x (1 + bps), a sell at or below "
        "close x (1 - bps))",
    )  # fmt: skip

    @model_validator(mode="after")
    def _one_subject(self) -> BacktestIn:
        if (self.model_id is None) == (self.strategy_id is None):
            raise ValueError("give exactly one of model_id and strategy_id")
        if self.order_type != "limit" and self.limit_offset_bps != 0:
            raise ValueError("limit_offset_bps is for order_type limit")
        if self.order_type != "stop" and self.stop_offset_bps != 0:
            raise ValueError("stop_offset_bps is for order_type stop")
        return self

    @property
    def order_offset_bps(self) -> Decimal:
        """The offset of the order type asked for (market orders have none)."""
        return self.stop_offset_bps if self.order_type == "stop" else self.limit_offset_bps


class JobOut(BaseModel):
    id: uuid.UUID
    kind: str
    status: str
    done: int
    total: int
    progress: float
    params: dict[str, Any]
    result: dict[str, Any] | None
    error: str | None
    model_id: uuid.UUID | None
    created_at: dt.datetime
    started_at: dt.datetime | None
    finished_at: dt.datetime | None
    tearsheet: str | None = Field(description="URL of the tear sheet (SVG) of a backtest")

    @classmethod
    def of(cls, row: SignalJobRow) -> JobOut:
        picture = f"/api/v1/signals/backtests/{row.id}/tearsheet.svg" if row.picture else None
        return cls(
            id=row.id, kind=row.kind, status=row.status, done=row.done, total=row.total,
            progress=row.progress, params=row.params, result=row.result, error=row.error,
            model_id=row.model_id, created_at=row.created_at, started_at=row.started_at,
            finished_at=row.finished_at, tearsheet=picture,
        )  # fmt: skip


class JobPage(Page[JobOut]):
    pass


class ModelOut(BaseModel):
    id: uuid.UUID
    name: str
    version: int
    instrument: str
    timeframe: str
    kind: str
    spec: dict[str, Any]
    features: list[str]
    metrics: dict[str, Any] = Field(description="Out of sample only")
    folds: list[dict[str, Any]]
    window_start: dt.datetime
    window_end: dt.datetime
    rows: int
    data_hash: str
    artifact_format: str
    artifact_digest: str
    artifact_bytes: int
    created_at: dt.datetime

    @classmethod
    def of(cls, row: SignalModelRow) -> ModelOut:
        return cls(
            id=row.id, name=row.name, version=row.version, instrument=row.instrument,
            timeframe=row.timeframe, kind=row.kind, spec=row.spec, features=row.features,
            metrics=row.metrics, folds=row.folds, window_start=row.window_start,
            window_end=row.window_end, rows=row.rows, data_hash=row.data_hash,
            artifact_format=row.artifact_format, artifact_digest=row.artifact_digest,
            artifact_bytes=len(row.artifact), created_at=row.created_at,
        )  # fmt: skip


class ModelPage(Page[ModelOut]):
    pass


class SignalSeries(BaseModel):
    """The overlay shape of ``/analytics/indicators``: bar times and named value columns."""

    instrument: str
    model: str
    model_id: uuid.UUID
    version: int
    timeframe: str
    t: list[int] = Field(description="Bar open times, Unix seconds")
    values: dict[str, list[float | None]] = Field(
        description="probability: P(up) per bar (null in the warm-up); signal: the position "
        "it gives (1 long, -1 short, 0 flat)"
    )


def model_kinds() -> tuple[str, ...]:
    return MODEL_KINDS
