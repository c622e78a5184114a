"""The market-data endpoints over HTTP: instruments, chains, imports, bars, quotes, calendar."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import httpx
import numpy as np
import pytest
from fastapi import FastAPI

from quantdesk.marketdata.bars.repository import BarStore
from quantdesk.marketdata.domain import BarArrays, Exchange, OptionType, Quote, Timeframe
from quantdesk.marketdata.instruments.service import InstrumentService
from quantdesk.marketdata.quotes.service import QuoteService
from quantdesk.platform.context import AppContext
from quantdesk.settings import Settings
from tests.conftest import TestUser, UserFactory
from tests.marketdata.samples import equity, nifty_future, nifty_option, nse_index

IST = dt.timezone(dt.timedelta(hours=5, minutes=30))
MONDAY = dt.date(2024, 11, 18)
TODAY = dt.datetime.now(dt.UTC).date()
NEAR = TODAY + dt.timedelta(days=9)
FAR = TODAY + dt.timedelta(days=37)
PAST = TODAY - dt.timedelta(days=20)
PROBLEM = "application/problem+json"


@pytest.fixture
def settings(settings: Settings) -> Settings:
    # These tests make more requests per second than the production API budget allows.
    return settings.model_copy(update={"rate_limit_api": "100000/second"})


@pytest.fixture
async def viewer(app: FastAPI, make_user: UserFactory) -> TestUser:
    ctx: AppContext = app.state.ctx
    async with ctx.database.session(immediate=True) as session:
        await InstrumentService(session).upsert_many(
            [
                equity("RELIANCE", "Reliance Industries", isin="INE002A01018"),
                equity("RELIANCE", "Reliance Industries", Exchange.BSE),
                equity("TCS", "Tata Consultancy Services"),
                equity("AAPL", "Apple Inc", Exchange.NASDAQ),
                nse_index("NIFTY 50"),
                nifty_future(NEAR),
                *(nifty_option(NEAR, k, t) for k in (24000, 24500) for t in OptionType),
                nifty_option(FAR, 25000, OptionType.CALL),
                nifty_option(PAST, 23000, OptionType.PUT),
            ]
        )
        start = int(dt.datetime.combine(MONDAY, dt.time(9, 15), IST).timestamp())
        close = np.round(1400 + 0.05 * np.arange(30), 2)
        await BarStore(session).bulk_load(
            "NSE:RELIANCE",
            Timeframe.M1,
            BarArrays(
                start + 60 * np.arange(30, dtype=np.int64),
                close,
                close + 1,
                close - 1,
                close,
                np.full(30, 10.0),
                oi=np.arange(30, dtype=np.float64),
            ),
        )
    return await make_user("viewer")


def expect_problem(response: httpx.Response, status: int, *fragments: str) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM
    body = response.json()
    assert body["status"] == status
    for fragment in fragments:
        assert fragment in body["detail"], body


async def test_everything_needs_a_credential(client: httpx.AsyncClient) -> None:
    for path in (
        "/api/v1/instruments",
        "/api/v1/instruments/NSE:RELIANCE",
        "/api/v1/instruments/NIFTY/chain",
        "/api/v1/market/bars/NSE:RELIANCE",
        "/api/v1/market/quotes?keys=NSE:RELIANCE",
        "/api/v1/calendar/NSE/status",
    ):
        expect_problem(await client.get(path), 401)


async def test_search_and_paginate(client: httpx.AsyncClient, viewer: TestUser) -> None:
    keys: list[str] = []
    url = "/api/v1/instruments?limit=3"
    for _ in range(10):
        response = await client.get(url, headers=viewer.headers)
        assert response.status_code == 200, response.text
        page = response.json()
        keys += [item["key"] for item in page["items"]]
        if page["next_cursor"] is None:
            break
        url = f"/api/v1/instruments?limit=3&cursor={page['next_cursor']}"
    assert len(keys) == len(set(keys)) == 12  # every instrument exactly once
    found = await client.get(
        "/api/v1/instruments", params={"q": "rel", "exchange": "NSE"}, headers=viewer.headers
    )
    (reliance,) = found.json()["items"]
    assert reliance == {
        "key": "NSE:RELIANCE",
        "exchange": "NSE",
        "symbol": "RELIANCE",
        "name": "Reliance Industries",
        "type": "equity",
        "currency": "INR",
        "lot_size": "1",
        "tick_size": "0.05",
        "multiplier": "1",
        "underlying": None,
        "expiry": None,
        "strike": None,
        "option_type": None,
        "isin": "INE002A01018",
        "sector": None,
        "active": True,
    }
    options = await client.get(
        "/api/v1/instruments",
        params={"underlying": "NIFTY", "type": "option", "expiry": NEAR.isoformat()},
        headers=viewer.headers,
    )
    assert len(options.json()["items"]) == 4


async def test_search_bad_input(client: httpx.AsyncClient, viewer: TestUser) -> None:
    expect_problem(
        await client.get("/api/v1/instruments?type=bond", headers=viewer.headers), 422, "type"
    )
    expect_problem(
        await client.get("/api/v1/instruments?cursor=garbage", headers=viewer.headers),
        422,
        "cursor",
    )
    expect_problem(
        await client.get("/api/v1/instruments?limit=500", headers=viewer.headers), 422, "limit"
    )


async def test_get_instrument(client: httpx.AsyncClient, viewer: TestUser) -> None:
    index = await client.get("/api/v1/instruments/NSE:NIFTY%2050", headers=viewer.headers)
    assert index.status_code == 200
    assert index.json()["type"] == "index"
    option = await client.get(
        f"/api/v1/instruments/NFO:NIFTY{NEAR:%y%b}24500CE".replace(
            f"{NEAR:%b}", f"{NEAR:%b}".upper()
        ),
        headers=viewer.headers,
    )
    assert option.json()["strike"] == "24500"
    assert option.json()["option_type"] == "call"
    expect_problem(
        await client.get("/api/v1/instruments/NSE:NOPE", headers=viewer.headers), 404, "NSE:NOPE"
    )
    expect_problem(
        await client.get("/api/v1/instruments/RELIANCE", headers=viewer.headers),
        422,
        "EXCHANGE:SYMBOL",
    )


async def test_option_chain_and_expiries(client: httpx.AsyncClient, viewer: TestUser) -> None:
    chain = await client.get("/api/v1/instruments/NIFTY/chain", headers=viewer.headers)
    assert chain.status_code == 200, chain.text
    body = chain.json()
    assert body["underlying"] == "NIFTY"
    assert body["expiry"] == NEAR.isoformat()
    assert [row["strike"] for row in body["strikes"]] == ["24000", "24500"]
    assert body["strikes"][0]["call"]["option_type"] == "call"
    assert body["strikes"][0]["put"]["option_type"] == "put"
    far = await client.get(f"/api/v1/instruments/nifty/chain?expiry={FAR}", headers=viewer.headers)
    assert [(r["strike"], r["put"]) for r in far.json()["strikes"]] == [("25000", None)]
    expiries = await client.get("/api/v1/instruments/NIFTY/expiries", headers=viewer.headers)
    assert expiries.json()["expiries"] == [PAST.isoformat(), NEAR.isoformat(), FAR.isoformat()]
    expect_problem(
        await client.get("/api/v1/instruments/FINNIFTY/chain", headers=viewer.headers), 404
    )
    expect_problem(
        await client.get(f"/api/v1/instruments/NIFTY/chain?expiry={TODAY}", headers=viewer.headers),
        404,
        "no options on NIFTY",
    )


KITE = (
    "instrument_token,exchange_token,tradingsymbol,name,last_price,expiry,strike,tick_size,"
    "lot_size,instrument_type,segment,exchange\n"
    "341249,1333,HDFCBANK,HDFC BANK,0,,,0.05,1,EQ,NSE,NSE\n"
    "408065,1594,INFY,INFOSYS,0,,,0.05,1,EQ,NSE,NSE\n"
)


async def test_import_is_admin_only_atomic_and_idempotent(
    client: httpx.AsyncClient, viewer: TestUser, make_user: UserFactory
) -> None:
    files = {"file": ("instruments.csv", KITE.encode(), "text/csv")}
    expect_problem(
        await client.post("/api/v1/instruments/import", files=files, headers=viewer.headers), 403
    )
    admin = await make_user("admin")
    bad = KITE.replace("0.05,1,EQ,NSE,NSE\n408065", "0.05,0,EQ,NSE,NSE\n408065")
    expect_problem(
        await client.post(
            "/api/v1/instruments/import",
            files={"file": ("bad.csv", bad.encode(), "text/csv")},
            headers=admin.headers,
        ),
        422,
        "line 2: lot_size must be positive",
    )
    missing = await client.get("/api/v1/instruments/NSE:INFY", headers=viewer.headers)
    assert missing.status_code == 404  # line 3 was valid, but nothing was written
    first = await client.post("/api/v1/instruments/import", files=files, headers=admin.headers)
    assert first.status_code == 200, first.text
    assert first.json() == {
        "format": "kite",
        "inserted": 2,
        "updated": 0,
        "unchanged": 0,
        "skipped": 0,
    }
    again = await client.post("/api/v1/instruments/import", files=files, headers=admin.headers)
    assert again.json()["unchanged"] == 2
    assert again.json()["inserted"] == 0
    not_utf8 = {"file": ("x.csv", b"\xff\xfe\x00bad", "text/csv")}
    expect_problem(
        await client.post("/api/v1/instruments/import", files=not_utf8, headers=admin.headers),
        422,
        "UTF-8",
    )


async def test_bars_columnar_and_rows(client: httpx.AsyncClient, viewer: TestUser) -> None:
    start = dt.datetime.combine(MONDAY, dt.time(9, 15), IST)
    params = {
        "timeframe": "1m",
        "from": (start + dt.timedelta(minutes=1)).isoformat(),
        "to": (start + dt.timedelta(minutes=3)).isoformat(),
    }
    columnar = await client.get(
        "/api/v1/market/bars/NSE:RELIANCE", params=params, headers=viewer.headers
    )
    assert columnar.status_code == 200, columnar.text
    first = int(start.timestamp())
    assert columnar.json() == {
        "key": "NSE:RELIANCE",
        "timeframe": "1m",
        "t": [first + 60, first + 120],
        "o": ["1400.05", "1400.10"],
        "h": ["1401.05", "1401.10"],
        "l": ["1399.05", "1399.10"],
        "c": ["1400.05", "1400.10"],
        "v": ["10", "10"],
        "oi": ["1", "2"],
    }
    rows = await client.get(
        "/api/v1/market/bars/NSE:RELIANCE",
        params={**params, "shape": "rows"},
        headers=viewer.headers,
    )
    assert rows.json()["bars"][0] == {
        "ts": "2024-11-18T03:46:00Z",
        "open": "1400.05",
        "high": "1401.05",
        "low": "1399.05",
        "close": "1400.05",
        "volume": "10",
        "oi": "1",
    }
    five = await client.get(
        "/api/v1/market/bars/NSE:RELIANCE?timeframe=5m&limit=2", headers=viewer.headers
    )
    body = five.json()
    assert body["t"] == [first + 1200, first + 1500]  # the latest two 5m bars, 09:35 and 09:40
    assert body["o"] == ["1401.00", "1401.25"]
    assert body["c"] == ["1401.20", "1401.45"]
    assert body["v"] == ["50", "50"]
    assert body["oi"] == ["24", "29"]
    empty = await client.get("/api/v1/market/bars/NSE:TCS?timeframe=1d", headers=viewer.headers)
    assert empty.json()["t"] == []
    assert empty.json()["o"] == []
    assert empty.json()["oi"] == []


async def test_bars_bad_input(client: httpx.AsyncClient, viewer: TestUser) -> None:
    base = "/api/v1/market/bars"
    cases = [
        (f"{base}/NSE:NOPE", 404, "NSE:NOPE"),
        (f"{base}/NOPE", 422, "EXCHANGE:SYMBOL"),
        (f"{base}/NSE:RELIANCE?timeframe=2m", 422, "timeframe"),
        (f"{base}/NSE:RELIANCE?limit=100001", 422, "limit"),
        (f"{base}/NSE:RELIANCE?from=2024-11-18T09:15:00", 422, "timezone"),
        (f"{base}/NSE:RELIANCE?from=yesterday", 422, "from"),
        (f"{base}/NSE:RELIANCE?from=2024-11-19T00:00:00Z&to=2024-11-18T00:00:00Z", 422, "before"),
        (f"{base}/NSE:RELIANCE?shape=table", 422, "shape"),
    ]
    for url, status, fragment in cases:
        expect_problem(await client.get(url, headers=viewer.headers), status, fragment)


async def test_quotes_endpoint(app: FastAPI, client: httpx.AsyncClient, viewer: TestUser) -> None:
    ctx: AppContext = app.state.ctx
    at = dt.datetime(2025, 9, 1, 4, 0, tzinfo=dt.UTC)
    await QuoteService(ctx.cache, ctx.bus).publish(
        [Quote("NSE:RELIANCE", Decimal("1410.10"), at, bid=Decimal("1410.05"))]
    )
    response = await client.get(
        "/api/v1/market/quotes?keys=nse:reliance,NSE:TCS&keys=NSE:RELIANCE",
        headers=viewer.headers,
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["missing"] == ["NSE:TCS"]
    (quote,) = body["quotes"]
    assert quote["key"] == "NSE:RELIANCE"
    assert quote["last"] == "1410.10"
    assert quote["bid"] == "1410.05"
    assert quote["ask"] is None
    assert dt.datetime.fromisoformat(quote["ts"]) == at
    expect_problem(
        await client.get("/api/v1/market/quotes?keys=RELIANCE", headers=viewer.headers),
        422,
        "EXCHANGE:SYMBOL",
    )
    expect_problem(
        await client.get("/api/v1/market/quotes?keys=,", headers=viewer.headers), 422, "at least"
    )
    many = ",".join(f"NSE:S{i}" for i in range(201))
    expect_problem(
        await client.get(f"/api/v1/market/quotes?keys={many}", headers=viewer.headers),
        422,
        "at most 200",
    )
    expect_problem(await client.get("/api/v1/market/quotes", headers=viewer.headers), 422)


async def test_calendar_endpoints(client: httpx.AsyncClient, viewer: TestUser) -> None:
    h = viewer.headers
    status = await client.get("/api/v1/calendar/NSE/status?at=2024-11-18T05:00:00Z", headers=h)
    assert status.status_code == 200, status.text
    body = status.json()
    assert body["is_open"] is True
    assert body["session"]["kind"] == "regular"
    assert body["next_close"].startswith("2024-11-18T10:00:00")
    closed = (
        await client.get("/api/v1/calendar/NSE/status?at=2024-11-15T05:00:00Z", headers=h)
    ).json()
    assert closed["is_open"] is False
    assert closed["next_open"].startswith("2024-11-18T03:45")
    sessions = await client.get(
        "/api/v1/calendar/NSE/sessions?from=2024-11-14&to=2024-11-18", headers=h
    )
    assert [s["date"] for s in sessions.json()["sessions"]] == ["2024-11-14", "2024-11-18"]
    holidays = await client.get("/api/v1/calendar/NSE/holidays?year=2024", headers=h)
    assert {"date": "2024-01-26", "name": "Republic Day", "provisional": False} in holidays.json()[
        "holidays"
    ]
    expiries = await client.get(
        "/api/v1/calendar/NFO/expiries?underlying=NIFTY&from=2025-08-25&to=2025-09-10", headers=h
    )
    assert expiries.json()["expiries"] == [
        {"date": "2025-08-28", "kind": "monthly", "provisional": False},  # the last Thursday expiry
        {
            "date": "2025-09-02",
            "kind": "weekly",
            "provisional": False,
        },  # Tuesdays from September 2025
        {"date": "2025-09-09", "kind": "weekly", "provisional": False},
    ]
    spy = await client.get(
        "/api/v1/calendar/OPRA/expiries?underlying=SPY&from=2025-12-15&to=2025-12-20&kind=monthly",
        headers=h,
    )
    assert spy.json()["expiries"] == [
        {"date": "2025-12-19", "kind": "monthly", "provisional": False}
    ]
    expect_problem(await client.get("/api/v1/calendar/LSE/status", headers=h), 404, "LSE")
    expect_problem(
        await client.get("/api/v1/calendar/NSE/holidays?year=2199", headers=h), 422, "2199"
    )
    expect_problem(
        await client.get("/api/v1/calendar/NSE/sessions?from=2024-11-18&to=2024-11-14", headers=h),
        422,
        "before",
    )
    expect_problem(
        await client.get("/api/v1/calendar/NSE/status?at=2024-11-18T05:00:00", headers=h),
        422,
        "timezone",
    )
