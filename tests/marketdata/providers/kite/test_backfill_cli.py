"""``quantdesk data backfill --provider kite`` through the real command line: progress,
60-day requests of minute candles, OI stored, and a run that failed part-way resumed."""

from __future__ import annotations

import asyncio
import datetime as dt
import re
from decimal import Decimal
from pathlib import Path

import pytest
from typer.testing import CliRunner

from quantdesk.cli import app as cli_app
from quantdesk.marketdata.bars.repository import BarStore
from quantdesk.marketdata.domain import Timeframe
from quantdesk.platform.db import Database
from quantdesk.settings import Settings
from tests.conftest import TEST_SECRET
from tests.marketdata.providers.kite.conftest import log_in_today
from tests.marketdata.providers.kite.fake_kite import API_KEY, IST, HttpFake, KiteFake

FUT = 13368834  # NFO:NIFTY26DECFUT in the fake's dump
# (IST open, open, high, low, close, volume, oi): one minute in each 60-day chunk, two in
# the last.
CANDLES = [
    (dt.datetime(2026, 7, 15, 9, 15, tzinfo=IST), 24010.5, 24022, 24005.1, 24018.35, 1875,
     9_801_075),
    (dt.datetime(2026, 9, 10, 9, 15, tzinfo=IST), 24310, 24318.9, 24300.2, 24302.4, 2250,
     10_500_150),
    (dt.datetime(2026, 11, 20, 9, 15, tzinfo=IST), 24550.1, 24561, 24549, 24560.3, 3000,
     11_250_000),
    (dt.datetime(2026, 11, 20, 9, 16, tzinfo=IST), 24560.3, 24570, 24555.55, 24566.8, 1500,
     11_251_500),
]  # fmt: skip
ARGS = [
    "data", "backfill", "--provider", "kite", "--instruments", "NFO:NIFTY26DECFUT",
    "--from", "2026-07-01", "--to", "2026-11-30", "--timeframe", "1m",
]  # fmt: skip


@pytest.fixture
def environment(
    kite_settings: Settings, kite_server: HttpFake, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    variables = {
        "QUANTDESK_PROFILE": "test",
        "QUANTDESK_DATABASE_URL": kite_settings.database_url,
        "QUANTDESK_VAR_DIR": str(kite_settings.var_dir),
        "QUANTDESK_SECRET_KEY": TEST_SECRET,
        "QUANTDESK_LOG_LEVEL": "WARNING",
        "QUANTDESK_KITE_API_KEY": API_KEY,
        "QUANTDESK_KITE_BASE_URL": kite_server.base_url,
    }
    if kite_settings.redis_url:
        variables["QUANTDESK_REDIS_URL"] = kite_settings.redis_url
    for name, value in variables.items():
        monkeypatch.setenv(name, value)
    monkeypatch.chdir(tmp_path)  # no .env of the developer's
    asyncio.run(log_in_today(kite_settings, kite_server))


async def _stored(settings: Settings) -> list[tuple[object, ...]]:
    database = Database(settings)
    try:
        async with database.session() as db:
            series = await BarStore(db).series("NFO:NIFTY26DECFUT", Timeframe.M1)
    finally:
        await database.dispose()
    return [
        (
            dt.datetime.fromtimestamp(int(series.ts[i]), dt.UTC),
            *(Decimal(str(series.open[i])), Decimal(str(series.high[i]))),
            *(Decimal(str(series.low[i])), Decimal(str(series.close[i]))),
            Decimal(str(series.volume[i])),
            Decimal(str(series.oi[i])),
        )
        for i in range(len(series))
    ]


def expected(count: int) -> list[tuple[object, ...]]:
    return [
        (ts.astimezone(dt.UTC), *(Decimal(str(v)) for v in values))
        for ts, *values in CANDLES[:count]
    ]


@pytest.mark.usefixtures("environment")
def test_backfill_minutes_from_kite_and_resume_after_a_failure(
    kite_settings: Settings, kite_fake: KiteFake
) -> None:
    kite_fake.candles[FUT, "minute"] = [[*row] for row in CANDLES]
    kite_fake.historical_budget = 2  # the third request fails: the run stops part-way
    runner = CliRunner()
    first = runner.invoke(cli_app, ARGS)
    assert first.exit_code == 1, first.output
    assert "kite answered HTTP 400: historical data is not available" in first.stderr
    # 153 days in 60-day requests, each within Kite's limit (the fake refuses longer ones).
    assert kite_fake.historical_calls == [
        ("minute", "2026-07-01 05:30:00", "2026-08-30 05:29:59"),
        ("minute", "2026-08-30 05:30:00", "2026-10-29 05:29:59"),
        ("minute", "2026-10-29 05:30:00", "2026-12-01 05:29:59"),
    ]
    assert asyncio.run(_stored(kite_settings)) == expected(2)

    kite_fake.historical_budget = None
    kite_fake.historical_calls.clear()
    second = runner.invoke(cli_app, ARGS)
    assert second.exit_code == 0, second.output
    # From the newest stored minute (re-fetched: it may have been partial), to the end.
    assert kite_fake.historical_calls == [
        ("minute", "2026-09-10 09:15:00", "2026-11-09 09:14:59"),
        ("minute", "2026-11-09 09:15:00", "2026-12-01 05:29:59"),
    ]
    assert "NFO:NIFTY26DECFUT: 3 bars in 2 chunks (resumed at 2026-09-10 03:45)" in second.output
    # The progress bar (on stderr): chunks done of the run's, bars written so far.
    assert re.search(r"NFO:NIFTY26DECFUT +━+ +2/3 2 bars", first.stderr), first.stderr
    assert re.search(r"NFO:NIFTY26DECFUT +━+ 2/2 3 bars", second.stderr), second.stderr
    assert asyncio.run(_stored(kite_settings)) == expected(4)


@pytest.mark.usefixtures("environment")
def test_resampled_timeframes_are_not_backfilled() -> None:
    result = CliRunner().invoke(cli_app, [*ARGS[:-1], "5m"])
    assert result.exit_code == 2
    assert "5m bars are resampled from 1m, not stored; backfill 1m" in result.output
    assert (
        "1d or 1m (stored; 3m, 5m"
        in CliRunner().invoke(cli_app, ["data", "backfill", "--help"]).output
    )
