"""The daily instruments import: its own task (the ticker may be off), after 08:30 IST, once
a day, tried again 30 minutes after a failure; the schedule read from an injected clock."""

from __future__ import annotations

import datetime as dt

import pytest
from fastapi import FastAPI

from quantdesk.app import create_app
from quantdesk.marketdata.instruments.service import InstrumentService
from quantdesk.marketdata.providers.kite.auth import IST
from quantdesk.marketdata.providers.kite.service import (
    KITE_FEED,
    KITE_INSTRUMENTS,
    KiteInstrumentsDaily,
)
from quantdesk.settings import Settings
from tests.marketdata.providers.kite.conftest import log_in_today
from tests.marketdata.providers.kite.fake_kite import (
    INSTRUMENTS_CSV,
    HttpFake,
    KiteFake,
    eventually,
)

# A weekly BANKNIFTY future listed in a later dump (the row is Kite's format).
NEW_ROW = "13371650,52233,BANKNIFTY26DECFUT,BANKNIFTY,0,2026-12-29,0,0.2,30,FUT,NFO-FUT,NFO\n"


class Clock:
    def __init__(self, at: dt.datetime) -> None:
        self.at = at

    def __call__(self) -> dt.datetime:
        return self.at


def ist(day: int, hour: int, minute: int) -> dt.datetime:
    return dt.datetime(2026, 12, day, hour, minute, tzinfo=IST)


async def _master_has(app: FastAPI, key: str) -> bool:
    async with app.state.ctx.database.session() as db:
        return key in await InstrumentService(db).get_rows([key])


async def test_once_a_day_after_0830_ist_and_again_30_minutes_after_a_failure(
    app: FastAPI, kite_server: HttpFake, kite_fake: KiteFake
) -> None:
    clock = Clock(ist(7, 8, 29))
    daily = KiteInstrumentsDaily(app.state.ctx, now=clock)
    reloads: list[int] = []

    async def reloaded() -> None:
        reloads.append(1)

    daily.on_imported.append(reloaded)

    async def check(at: dt.datetime, outcome: str, fetches: int) -> None:
        clock.at = at
        assert await daily.step() == outcome, at
        assert kite_server.hit_count("/instruments") == fetches, at

    await check(ist(7, 8, 29), "not_due", 0)  # Kite has not published today's dump yet
    await check(ist(7, 8, 30), "imported", 1)
    assert await _master_has(app, "NFO:NIFTY26DEC24500CE")
    assert reloads == [1]  # the ticker's token map rebuilt
    await check(ist(7, 15, 0), "not_due", 1)
    await check(ist(8, 6, 0), "not_due", 1)  # a new IST day, before 08:30
    await check(ist(8, 8, 31), "unchanged", 2)  # the same bytes: not parsed again
    assert reloads == [1]
    await check(ist(8, 23, 59), "not_due", 2)
    kite_fake.instruments = INSTRUMENTS_CSV + "not,a,kite,row\n"
    await check(ist(9, 9, 0), "failed", 3)
    assert daily.retry_at == ist(9, 9, 30)
    assert not await _master_has(app, "NFO:BANKNIFTY26DECFUT")
    await check(ist(9, 9, 29), "not_due", 3)  # no new try before the half hour
    kite_fake.instruments = INSTRUMENTS_CSV + NEW_ROW
    await check(ist(9, 9, 30), "imported", 4)
    assert await _master_has(app, "NFO:BANKNIFTY26DECFUT")
    assert daily.last_import == dt.date(2026, 12, 9)
    assert daily.retry_at is None  # reset by the import
    await check(ist(9, 10, 0), "not_due", 4)


async def test_no_session_means_no_fetch_until_a_login(app: FastAPI, kite_server: HttpFake) -> None:
    daily = KiteInstrumentsDaily(app.state.ctx, now=lambda: ist(7, 9, 0))
    await daily.store.reject("TokenException")  # Kite ended the session
    assert await daily.step() == "no_session"
    assert kite_server.hit_count("/instruments") == 0
    assert daily.retry_at is None  # looked at again at the next check, not in 30 minutes


async def test_the_daily_import_runs_with_the_ticker_off(
    kite_settings: Settings, kite_server: HttpFake
) -> None:
    settings = kite_settings.model_copy(
        update={"kite_ticker": False, "kite_instruments_daily": True}
    )
    await log_in_today(settings, kite_server)
    application = create_app(settings)
    async with application.router.lifespan_context(application):
        extensions = application.state.ctx.extensions
        assert KITE_FEED not in extensions
        daily = extensions[KITE_INSTRUMENTS]
        assert isinstance(daily, KiteInstrumentsDaily)
        before = dt.datetime.now(IST)
        await eventually(lambda: daily.last_outcome is not None)
        after = dt.datetime.now(IST)
        ready = dt.time(8, 30)
        if (before.time() >= ready) == (after.time() >= ready):  # not across 08:30 itself
            expected = "imported" if before.time() >= ready else "not_due"
            assert daily.last_outcome == expected
            assert kite_server.hit_count("/instruments") == (expected == "imported")


@pytest.mark.postgres_only  # the pass with Redis: processes share the lease and the day
async def test_one_process_imports_for_all(app: FastAPI, kite_server: HttpFake) -> None:
    first, second = (
        KiteInstrumentsDaily(app.state.ctx, now=lambda: ist(7, 9, 0)) for _ in range(2)
    )
    assert await first.step() == "imported"
    assert await second.step() == "not_leading"  # the first holds the lease
    await first.stop()  # and lets it go
    assert await second.step() == "not_due"  # the day's import is done, by the first
    assert kite_server.hit_count("/instruments") == 1
    await second.stop()
