"""Allocation by sector: the instrument master's sector (a generic CSV's ``sector`` column,
the demo's equities), kept when a source without sectors (Kite's dump) upserts the row."""

from __future__ import annotations

import httpx
from fastapi import FastAPI

from quantdesk.marketdata.domain import Exchange, Instrument, InstrumentType
from quantdesk.marketdata.instruments.importers import parse_instruments
from quantdesk.marketdata.instruments.service import InstrumentService
from quantdesk.marketdata.providers.demo.universe import UNDERLYINGS
from tests.conftest import UserFactory
from tests.portfolios.test_portfolios_api import BASE, create, quote

MASTER = """exchange,symbol,type,name,sector
NSE,TCS,equity,Tata Consultancy Services Ltd,Information Technology
NSE,INFY,equity,Infosys Ltd,Information Technology
NSE,SBIN,equity,State Bank of India,Financials
NSE,NIFTYBEES,etf,Nippon India ETF Nifty BeES,
"""


async def test_allocation_by_sector_from_the_master(
    app: FastAPI, client: httpx.AsyncClient, make_user: UserFactory
) -> None:
    parsed = parse_instruments(MASTER)
    assert [i.sector for i in parsed.instruments] == [
        "Information Technology", "Information Technology", "Financials", None,
    ]  # fmt: skip
    async with app.state.ctx.database.session(immediate=True) as db:
        await InstrumentService(db).upsert_many(parsed.instruments)
    # Kite's dump says nothing of sectors: its upsert keeps them (and changes the name).
    kite_tcs = Instrument(Exchange.NSE, "TCS", "TATA CONSULTANCY SERV LT", InstrumentType.EQUITY,
                          "INR", tick_size=parsed.instruments[0].tick_size)  # fmt: skip
    async with app.state.ctx.database.session(immediate=True) as db:
        counts = await InstrumentService(db).upsert_many([kite_tcs])
        assert counts.updated == 1
        assert (await InstrumentService(db).get("NSE:TCS")).sector == "Information Technology"

    user = await make_user("trader")
    r = await client.get("/api/v1/instruments/NSE:SBIN", headers=user.headers)
    assert r.json()["sector"] == "Financials"

    pid = (await create(client, user))["id"]
    for key, quantity, price, last in (
        ("NSE:TCS", "10", "3000", "3100"),  # 31,000
        ("NSE:INFY", "20", "1500", "1450"),  # 29,000
        ("NSE:SBIN", "50", "800", "840"),  # 42,000
        ("NSE:NIFTYBEES", "100", "250", "280"),  # 28,000, no sector
    ):
        row = {"type": "buy", "instrument": key, "date": "2024-03-01", "quantity": quantity,
               "price": price}  # fmt: skip
        r = await client.post(f"{BASE}/{pid}/transactions", json=row, headers=user.headers)
        assert r.status_code == 201, r.text
        await quote(app, key, last)
    allocation = (await client.get(f"{BASE}/{pid}/allocation", headers=user.headers)).json()
    assert allocation["market_value"] == "130000.00"
    assert [(s["key"], s["market_value"], s["weight"]) for s in allocation["sector"]] == [
        ("Information Technology", "60000.00", "0.4615384615"),
        ("Financials", "42000.00", "0.3230769231"),
        ("unclassified", "28000.00", "0.2153846154"),
    ]
    r = await client.get(f"{BASE}/{pid}/allocation.svg?by=sector", headers=user.headers)
    assert r.status_code == 200
    assert "Allocation by sector" in r.text
    assert "Information Technology" in r.text


def test_the_demo_equities_carry_their_sectors() -> None:
    sectors = {u.key: u.instrument().sector for u in UNDERLYINGS}
    assert sectors["NSE:HDFCBANK"] == "Financials"
    assert sectors["NASDAQ:AAPL"] == "Information Technology"
    assert sectors["NSE:NIFTY 50"] is None  # an index has no sector
