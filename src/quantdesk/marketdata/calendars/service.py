"""Official calendars in the database: import an exchange's list, install the stored lists.

The only part of ``calendars`` that does I/O. An import is validated whole (the pure parser
in :mod:`.official`) and replaces the years it covers in one transaction, with a security
event naming what changed; every process installs the stored lists at start-up and then
re-reads them every ``REFRESH_INTERVAL_S``, so an import from the CLI reaches running
servers without a restart.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from quantdesk.marketdata.calendars.official import (
    OfficialSession,
    OfficialYear,
    install_official_years,
    parse_official_list,
)
from quantdesk.marketdata.models import CalendarDayRow
from quantdesk.platform.context import AppContext
from quantdesk.platform.exceptions import InvalidInput
from quantdesk.platform.logging import get_logger
from quantdesk.platform.tasks import cancel_and_wait
from quantdesk.security.audit import SecurityEventType, record_security_event

log = get_logger("quantdesk.calendars")

REFRESH_INTERVAL_S = 60.0
MAX_FILE_BYTES = 256 * 1024


@dataclass(frozen=True, slots=True)
class ImportedYear:
    exchange: str
    year: int
    holidays: int
    sessions: int
    replaced: int


def read_list_file(path: Path) -> str:
    """The file's text, refusing what cannot be a holiday list (huge or not UTF-8)."""
    if path.stat().st_size > MAX_FILE_BYTES:
        raise InvalidInput(f"{path.name} is larger than {MAX_FILE_BYTES // 1024} KiB")
    try:
        return path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError:
        raise InvalidInput(f"{path.name} is not UTF-8 text") from None


def _rows(year: OfficialYear) -> list[CalendarDayRow]:
    holidays = [
        CalendarDayRow(
            exchange=year.exchange,
            year=year.year,
            date=day,
            kind="holiday",
            name=name,
            source=year.source,
        )
        for day, name in year.holidays.items()
    ]
    sessions = [
        CalendarDayRow(
            exchange=year.exchange,
            year=year.year,
            date=s.date,
            kind=s.kind,
            name=s.name,
            opens=s.opens,
            closes=s.closes,
            source=year.source,
        )
        for s in year.sessions
    ]
    return holidays + sessions


async def import_official_list(
    ctx: AppContext, db: AsyncSession, exchange: str, text: str, source: str
) -> list[ImportedYear]:
    """Store the official list(s) in ``text``, replacing the years they cover; audited."""
    years = parse_official_list(exchange, text, source[:200])
    report: list[ImportedYear] = []
    for year in years:
        old = await db.scalars(
            select(CalendarDayRow.id).where(
                CalendarDayRow.exchange == year.exchange, CalendarDayRow.year == year.year
            )
        )
        replaced = len(old.all())
        await db.execute(
            delete(CalendarDayRow).where(
                CalendarDayRow.exchange == year.exchange, CalendarDayRow.year == year.year
            )
        )
        db.add_all(_rows(year))
        report.append(
            ImportedYear(year.exchange, year.year, len(year.holidays), len(year.sessions), replaced)
        )
        await record_security_event(
            ctx,
            SecurityEventType.CALENDAR_IMPORTED,
            details={
                "exchange": year.exchange,
                "year": year.year,
                "holidays": len(year.holidays),
                "sessions": len(year.sessions),
                "replaced_rows": replaced,
                "source": year.source,
            },
            session=db,
        )
    return report


async def stored_official_years(db: AsyncSession) -> list[OfficialYear]:
    rows = (await db.scalars(select(CalendarDayRow).order_by(CalendarDayRow.id))).all()
    grouped: dict[tuple[str, int], list[CalendarDayRow]] = {}
    for row in rows:
        grouped.setdefault((row.exchange, row.year), []).append(row)
    years: list[OfficialYear] = []
    for (exchange, year), found in sorted(grouped.items()):
        holidays = {
            r.date: r.name for r in sorted(found, key=lambda r: r.date) if r.kind == "holiday"
        }
        sessions = tuple(
            OfficialSession(
                r.date, r.opens, r.closes, "special" if r.kind == "special" else "regular", r.name
            )
            for r in sorted(found, key=lambda r: (r.date, r.opens or dt.time()))
            if r.kind != "holiday" and r.opens is not None and r.closes is not None
        )
        years.append(OfficialYear(exchange, year, holidays, sessions, found[0].source))
    return years


async def install_stored_calendars(ctx: AppContext) -> bool:
    """Install the database's official lists in this process; ``True`` if they changed."""
    async with ctx.database.session() as db:
        years = await stored_official_years(db)
    changed = install_official_years(years)
    if changed:
        log.info(
            "official_calendars_installed",
            years=[f"{y.exchange} {y.year}" for y in years],
        )
    return changed


async def keep_calendars_current(ctx: AppContext, interval_s: float = REFRESH_INTERVAL_S) -> None:
    """Re-read the official lists every ``interval_s`` (an import from another process)."""
    while True:
        await asyncio.sleep(interval_s)
        try:
            await install_stored_calendars(ctx)
        except Exception as exc:  # a database outage must not end the refresher
            log.warning("official_calendars_refresh_failed", error=type(exc).__name__)


@asynccontextmanager
async def official_calendars_lifespan(ctx: AppContext) -> AsyncIterator[None]:
    """Install the stored lists now (a failure is logged, not fatal), then keep them current."""
    try:
        await install_stored_calendars(ctx)
    except Exception as exc:  # an unmigrated or unreachable database: readiness reports it
        log.warning("official_calendars_unavailable", error=type(exc).__name__)
    refresher = asyncio.create_task(keep_calendars_current(ctx), name="official-calendars")
    try:
        yield
    finally:
        await cancel_and_wait(refresher)
