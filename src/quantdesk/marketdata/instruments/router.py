"""``/api/v1/instruments``: the instrument master (search, import, expiries, chains).

Reads need a signed-in user or an API key with the ``read`` scope (``RequireViewer``);
importing instruments needs an admin.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from fastapi import APIRouter, File, Path, Query, UploadFile

from quantdesk.marketdata.domain import Exchange, InstrumentType, OptionType
from quantdesk.marketdata.instruments import corporate_actions
from quantdesk.marketdata.instruments.importers import ImportFormat, import_instruments
from quantdesk.marketdata.instruments.service import InstrumentFilter, InstrumentService
from quantdesk.marketdata.schemas import (
    ChainStrike,
    CorporateActionIn,
    CorporateActionList,
    CorporateActionOut,
    ExpiryList,
    ImportReportOut,
    InstrumentOut,
    InstrumentPage,
    KeyPath,
    OptionChain,
)
from quantdesk.platform.context import DbSession
from quantdesk.platform.db import utcnow
from quantdesk.platform.exceptions import InvalidInput, NotFound
from quantdesk.security.policy import RequireAdmin, RequireViewer

router = APIRouter(prefix="/api/v1/instruments", tags=["instruments"])
Underlying = Annotated[
    str, Path(description="Underlying symbol as on its derivatives, e.g. NIFTY", max_length=64)
]
_IMPORT_MAX_BYTES = 50 * 1024 * 1024


@router.get("", summary="Search instruments (cursor pagination)")
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


@router.post(
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


@router.get("/{underlying}/expiries", summary="Listed expiries of an underlying")
async def list_expiries(
    underlying: Underlying,
    _viewer: RequireViewer,
    db: DbSession,
    since: Annotated[dt.date | None, Query(description="Only expiries on or after")] = None,
    exchange: Exchange | None = None,
) -> ExpiryList:
    dates = await InstrumentService(db).expiries(underlying, since=since, exchange=exchange)
    return ExpiryList(underlying=underlying.upper(), expiries=dates)


@router.get(
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


@router.get("/{key}/corporate-actions", summary="An instrument's splits, bonuses and dividends")
async def list_corporate_actions(
    key: KeyPath, _viewer: RequireViewer, db: DbSession
) -> CorporateActionList:
    rows = await corporate_actions.of_instrument(db, key)
    return CorporateActionList(items=[CorporateActionOut.of(row) for row in rows])


@router.post(
    "/{key}/corporate-actions",
    status_code=201,
    summary="Record a split, bonus or dividend before its ex-date (admin)",
    description="The matcher applies it to every paper account holding the instrument as "
    'the ex-date begins (docs/trading.md, "Corporate actions").',
)
async def record_corporate_action(
    key: KeyPath, body: CorporateActionIn, _admin: RequireAdmin, db: DbSession
) -> CorporateActionOut:
    return CorporateActionOut.of(await corporate_actions.record(db, key, body, utcnow()))


@router.get("/{key}", summary="One instrument by key")
async def get_instrument(key: KeyPath, _viewer: RequireViewer, db: DbSession) -> InstrumentOut:
    return InstrumentOut.of(await InstrumentService(db).get(key))
