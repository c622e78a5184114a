"""Corporate actions of the instrument master: recorded by an admin before their ex-date,
listed per instrument.  Applying them to paper accounts is ``trading.lifecycle``'s."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from quantdesk.marketdata.calendars.sessions import get_calendar
from quantdesk.marketdata.domain import make_key
from quantdesk.marketdata.instruments.service import InstrumentService
from quantdesk.marketdata.models import CorporateActionRow
from quantdesk.marketdata.schemas import CorporateActionIn
from quantdesk.platform.exceptions import Conflict, InvalidInput

HOLDABLE = ("equity", "etf")


async def record(
    db: AsyncSession, key: str, body: CorporateActionIn, now: dt.datetime
) -> CorporateActionRow:
    instrument = await InstrumentService(db).get_row(key)  # 404 for an unknown key
    canonical = make_key(instrument.exchange, instrument.symbol)
    if instrument.type not in HOLDABLE:
        raise InvalidInput(f"{canonical} is an {instrument.type}: corporate actions apply to "
                           "equities and ETFs", field="key")  # fmt: skip
    today = get_calendar(instrument.exchange).local_date(now)
    if body.ex_date <= today:
        raise InvalidInput(
            f"ex_date {body.ex_date} must be after today ({today}): the holdings at the "
            "start of the ex-date are the entitled ones",
            field="ex_date",
        )
    row = CorporateActionRow(instrument=canonical, **body.model_dump(), created_at=now)
    db.add(row)
    try:
        await db.flush()
    except IntegrityError:
        raise Conflict(
            f"{canonical} already has a {body.kind} with ex-date {body.ex_date}"
        ) from None
    return row


async def of_instrument(db: AsyncSession, key: str) -> Sequence[CorporateActionRow]:
    instrument = await InstrumentService(db).get_row(key)
    query = (
        select(CorporateActionRow)
        .where(CorporateActionRow.instrument == make_key(instrument.exchange, instrument.symbol))
        .order_by(CorporateActionRow.ex_date, CorporateActionRow.id)
    )
    return (await db.execute(query)).scalars().all()
