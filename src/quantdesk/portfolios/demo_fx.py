"""Demo FX: a USD/INR daily rate for the demo market, so that a demo portfolio holding US
listings values without anyone loading rates.

Market data has no FX feed (no provider quotes currencies yet), so with ``demo_data`` on
this feature's lifespan fills ``portfolio_fx_rates`` with a deterministic series (source
``demo``): USD/INR from about 71 at the demo epoch (2020) to about 88 by late 2025, with
small daily moves, round figures near history, plausible, not quotes.  Rates loaded by an
admin (any other source) are never overwritten: demo rows are inserted only where no rate
of that day exists.  Safe with several replicas starting together (insert-or-ignore).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import math
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from decimal import Decimal

import numpy as np
from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from quantdesk.platform.context import AppContext
from quantdesk.platform.db import Database
from quantdesk.platform.startup import startup_phases
from quantdesk.platform.tasks import cancel_and_wait
from quantdesk.portfolios.models import FxRateRow

EPOCH = dt.date(2020, 1, 1)
START_LEVEL, REFERENCE_LEVEL = 71.0, 88.0
REFERENCE_DATE = dt.date(2025, 11, 3)
DAILY_VOL = 0.003
SEED = 20_200_101


def demo_usd_inr(until: dt.date) -> dict[dt.date, Decimal]:
    """The demo USD/INR rate of every day from 2020 to ``until`` (4 places)."""
    days = (until - EPOCH).days + 1
    if days <= 0:
        return {}
    drift = math.log(REFERENCE_LEVEL / START_LEVEL) / (REFERENCE_DATE - EPOCH).days
    shocks = np.random.default_rng(SEED).normal(0.0, DAILY_VOL, days)
    # A bridge: the noise is pulled back so the path passes the reference level.
    walk = np.cumsum(shocks) - shocks[0]
    anchor = (REFERENCE_DATE - EPOCH).days
    if anchor < days:
        walk -= walk[anchor] * np.minimum(np.arange(days) / anchor, 1.0)
    levels = START_LEVEL * np.exp(drift * np.arange(days) + walk)
    return {EPOCH + dt.timedelta(days=n): Decimal(f"{x:.4f}") for n, x in enumerate(levels)}


async def load_demo_rates(database: Database, until: dt.date) -> int:
    """Insert the demo rates after the last demo day stored; returns the rows offered."""
    async with database.session(immediate=True) as db:
        last = await db.scalar(
            select(func.max(FxRateRow.day)).where(
                FxRateRow.base == "USD", FxRateRow.quote == "INR", FxRateRow.source == "demo"
            )
        )
        rates = [(d, r) for d, r in demo_usd_inr(until).items() if last is None or d > last]
        if not rates:
            return 0
        insert = pg_insert if database.dialect == "postgresql" else sqlite_insert
        rows = [
            {"base": "USD", "quote": "INR", "day": d, "rate": r, "source": "demo"} for d, r in rates
        ]
        for start in range(0, len(rows), 1000):
            statement = insert(FxRateRow).values(rows[start : start + 1000])
            await db.execute(statement.on_conflict_do_nothing())
        return len(rows)


@asynccontextmanager
async def demo_fx_lifespan(ctx: AppContext) -> AsyncIterator[None]:
    """Load the demo rates beside start-up, not in its way: readiness waits for the phase
    (``/health/ready`` names it while it runs), the app itself does not."""
    if not ctx.settings.demo_data:
        yield
        return
    phases = startup_phases(ctx)
    phases.begin("demo_fx", "loading the demo USD/INR rates")

    async def load() -> None:
        try:
            count = await load_demo_rates(ctx.database, dt.datetime.now(dt.UTC).date())
        except Exception as exc:  # a portfolio needing a rate then says which is missing
            phases.end("demo_fx", error=f"{type(exc).__name__}: {exc}")
        else:
            phases.end("demo_fx", rates=count)

    task = asyncio.create_task(load(), name="demo-fx")
    try:
        yield
    finally:
        await cancel_and_wait(task)
