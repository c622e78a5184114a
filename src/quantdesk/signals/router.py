"""``/api/v1/signals``: train models with walk-forward validation, backtest them on the
paper engine, and serve their signal series for chart overlays."""

from __future__ import annotations

import uuid
from typing import Annotated
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Path, Query
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from quantdesk.marketdata.bars.trading_sessions import calendar_for
from quantdesk.marketdata.domain import Timeframe, parse_key
from quantdesk.marketdata.schemas import TimeBound, end_of, start_of
from quantdesk.platform.context import Context, DbSession
from quantdesk.platform.exceptions import InvalidInput, NotFound
from quantdesk.security.policy import RequireTrader, RequireViewer
from quantdesk.signals import schemas, service
from quantdesk.signals.repository import JobRepository, ModelRepository

router = APIRouter(prefix="/api/v1/signals", tags=["signals"])

Limit = Annotated[int, Query(ge=1, le=200)]


def zone_of(key: str) -> ZoneInfo:
    """The exchange's clock, on which a plain date in ``from``/``to`` is a local day."""
    try:
        exchange, _ = parse_key(key)
    except ValueError as exc:
        raise InvalidInput(str(exc)) from None
    return calendar_for(exchange).timezone


@router.post(
    "/models",
    status_code=202,
    summary="Train a model per instrument, validated walk-forward (a background job)",
)
async def train(
    body: schemas.TrainIn, principal: RequireTrader, ctx: Context, db: DbSession
) -> schemas.JobOut:
    """Queues a training job and answers at once; follow it at `/signals/jobs/{id}`
    (status, progress, and when done each model's out-of-sample metrics).  Each
    instrument's model is validated on its own bars with purged (and, for k-fold,
    embargoed) splits; the model kept is then fitted on every bar.  docs/signals.md
    defines the features, labels, splits and metrics."""
    job = await service.submit_training(ctx, db, principal.user_id, body)
    return schemas.JobOut.of(job)


@router.get("/models", summary="Your trained models, newest first")
async def list_models(
    principal: RequireViewer,
    db: DbSession,
    name: Annotated[str | None, Query(max_length=80)] = None,
    limit: Limit = 50,
    cursor: Annotated[str | None, Query(max_length=500)] = None,
) -> schemas.ModelPage:
    rows, next_cursor = await ModelRepository(db).page(
        principal.user_id, limit=limit, cursor=cursor, name=name
    )
    return schemas.ModelPage(items=[schemas.ModelOut.of(r) for r in rows], next_cursor=next_cursor)


@router.get("/models/{model_id}", summary="One model: spec, window, data hash, OOS metrics")
async def get_model(
    model_id: uuid.UUID, principal: RequireViewer, db: DbSession
) -> schemas.ModelOut:
    row = await ModelRepository(db).get_for_owner(principal.user_id, model_id)
    if row is None:
        raise NotFound("no such model")
    return schemas.ModelOut.of(row)


@router.post(
    "/backtests",
    status_code=202,
    summary="Backtest a model's signal on the paper-trading engine (a background job)",
)
async def backtest(
    body: schemas.BacktestIn, principal: RequireTrader, ctx: Context, db: DbSession
) -> schemas.JobOut:
    """Replays the stored bars through the matching engine paper trading uses (orders,
    fill model, charges); a list of `thresholds` and of `instruments` runs as a grid of
    independent tasks.  The result holds each run's equity curve, positions, fills, trades
    and risk measures; the first run's tear sheet is at `tearsheet`."""
    job = await service.submit_backtest(ctx, db, principal.user_id, body)
    return schemas.JobOut.of(job)


@router.get(
    "/backtests/{job_id}/tearsheet.svg",
    summary="A backtest's tear sheet: equity with entries and exits, drawdown, measures",
    response_class=Response,
    responses={200: {"content": {"image/svg+xml": {}}}},
)
async def tearsheet(job_id: uuid.UUID, principal: RequireViewer, db: DbSession) -> Response:
    row = await JobRepository(db).get_for_owner(principal.user_id, job_id)
    if row is None or row.picture is None:
        raise NotFound("no tear sheet for this job (not a finished backtest)")
    return Response(row.picture, media_type="image/svg+xml")


@router.get("/jobs", summary="Your training and backtest jobs, newest first")
async def list_jobs(
    principal: RequireViewer,
    db: DbSession,
    limit: Limit = 50,
    cursor: Annotated[str | None, Query(max_length=500)] = None,
) -> schemas.JobPage:
    rows, next_cursor = await JobRepository(db).page(principal.user_id, limit=limit, cursor=cursor)
    return schemas.JobPage(items=[schemas.JobOut.of(r) for r in rows], next_cursor=next_cursor)


@router.get("/jobs/{job_id}", summary="A job's status, progress and result")
async def get_job(job_id: uuid.UUID, principal: RequireViewer, db: DbSession) -> schemas.JobOut:
    row = await JobRepository(db).get_for_owner(principal.user_id, job_id)
    if row is None:
        raise NotFound("no such job")
    return schemas.JobOut.of(row)


@router.get(
    "/{model}/{instrument}",
    summary="A model's signal over an instrument's bars, in the chart overlay shape",
)
async def signal_series(
    model: Annotated[str, Path(max_length=80, description="Model id, or name (latest version)")],
    instrument: Annotated[str, Path(max_length=80, description="EXCHANGE:SYMBOL")],
    principal: RequireViewer,
    db: DbSession,
    timeframe: Timeframe | None = None,
    from_: Annotated[TimeBound | None, Query(alias="from")] = None,
    to: Annotated[TimeBound | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=20_000)] = 5000,
) -> schemas.SignalSeries:
    """`probability` is the model's P(up) at each bar's close (null while its features warm
    up); `signal` the position it gives under the model's threshold.  Defaults to the
    model's own timeframe; another timeframe applies the model as it is."""
    zone = zone_of(instrument)
    row, key, chosen, bars, skip = await service.signal_inputs(
        db, principal.user_id, model, instrument, timeframe,
        start_of(from_, zone), end_of(to, zone), limit,
    )  # fmt: skip
    t: list[int] = []
    values: dict[str, list[float | None]] = {"probability": [], "signal": []}
    if bars is not None:
        t, values = await run_in_threadpool(service.series_values, row, bars, skip)
    return schemas.SignalSeries(
        instrument=key, model=row.name, model_id=row.id, version=row.version,
        timeframe=chosen.value, t=t, values=values,
    )  # fmt: skip
