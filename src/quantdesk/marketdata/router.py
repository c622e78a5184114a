"""``/api/v1/instruments`` and ``/api/v1/market``: the instrument master, bars and quotes.

Reads need a signed-in user or an API key with the ``read`` scope (``RequireViewer``);
importing instruments needs an admin.
"""

from __future__ import annotations

import datetime as dt
from enum import StrEnum
from typing import Annotated

from fastapi import APIRouter, File, Path, Query, UploadFile
from fastapi.responses import Response

from quantdesk.marketdata.bars import MAX_LIMIT, BarStore
from quantdesk.marketdata.domain import Exchange, InstrumentType, OptionType, Timeframe
from quantdesk.marketdata.importers import ImportFormat, import_instruments
from quantdesk.marketdata.instruments import InstrumentFilter, InstrumentService
from quantdesk.marketdata.quotes import QuoteService, canonical_key
from quantdesk.marketdata.schemas import (
    BarOut,
    BarsColumnar,
    BarsRows,
    ChainStrike,
    ExpiryList,
    ImportReportOut,
    InstrumentOut,
    InstrumentPage,
    OptionChain,
    QuoteOut,
    QuotesOut,
)
from quantdesk.platform.context import Context, DbSession
from quantdesk.platform.exceptions import InvalidInput, NotFound
from quantdesk.platform.responses import FastJSONResponse
from quantdesk.security.policy import RequireAdmin, RequireViewer

instruments_router = APIRouter(prefix="/api/v1/instruments", tags=["instruments"])
market_router = APIRouter(prefix="/api/v1/market", tags=["market data"])

KeyPath = Annotated[
    str,
    Path(
        description="Instrument key EXCHANGE:SYMBOL, e.g. NSE:RELIANCE or NSE:NIFTY%2050",
        max_length=80,
    ),
]
Underlying = Annotated[
    str, Path(description="Underlying symbol as on its derivatives, e.g. NIFTY", max_length=64)
]
MAX_QUOTE_KEYS = 200
_IMPORT_MAX_BYTES = 50 * 1024 * 1024


@instruments_router.get("", summary="Search instruments (cursor pagination)")
async def search_instruments(
    _viewer: RequireViewer,
    db: DbSession,
    q: Annotated[
        str | None,
        Query(
            max_length=64,
            description="Symbol prefix or part of the name; EXCHANGE:PREFIX narrows to one "
            "exchange.",
        ),
    ] = None,
    exchange: Exchange | None = None,
    type: InstrumentType | None = None,
    underlying: Annotated[str | None, Query(max_length=64)] = None,
    expiry: dt.date | None = None,
    active: Annotated[
        bool, Query(description="true (default): listed instruments; false: delisted ones")
    ] = True,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: Annotated[str | None, Query(max_length=512)] = None,
) -> InstrumentPage:
    criteria = InstrumentFilter(q, exchange, type, underlying, expiry, active)
    page = await InstrumentService(db).search(criteria, limit=limit, cursor=cursor)
    return InstrumentPage(
        items=[InstrumentOut.of(i) for i in page.items], next_cursor=page.next_cursor
    )


@instruments_router.post(
    "/import",
    summary="Import a Kite instruments dump or a generic instruments CSV (admin)",
    description="The whole file is validated first; a bad row rejects the file (422 naming "
    "the line and reason) and nothing is written.  Re-importing updates, never duplicates.",
)
async def import_instruments_file(
    _admin: RequireAdmin,
    db: DbSession,
    file: Annotated[UploadFile, File(description="CSV, UTF-8")],
    format: ImportFormat = ImportFormat.AUTO,
) -> ImportReportOut:
    raw = await file.read(_IMPORT_MAX_BYTES + 1)
    if len(raw) > _IMPORT_MAX_BYTES:
        raise InvalidInput("the file is larger than 50 MiB")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise InvalidInput("the file is not UTF-8 text") from None
    return ImportReportOut.of(await import_instruments(db, text, format))


@instruments_router.get("/{underlying}/expiries", summary="Listed expiries of an underlying")
async def list_expiries(
    underlying: Underlying,
    _viewer: RequireViewer,
    db: DbSession,
    since: Annotated[dt.date | None, Query(description="Only expiries on or after")] = None,
    exchange: Exchange | None = None,
) -> ExpiryList:
    dates = await InstrumentService(db).expiries(underlying, since=since, exchange=exchange)
    return ExpiryList(underlying=underlying.upper(), expiries=dates)


@instruments_router.get(
    "/{underlying}/chain",
    summary="Option chain listing: calls and puts by strike for one expiry",
    description="Without ``expiry`` the nearest listed expiry from today (UTC) on is used.",
)
async def option_chain(
    underlying: Underlying,
    _viewer: RequireViewer,
    db: DbSession,
    expiry: dt.date | None = None,
    exchange: Exchange | None = None,
) -> OptionChain:
    service = InstrumentService(db)
    if expiry is None:
        upcoming = await service.expiries(underlying, since=dt.datetime.now(dt.UTC).date())
        if not upcoming:
            raise NotFound(f"no listed expiries for {underlying.upper()} from today on")
        expiry = upcoming[0]
    contracts = await service.chain(underlying, expiry, exchange)
    if not contracts:
        raise NotFound(f"no options on {underlying.upper()} expiring {expiry}")
    strikes: dict[str, ChainStrike] = {}
    for contract in contracts:
        assert contract.strike is not None  # noqa: S101 - options always have a strike
        row = strikes.setdefault(str(contract.strike), ChainStrike(strike=contract.strike))
        if contract.option_type is OptionType.CALL:
            row.call = InstrumentOut.of(contract)
        else:
            row.put = InstrumentOut.of(contract)
    return OptionChain(underlying=underlying.upper(), expiry=expiry, strikes=list(strikes.values()))


@instruments_router.get("/{key}", summary="One instrument by key")
async def get_instrument(key: KeyPath, _viewer: RequireViewer, db: DbSession) -> InstrumentOut:
    return InstrumentOut.of(await InstrumentService(db).get(key))


class BarShape(StrEnum):
    COLUMNAR = "columnar"
    ROWS = "rows"


@market_router.get(
    "/bars/{key}",
    summary="OHLCV + open interest bars",
    description=(
        "Bars opening in ``[from, to)``.  With ``from``, the earliest ``limit`` bars from "
        "it; without, the latest ``limit`` bars before ``to``.  1m and 1d are stored; 5m, "
        "15m, 30m and 1h are built from 1m on the exchange's sessions (NSE bars start at "
        "09:15 IST) and 1w from 1d.  ``shape=columnar`` (default) returns one array per "
        "field (`BarsColumnar`), ``shape=rows`` one object per bar (`BarsRows`).  Prices, "
        "volume and OI are decimal strings; times need a zone (``Z`` or an offset) or are "
        "Unix seconds."
    ),
    response_model=None,
    responses={200: {"model": BarsColumnar | BarsRows}},
)
async def get_bars(
    key: KeyPath,
    _viewer: RequireViewer,
    db: DbSession,
    timeframe: Timeframe = Timeframe.D1,
    from_: Annotated[dt.datetime | None, Query(alias="from")] = None,
    to: dt.datetime | None = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 5000,
    shape: BarShape = BarShape.COLUMNAR,
) -> Response:
    series = await BarStore(db).series(key, timeframe, start=from_, end=to, limit=limit)
    if shape is BarShape.COLUMNAR:
        return Response(series.columnar_json(), media_type="application/json")
    rows = BarsRows(
        key=series.key,
        timeframe=series.timeframe.value,
        bars=[BarOut.model_validate(row) for row in series.rows()],
    )
    return FastJSONResponse(rows.model_dump(mode="json"))


@market_router.get("/quotes", summary="Latest quotes of up to 200 instruments")
async def get_quotes(
    _viewer: RequireViewer,
    ctx: Context,
    keys: Annotated[
        list[str],
        Query(
            description="Instrument keys, comma-separated and/or repeated: "
            "keys=NSE:RELIANCE,NSE:TCS",
            max_length=MAX_QUOTE_KEYS,
        ),
    ],
) -> QuotesOut:
    wanted = [k.strip() for item in keys for k in item.split(",") if k.strip()]
    if not wanted:
        raise InvalidInput("give at least one instrument key", field="keys")
    if len(wanted) > MAX_QUOTE_KEYS:
        raise InvalidInput(f"at most {MAX_QUOTE_KEYS} keys per request", field="keys")
    try:
        canonical = list(dict.fromkeys(canonical_key(k) for k in wanted))
    except ValueError as exc:
        raise InvalidInput(str(exc), field="keys") from None
    found = await QuoteService(ctx.cache, ctx.bus).get_many(canonical)
    return QuotesOut(
        quotes=[QuoteOut.of(found[k]) for k in canonical if k in found],
        missing=[k for k in canonical if k not in found],
    )
