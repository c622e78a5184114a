"""The business gauges of the Grafana dashboard's top row (deploy/grafana/): active users and
trading accounts, counted in the database when ``/metrics`` is scraped.

Every replica answers the same counts (they come from the shared database), so the
dashboard takes their ``max``.  The counts run at most every
``platform.metrics.SCRAPE_HOOK_INTERVAL_S`` however often Prometheus scrapes.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from prometheus_client import Gauge
from sqlalchemy import func, select

from quantdesk.platform.context import AppContext
from quantdesk.platform.db import utcnow
from quantdesk.trading.models import TradingAccount
from quantdesk.users.models import User

# Signed in within the window: a day (daily active users) and 30 days (monthly).
WINDOWS = {"1d": dt.timedelta(days=1), "30d": dt.timedelta(days=30)}


class BusinessMetrics:
    def __init__(self, ctx: AppContext) -> None:
        self._ctx = ctx
        registry = ctx.metrics.registry
        self.users_active = Gauge(
            "quantdesk_users_active",
            "Enabled users who signed in within the window (1d, 30d).",
            ["window"],
            registry=registry,
        )
        self.users = Gauge(
            "quantdesk_users", "Enabled users (not disabled, not erased).", registry=registry
        )
        self.accounts = Gauge(
            "quantdesk_trading_accounts", "Paper trading accounts.", registry=registry
        )

    async def count(self) -> None:
        now = utcnow()
        enabled = (User.is_active.is_(True), User.erased_at.is_(None))
        async with self._ctx.database.session() as db:
            self.users.set(await db.scalar(select(func.count()).where(*enabled)) or 0)
            for window, span in WINDOWS.items():
                recent = User.last_login_at >= now - span
                active = await db.scalar(select(func.count()).where(*enabled, recent))
                self.users_active.labels(window=window).set(active or 0)
            accounts = await db.scalar(select(func.count()).select_from(TradingAccount))
            self.accounts.set(accounts or 0)


@asynccontextmanager
async def business_metrics_lifespan(ctx: AppContext) -> AsyncIterator[None]:
    ctx.metrics.on_scrape(BusinessMetrics(ctx).count)
    yield
