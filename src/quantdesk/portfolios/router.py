"""``/api/v1/portfolios``: portfolios, accounts, transactions, imports and exports,
holdings, gains, performance, the daily series, allocation, benchmarks, charts, FX rates.

Thin: each endpoint authorises, parses and calls one use case.  Reads need the viewer role;
writes need trader (FX rates: admin).  Creating a portfolio or a transaction accepts
``Idempotency-Key``.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Annotated, Any

from fastapi import APIRouter, File, Query, Response, UploadFile
from starlette.concurrency import run_in_threadpool

from quantdesk.platform.context import Context, DbSession
from quantdesk.platform.exceptions import InvalidInput
from quantdesk.platform.idempotency import Idempotent
from quantdesk.portfolios import schemas
from quantdesk.portfolios.accounting.types import TxnType
from quantdesk.portfolios.charts import allocation_svg, value_svg
from quantdesk.portfolios.importers import TransactionFileFormat, parse
from quantdesk.portfolios.repository import FxRates
from quantdesk.portfolios.service import PortfolioService, fetch_fx_rates
from quantdesk.portfolios.valuation import PortfolioAnalytics
from quantdesk.security.policy import RequireAdmin, RequireTrader, RequireViewer

router = APIRouter(prefix="/api/v1/portfolios", tags=["portfolios"])

PageSize = Annotated[int, Query(ge=1, le=500)]
Cursor = Annotated[str | None, Query(max_length=512)]
From = Annotated[dt.date | None, Query(alias="from", description="First day (inclusive)")]
To = Annotated[dt.date | None, Query(description="Last day (inclusive); default today")]
Period = Annotated[
    str | None,
    Query(description="today, wtd, mtd, ytd, 1y, 3y, 5y or max (instead of from/to)"),
]
IMPORT_MAX_BYTES = 50 * 1024 * 1024
SVG: dict[int | str, dict[str, Any]] = {200: {"content": {"image/svg+xml": {}}}}


# --- FX rates (shared market data) ------------------------------------------------------
@router.post("/fx-rates", summary="Load daily FX rates (admin)")
async def load_fx_rates(
    body: schemas.FxRatesIn, _admin: RequireAdmin, db: DbSession
) -> dict[str, int]:
    rows = [(r.base, r.quote, r.date, r.rate) for r in body.rates if r.base != r.quote]
    return {"stored": await FxRates(db).upsert(rows)}


@router.post("/fx-rates/fetch", summary="Fetch a pair's daily rates from a provider (admin)")
async def fetch_provider_fx_rates(
    body: schemas.FxFetchIn, _admin: RequireAdmin, ctx: Context, db: DbSession
) -> schemas.FxFetchOut:
    """Daily closes of `base`/`quote` over `from`..`to` from `provider` (one with an FX feed:
    `alphavantage`, `polygon`), stored with the provider as their source.  A day an admin
    posted a rate for keeps it (`kept`); a provider's or the demo's rate is replaced."""
    return await fetch_fx_rates(ctx, db, body)


@router.get("/fx-rates", summary="Stored FX rates of a pair, newest first")
async def list_fx_rates(
    _viewer: RequireViewer,
    db: DbSession,
    base: Annotated[str, Query(pattern="^(INR|USD)$")] = "USD",
    quote: Annotated[str, Query(pattern="^(INR|USD)$")] = "INR",
    limit: PageSize = 100,
) -> list[schemas.FxRateOut]:
    return [
        schemas.FxRateOut(base=r.base, quote=r.quote, date=r.day, rate=r.rate)
        for r in await FxRates(db).listing(base, quote, limit)
    ]


# --- portfolios and accounts --------------------------------------------------------------
@router.post("", status_code=201, response_model=schemas.PortfolioOut, summary="Create a portfolio")
async def create_portfolio(
    body: schemas.PortfolioIn,
    principal: RequireTrader,
    ctx: Context,
    db: DbSession,
    idempotency: Idempotent,
) -> Response:
    return await idempotency(
        principal.user_id, lambda: PortfolioService(ctx, db).create(principal.user_id, body)
    )


@router.get("", summary="Your portfolios, oldest first")
async def list_portfolios(
    principal: RequireViewer,
    ctx: Context,
    db: DbSession,
    limit: PageSize = 50,
    cursor: Cursor = None,
) -> schemas.PortfolioPage:
    return await PortfolioService(ctx, db).page(principal.user_id, limit=limit, cursor=cursor)


@router.get("/{portfolio_id}", summary="A portfolio and its accounts")
async def get_portfolio(
    portfolio_id: uuid.UUID, principal: RequireViewer, ctx: Context, db: DbSession
) -> schemas.PortfolioOut:
    return await PortfolioService(ctx, db).get(principal.user_id, portfolio_id)


@router.patch("/{portfolio_id}", summary="Rename, change the lot method (409 when stale)")
async def update_portfolio(
    portfolio_id: uuid.UUID,
    body: schemas.PortfolioPatch,
    principal: RequireTrader,
    ctx: Context,
    db: DbSession,
) -> schemas.PortfolioOut:
    return await PortfolioService(ctx, db).update(principal.user_id, portfolio_id, body)


@router.delete("/{portfolio_id}", status_code=204, summary="Delete a portfolio and its data")
async def delete_portfolio(
    portfolio_id: uuid.UUID, principal: RequireTrader, ctx: Context, db: DbSession
) -> Response:
    await PortfolioService(ctx, db).delete(principal.user_id, portfolio_id)
    return Response(status_code=204)


@router.post(
    "/{portfolio_id}/accounts",
    status_code=201,
    summary="Add an account (a paper account takes its trading account's fills)",
)
async def add_account(
    portfolio_id: uuid.UUID,
    body: schemas.PortfolioAccountIn,
    principal: RequireTrader,
    ctx: Context,
    db: DbSession,
) -> schemas.PortfolioAccountOut:
    return await PortfolioService(ctx, db).add_account(principal.user_id, portfolio_id, body)


# --- transactions ---------------------------------------------------------------------------
@router.post(
    "/{portfolio_id}/transactions",
    status_code=201,
    response_model=schemas.TransactionOut,
    summary="Record a transaction (checked against the lots; idempotent)",
)
async def add_transaction(
    portfolio_id: uuid.UUID,
    body: schemas.TransactionIn,
    principal: RequireTrader,
    ctx: Context,
    db: DbSession,
    idempotency: Idempotent,
) -> Response:
    return await idempotency(
        principal.user_id,
        lambda: PortfolioService(ctx, db).add_transaction(principal.user_id, portfolio_id, body),
    )


@router.get("/{portfolio_id}/transactions", summary="Transactions, newest first")
async def list_transactions(
    portfolio_id: uuid.UUID,
    principal: RequireViewer,
    ctx: Context,
    db: DbSession,
    limit: PageSize = 100,
    cursor: Cursor = None,
    type: Annotated[list[TxnType] | None, Query()] = None,
    instrument: Annotated[str | None, Query(max_length=80)] = None,
    account_id: uuid.UUID | None = None,
    from_: From = None,
    to: To = None,
) -> schemas.TransactionPage:
    return await PortfolioService(ctx, db).transactions(
        principal.user_id,
        portfolio_id,
        limit=limit,
        cursor=cursor,
        types=[t.value for t in type] if type else None,
        instrument=instrument.upper() if instrument else None,
        account_id=account_id,
        since=from_,
        until=to,
    )


@router.get("/{portfolio_id}/transactions/{transaction_id}", summary="One transaction")
async def get_transaction(
    portfolio_id: uuid.UUID,
    transaction_id: uuid.UUID,
    principal: RequireViewer,
    ctx: Context,
    db: DbSession,
) -> schemas.TransactionOut:
    return await PortfolioService(ctx, db).transaction(
        principal.user_id, portfolio_id, transaction_id
    )


@router.patch(
    "/{portfolio_id}/transactions/{transaction_id}",
    summary="Edit a transaction (its version; 409 when stale, 422 when the lots break)",
)
async def update_transaction(
    portfolio_id: uuid.UUID,
    transaction_id: uuid.UUID,
    body: schemas.TransactionPatch,
    principal: RequireTrader,
    ctx: Context,
    db: DbSession,
) -> schemas.TransactionOut:
    return await PortfolioService(ctx, db).update_transaction(
        principal.user_id, portfolio_id, transaction_id, body
    )


@router.delete(
    "/{portfolio_id}/transactions/{transaction_id}",
    status_code=204,
    summary="Delete a transaction (422 when a later one depends on it)",
)
async def delete_transaction(
    portfolio_id: uuid.UUID,
    transaction_id: uuid.UUID,
    principal: RequireTrader,
    ctx: Context,
    db: DbSession,
    version: Annotated[int | None, Query(description="409 when stale")] = None,
) -> Response:
    await PortfolioService(ctx, db).delete_transaction(
        principal.user_id, portfolio_id, transaction_id, version
    )
    return Response(status_code=204)


@router.post(
    "/{portfolio_id}/imports",
    # Named: FastAPI names the multipart body after the operation id, and the default one
    # (from the path) has the double underscores a generated client chokes on.
    operation_id="import_portfolio_transactions",
    summary="Import a file: generic CSV, Zerodha tradebook, Ghostfolio export",
    description="All or nothing: every line is checked first, problems come back as one "
    "422 with their line numbers.  Transactions already stored are skipped and listed. "
    "``dry_run=true`` shows what would be created and writes nothing.",
)
async def import_file(
    portfolio_id: uuid.UUID,
    principal: RequireTrader,
    ctx: Context,
    db: DbSession,
    file: Annotated[UploadFile, File(description="UTF-8 text: CSV or JSON")],
    format: TransactionFileFormat = TransactionFileFormat.CSV,
    dry_run: bool = False,
    account_id: uuid.UUID | None = None,
) -> schemas.ImportOut:
    raw = await file.read(IMPORT_MAX_BYTES + 1)
    if len(raw) > IMPORT_MAX_BYTES:
        raise InvalidInput("the file is larger than 50 MiB", field="file")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise InvalidInput("the file is not UTF-8 text", field="file") from None
    parsed = await run_in_threadpool(parse, text, format)
    return await PortfolioService(ctx, db).import_rows(
        principal.user_id,
        portfolio_id,
        parsed,
        format.value,
        dry_run=dry_run,
        account_id=account_id,
    )


@router.get(
    "/{portfolio_id}/export",
    summary="Every transaction as the generic CSV (imports back) or JSON",
    responses={200: {"content": {"text/csv": {}, "application/json": {}}}},
)
async def export_transactions(
    portfolio_id: uuid.UUID,
    principal: RequireViewer,
    ctx: Context,
    db: DbSession,
    format: Annotated[str, Query(pattern="^(csv|json)$")] = "csv",
) -> Response:
    body, media = await PortfolioService(ctx, db).export(principal.user_id, portfolio_id, format)
    return Response(body, media_type=media)


# --- analysis ---------------------------------------------------------------------------------
@router.get("/{portfolio_id}/holdings", summary="Holdings at the latest prices")
async def holdings(
    portfolio_id: uuid.UUID,
    principal: RequireViewer,
    ctx: Context,
    db: DbSession,
    date: Annotated[dt.date | None, Query(description="As of this day")] = None,
    lots: Annotated[bool, Query(description="Include each holding's open lots")] = False,
) -> schemas.HoldingsOut:
    return await PortfolioAnalytics(ctx, db).holdings(principal.user_id, portfolio_id, date, lots)


@router.get(
    "/{portfolio_id}/gains",
    summary="Realised gains per sale, by holding period and financial year (JSON or CSV)",
    responses={200: {"content": {"application/json": {}, "text/csv": {}}}},
    response_model=schemas.GainsOut,
)
async def gains(
    portfolio_id: uuid.UUID,
    principal: RequireViewer,
    ctx: Context,
    db: DbSession,
    from_: From = None,
    to: To = None,
    format: Annotated[str, Query(pattern="^(json|csv)$")] = "json",
) -> Response:
    report = await PortfolioAnalytics(ctx, db).gains(principal.user_id, portfolio_id, from_, to)
    if format == "csv":
        from quantdesk.portfolios.charts import gains_csv

        return Response(gains_csv(report), media_type="text/csv")
    return Response(report.model_dump_json(), media_type="application/json")


@router.get("/{portfolio_id}/performance", summary="TWR, XIRR, ROAI and Modified Dietz")
async def performance(
    portfolio_id: uuid.UUID,
    principal: RequireViewer,
    ctx: Context,
    db: DbSession,
    period: Period = None,
    from_: From = None,
    to: To = None,
) -> schemas.PerformanceOut:
    return await PortfolioAnalytics(ctx, db).performance(
        principal.user_id, portfolio_id, period, from_, to
    )


@router.get(
    "/{portfolio_id}/performance/periods",
    summary="TWR, XIRR, ROAI and Modified Dietz for today, WTD, MTD, YTD, 1Y, 3Y, 5Y and max",
)
async def performance_periods(
    portfolio_id: uuid.UUID,
    principal: RequireViewer,
    ctx: Context,
    db: DbSession,
    to: To = None,
) -> schemas.PeriodsOut:
    return await PortfolioAnalytics(ctx, db).periods(principal.user_id, portfolio_id, to)


@router.get(
    "/{portfolio_id}/series",
    summary="Daily market value, net contributions, cumulative TWR and drawdown",
)
async def series(
    portfolio_id: uuid.UUID,
    principal: RequireViewer,
    ctx: Context,
    db: DbSession,
    from_: From = None,
    to: To = None,
) -> schemas.SeriesOut:
    return await PortfolioAnalytics(ctx, db).series(principal.user_id, portfolio_id, from_, to)


@router.get("/{portfolio_id}/allocation", summary="Allocation by class, type, exchange, ...")
async def allocation(
    portfolio_id: uuid.UUID,
    principal: RequireViewer,
    ctx: Context,
    db: DbSession,
    date: Annotated[dt.date | None, Query(description="As of this day")] = None,
) -> schemas.PortfolioAllocationOut:
    return await PortfolioAnalytics(ctx, db).allocation(principal.user_id, portfolio_id, date)


@router.get("/{portfolio_id}/benchmark", summary="Against a benchmark over the same flows")
async def benchmark(
    portfolio_id: uuid.UUID,
    principal: RequireViewer,
    ctx: Context,
    db: DbSession,
    instrument: Annotated[str, Query(min_length=3, max_length=80, examples=["NSE:NIFTY 50"])],
    period: Period = None,
    from_: From = None,
    to: To = None,
) -> schemas.BenchmarkOut:
    return await PortfolioAnalytics(ctx, db).benchmark(
        principal.user_id, portfolio_id, instrument, period, from_, to
    )


@router.get("/{portfolio_id}/chart.svg", summary="Value and TWR chart (SVG)", responses=SVG)
async def value_chart(
    portfolio_id: uuid.UUID,
    principal: RequireViewer,
    ctx: Context,
    db: DbSession,
    from_: From = None,
    to: To = None,
) -> Response:
    data = await PortfolioAnalytics(ctx, db).series(principal.user_id, portfolio_id, from_, to)
    return Response(await run_in_threadpool(value_svg, data), media_type="image/svg+xml")


@router.get(
    "/{portfolio_id}/allocation.svg",
    summary="Allocation chart by asset class (SVG)",
    responses=SVG,
)
async def allocation_chart(
    portfolio_id: uuid.UUID,
    principal: RequireViewer,
    ctx: Context,
    db: DbSession,
    by: Annotated[
        str,
        Query(pattern="^(asset_class|instrument_type|sector|exchange|currency_exposure|account)$"),
    ] = "asset_class",
) -> Response:
    data = await PortfolioAnalytics(ctx, db).allocation(principal.user_id, portfolio_id, None)
    return Response(allocation_svg(data, by), media_type="image/svg+xml")
