"""The record of the last complete demo load, so ``make run`` can skip ``demo load`` at once.

Finding out that the data are already there the honest way (build the demo market, compare
every instrument's newest stored bar) cost 4 s on every ``make run``.  A complete load writes
``var/demo-loaded.json``: what was loaded (database, seed, anchor, sizes) and what the
instrument master looked like afterwards (row count and highest id).  The next run with the
same request skips the load when one query finds the master unchanged; a database that was
reset, replaced or had instruments added since does not match, and is loaded as before.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from datetime import date
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.engine import make_url

from quantdesk.marketdata.models import InstrumentRow
from quantdesk.platform.context import AppContext

MARKER_FILE = "demo-loaded.json"


@dataclass(frozen=True, slots=True)
class DemoRequest:
    """What a ``demo load`` asked for; a marker matches only the same request."""

    database: str
    seed: int
    anchor: str
    daily_years: int
    minute_sessions: int
    options: bool


def demo_request(
    ctx: AppContext,
    *,
    seed: int,
    anchor: date,
    daily_years: int,
    minute_sessions: int,
    options: bool,
) -> DemoRequest:
    # The URL without its password: the file sits in var/, which backups copy.
    database = make_url(ctx.settings.database_url).render_as_string(hide_password=True)
    return DemoRequest(database, seed, anchor.isoformat(), daily_years, minute_sessions, options)


def _path(ctx: AppContext) -> Path:
    return ctx.settings.var_dir / MARKER_FILE


async def _master_state(ctx: AppContext) -> list[int]:
    async with ctx.database.session() as session:
        count, highest = (
            await session.execute(select(func.count(InstrumentRow.id), func.max(InstrumentRow.id)))
        ).one()
    return [int(count), int(highest or 0)]


async def already_loaded(ctx: AppContext, request: DemoRequest) -> bool:
    """True when the last complete load was this request and the master is as it left it."""
    try:
        recorded = json.loads(_path(ctx).read_text())
    except (OSError, ValueError):
        return False
    if not isinstance(recorded, dict) or recorded.get("request") != asdict(request):
        return False
    return bool(recorded.get("master") == await _master_state(ctx))


async def record_load(ctx: AppContext, request: DemoRequest) -> None:
    path = _path(ctx)
    path.parent.mkdir(parents=True, exist_ok=True)
    document = {"request": asdict(request), "master": await _master_state(ctx)}
    temporary = path.with_suffix(".tmp")
    temporary.write_text(json.dumps(document, indent=2) + "\n")
    temporary.replace(path)  # atomic: a load killed half-way leaves no marker
