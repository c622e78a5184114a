"""The Kite feature in the app: the encrypted session, the daily dump into the master, ticks
from the ticker to the quotes API, the status endpoint, and no credential in any log line."""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
from collections.abc import Awaitable, Callable
from dataclasses import replace
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx
import pytest
from fastapi import FastAPI
from redis.asyncio import Redis
from sqlalchemy import select
from typer.testing import CliRunner

from quantdesk.cli import app as cli_app
from quantdesk.marketdata.bars.backfill import backfill
from quantdesk.marketdata.bars.repository import BarStore
from quantdesk.marketdata.domain import Bar, Timeframe
from quantdesk.marketdata.instruments.service import InstrumentService
from quantdesk.marketdata.providers.kite.auth import exchange_request_token
from quantdesk.marketdata.providers.kite.client import SharedRateLimiter
from quantdesk.marketdata.providers.kite.feed import TokenMap
from quantdesk.marketdata.providers.kite.models import KiteSessionRow
from quantdesk.marketdata.providers.kite.service import (
    KITE_FEED,
    KiteFeed,
    KiteInstrumentsDaily,
    register_key_source,
    token_store,
)
from quantdesk.marketdata.providers.resilience import RateLimitWaitError
from quantdesk.marketdata.providers.setup import build_provider, build_registry
from quantdesk.marketdata.quotes.service import QuoteService
from quantdesk.platform.db import Database
from quantdesk.platform.logging import configure_logging
from quantdesk.settings import Settings
from tests.conftest import UserFactory
from tests.marketdata.providers.kite.conftest import REQUEST_TOKEN
from tests.marketdata.providers.kite.fake_kite import (
    ACCESS_TOKEN,
    API_KEY,
    API_SECRET,
    HttpFake,
    KiteFake,
    TickerFake,
    eventually,
    frame,
    full_packet,
    ltp_packet,
)
from tests.trading.conftest import Desk, desk, sim_market  # noqa: F401 - fixtures


async def test_the_session_is_stored_encrypted_until_kite_refuses_it(
    kite_settings: Settings, kite_server: HttpFake
) -> None:
    database = Database(kite_settings)
    store = token_store(kite_settings, database)
    try:
        assert (await store.status()).state == "missing"
        session = await exchange_request_token(
            API_KEY, API_SECRET, REQUEST_TOKEN, base_url=kite_server.base_url
        )
        await store.save(session)
        async with database.session() as db:
            row = await db.scalar(select(KiteSessionRow))
        assert row is not None
        assert ACCESS_TOKEN not in row.access_token_encrypted
        assert row.api_key_hash == hashlib.sha256(API_KEY.encode()).hexdigest()
        assert await store.access_token(now=session.login_time) == ACCESS_TOKEN
        status = await store.status(now=session.login_time)
        assert (status.state, status.valid, status.expires_at) == (
            "valid", True, dt.datetime(2026, 12, 4, 0, 30, tzinfo=dt.UTC),
        )  # fmt: skip
        after = dt.datetime(2026, 12, 4, 0, 30, tzinfo=dt.UTC)
        assert (await store.status(now=after)).state == "expired"
        assert await store.access_token(now=after) is None
        await store.reject("TokenException", token="someone-elses")  # not the stored one
        assert (await store.status(now=session.login_time)).valid
        await store.reject("TokenException", token=ACCESS_TOKEN)
        assert (await store.status(now=session.login_time)).state == "rejected"
    finally:
        await database.dispose()


async def test_ticks_reach_the_quotes_api_and_the_status_says_so(
    app: FastAPI,
    client: httpx.AsyncClient,
    make_user: UserFactory,
    ticker_fake: TickerFake,
    capsys: pytest.CaptureFixture[str],
) -> None:
    feed = app.state.ctx.extensions[KITE_FEED]
    assert isinstance(feed, KiteFeed)
    # The morning import: the dump into the master, both ways through the token map.
    daily = KiteInstrumentsDaily(app.state.ctx)
    daily.on_imported.append(feed.reload_tokens)
    assert await daily.import_instruments() == "imported"
    assert await daily.import_instruments() == "unchanged"
    async with app.state.ctx.database.session() as db:
        rows = await InstrumentService(db).get_rows(["NSE:RELIANCE", "NFO:NIFTY26DEC24500CE"])
        tokens = await TokenMap.load(db)
    assert rows["NFO:NIFTY26DEC24500CE"].provider_token == "13370370"
    assert tokens.by_key["NSE:RELIANCE"] == 738561
    assert tokens.by_token[13368834] == "NFO:NIFTY26DECFUT"
    # Yesterday's closing OI of the future, as a backfill stored it: ticks lack it.
    yesterday = dt.datetime.now(ZoneInfo("Asia/Kolkata")).date() - dt.timedelta(days=1)
    async with app.state.ctx.database.session(immediate=True) as db:
        await BarStore(db).bulk_load(
            "NFO:NIFTY26DECFUT", Timeframe.D1,
            [Bar(dt.datetime.combine(yesterday, dt.time(0), tzinfo=dt.UTC), Decimal(24400),
                 Decimal(24420), Decimal(24380), Decimal(24410), Decimal(900), Decimal(11**7))],
        )  # fmt: skip
    # The stream's seam: another source of wanted instruments, next to the watch list.
    register_key_source(app.state.ctx, _future_wanted)
    await feed.refresh_subscriptions()
    await eventually(lambda: set(ticker_fake.subscribed) == {738561, 13368834})
    assert set(ticker_fake.subscribed.values()) == {"full"}
    await ticker_fake.send(frame(ltp_packet(13368834, 2455010)))
    quotes = QuoteService(app.state.ctx.cache, app.state.ctx.bus)
    await eventually_async(lambda: quotes.get("NFO:NIFTY26DECFUT"))
    future = await quotes.get("NFO:NIFTY26DECFUT")
    assert future is not None
    assert (future.last, future.prev_oi) == (Decimal("24550.10"), Decimal(11**7))
    await ticker_fake.send(
        frame(
            full_packet(
                738561, 245065, ohlc=(244000, 246000, 243500, 243850), volume=5_400_321,
                oi=(0, 0, 0), times=(1_764_735_299, 1_764_735_300),
                bids=[(150, 245060, 3)] + [(0, 0, 0)] * 4, asks=[(90, 245070, 2)] + [(0, 0, 0)] * 4,
            )
        )
    )  # fmt: skip
    viewer = await make_user("viewer")

    async def latest() -> dict[str, str]:
        answer = await client.get("/api/v1/market/quotes?keys=NSE:RELIANCE", headers=viewer.headers)
        found = answer.json()["quotes"]
        return dict(found[0]) if found else {}

    quote: dict[str, str] = {}
    for _ in range(500):
        quote = await latest()
        if quote:
            break
        await asyncio.sleep(0.01)
    assert (quote["last"], quote["bid"], quote["ask"]) == ("2450.65", "2450.60", "2450.70")
    status = (await client.get("/api/v1/providers/kite/status", headers=viewer.headers)).json()
    assert (status["state"], status["valid"]) == ("valid", True)
    assert status["ticker"]["connections"][0]["state"] == "connected"
    assert status["ticker"]["subscribed"] == 2
    # Kite ends the session: the status says so at once, the ticker waits for a login.
    await feed.store.reject("TokenException")
    status = (await client.get("/api/v1/providers/kite/status", headers=viewer.headers)).json()
    assert (status["state"], status["valid"]) == ("rejected", False)
    # No credential reached a log line, at DEBUG, across login, REST and ticker.
    logged = capsys.readouterr().err
    assert "kite_instruments_imported" in logged
    for secret in (API_KEY, API_SECRET, ACCESS_TOKEN, REQUEST_TOKEN):
        assert secret not in logged
    configure_logging("WARNING")


async def eventually_async(probe: Callable[[], Awaitable[object]], within_s: float = 5) -> None:
    for _ in range(int(within_s / 0.01)):
        if await probe():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("condition not reached in time")


async def _future_wanted() -> list[str]:
    return ["NFO:NIFTY26DECFUT"]


async def test_kite_is_a_registered_provider(kite_settings: Settings) -> None:
    registry = build_registry(kite_settings)
    assert registry.names() == ["demo", "kite"]
    await registry.aclose()


async def test_backfill_from_kite_finds_the_instrument_in_the_dump(
    kite_settings: Settings, kite_server: HttpFake, kite_fake: KiteFake
) -> None:
    """``quantdesk data backfill --provider kite`` on an empty master: chunked, resumable."""
    ist = ZoneInfo("Asia/Kolkata")
    kite_fake.candles[738561, "day"] = [
        [dt.datetime(2026, 11, day, tzinfo=ist), 2400 + day, 2410 + day, 2390, 2405 + day, 1000]
        for day in (2, 3, 4)
    ]
    database = Database(kite_settings)
    try:
        session = await exchange_request_token(
            API_KEY, API_SECRET, REQUEST_TOKEN, base_url=kite_server.base_url
        )
        await token_store(kite_settings, database).save(
            replace(session, login_time=dt.datetime.now(dt.UTC))
        )
        provider = build_provider(kite_settings, "kite")
        try:
            report = await backfill(
                provider, ["NSE:RELIANCE"], dt.datetime(2026, 11, 1, tzinfo=dt.UTC),
                dt.datetime(2026, 11, 30, tzinfo=dt.UTC), Timeframe.D1, database=database,
            )  # fmt: skip
        finally:
            await provider.aclose()
        assert report.bars == 3
        async with database.session() as db:
            row = (await InstrumentService(db).get_rows(["NSE:RELIANCE"]))["NSE:RELIANCE"]
        assert row.provider_token == "738561"
    finally:
        await database.dispose()


def test_quantdesk_kite_login_stores_the_session(
    kite_settings: Settings,
    kite_server: HttpFake,
    kite_fake: KiteFake,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    """The daily login as a user runs it: the URL is printed, the pasted redirect URL is
    exchanged, the status says valid; the access token is printed nowhere."""
    secret_file = tmp_path / "kite_api_secret"
    secret_file.write_text(API_SECRET + "\n")
    environment = {
        "QUANTDESK_DATABASE_URL": kite_settings.database_url,
        "QUANTDESK_VAR_DIR": str(kite_settings.var_dir),
        "QUANTDESK_PROFILE": "test",
        "QUANTDESK_KITE_API_KEY": API_KEY,
        "QUANTDESK_KITE_API_SECRET_FILE": str(secret_file),
        "QUANTDESK_KITE_BASE_URL": kite_server.base_url,
    }
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    monkeypatch.chdir(tmp_path)  # no .env of the developer's
    kite_fake.login_time = dt.datetime.now(ZoneInfo("Asia/Kolkata")).strftime("%Y-%m-%d %H:%M:%S")
    runner = CliRunner()
    pasted = f"https://127.0.0.1/kite?action=login&status=success&request_token={REQUEST_TOKEN}\n"
    login = runner.invoke(cli_app, ["kite", "login"], input=pasted)
    assert login.exit_code == 0, login.output
    assert f"login?v=3&api_key={API_KEY}" in login.output
    assert "logged in to Kite as ZW1234" in login.output
    assert ACCESS_TOKEN not in login.output
    status = runner.invoke(cli_app, ["kite", "status"])
    assert "kite session: valid (until " in status.output
    imported = runner.invoke(cli_app, ["kite", "instruments"])
    assert imported.exit_code == 0, imported.output
    assert "kite instruments: 7 inserted, 0 updated, 0 unchanged, 0 skipped" in imported.output
    again = runner.invoke(cli_app, ["kite", "login", "--request-token", REQUEST_TOKEN])
    assert again.exit_code == 1
    assert "invalid or has expired" in again.output


async def test_open_paper_orders_are_subscribed(app: FastAPI, desk: Desk) -> None:  # noqa: F811
    """Matching must see every quote it needs: an open order's instrument is wanted; a
    cancelled one's is not (here on SIM, always open, so the test runs at any hour)."""
    feed = app.state.ctx.extensions[KITE_FEED]
    order = await desk.place(side="buy", quantity=1, type="limit", limit_price="99.00")
    assert "SIM:ALPHA" in await feed.wanted_keys()
    cancelled = await desk.client.delete(
        desk.url(f"/orders/{order['id']}"), headers=desk.trader.headers
    )
    assert cancelled.status_code == 200, cancelled.text
    assert "SIM:ALPHA" not in await feed.wanted_keys()
    assert "NSE:RELIANCE" in await feed.wanted_keys()  # the watch list stays


@pytest.mark.postgres_only  # the pass with Redis
async def test_the_rate_limit_is_shared_by_every_process(settings: Settings) -> None:
    """Kite's limits are per API key: two processes' limiters draw from one Redis window."""
    assert settings.redis_url is not None
    redis = Redis.from_url(settings.redis_url)
    now = [1_000.2]

    async def sleep(seconds: float) -> None:
        now[0] += seconds

    def clock() -> float:
        return now[0]

    first, second = (
        SharedRateLimiter(
            "2/second", redis, "qd:kite:rl:test", clock=clock, sleep=sleep, wall=clock
        )
        for _ in range(2)
    )
    try:
        await first.acquire(max_wait=5)
        await second.acquire(max_wait=5)
        assert now[0] == 1_000.2  # two slots in this second, no wait
        with pytest.raises(RateLimitWaitError):
            await second.acquire(max_wait=0.5)  # the next slot is 0.8 s away
        await first.acquire(max_wait=5)
        assert now[0] == pytest.approx(1_001.0)  # waited for the next second, not its own
    finally:
        await redis.aclose()
